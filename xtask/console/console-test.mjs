// The console in a real browser: Debian's Chromium driven by playwright-core
// (pinned in package.json; nothing downloads a browser), against the
// `wrangler dev` the e2e suite runs. Run by `cargo xtask test` (the e2e
// check "the web console ..."): argv is a JSON plan
//   {base, full, read, address, peer, hostile, shots, axe, chromium}
// and the last stdout line is the JSON report ({"event":"done", ...}).
// Any failure throws: the process exits non-zero with the reason on stderr.

import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { chromium } from "playwright-core";

const plan = JSON.parse(process.argv[2]);
const origin = new URL(plan.base).origin;
const report = { event: "done", steps: [], hostile: [], axe: {}, screenshots: [] };
const note = (step) => {
  report.steps.push(step);
  process.stderr.write(`console: ${step}\n`);
};
const fail = (why) => {
  throw new Error(why);
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the API, as the test's own client --------------------------------

async function call(key, method, path, body) {
  const response = await fetch(`${plan.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
}

async function deliver(from, raw) {
  const query = new URLSearchParams({ from, to: plan.address });
  const response = await fetch(`${plan.base}/cdn-cgi/handler/email?${query}`, {
    method: "POST",
    headers: { "content-type": "message/rfc822" },
    body: raw,
  });
  // Told to the suite, which counts every delivery for its log check.
  console.log(JSON.stringify({ event: "delivered" }));
  if (response.status !== 200) fail(`delivering from ${from}: ${response.status} ${await response.text()}`);
  const newest = await call(plan.full, "GET", "/api/messages?limit=1");
  const id = newest.json.messages[0].id;
  return id;
}

// ---- what the page does that it must not ------------------------------

const GIF = Buffer.from("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64");

// The hostile mails' remote hosts (evil.example, tracker.example) are
// pointed at this server, another origin on loopback: whatever the browser
// fetches from them arrives here, whether or not the page's request events
// show it (a sandboxed frame may run in its own process).
const hits = [];
const outside = createServer((request, response) => {
  hits.push(`${request.method} ${request.url}`);
  response.writeHead(200, { "content-type": "image/gif", "cache-control": "no-store" });
  response.end(GIF);
});
// Any connection counts (an https:// URL reaches it as a TLS hello).
outside.on("connection", () => hits.push("connection"));
await new Promise((resolve) => outside.listen(0, "127.0.0.1", resolve));
const outsideHost = `127.0.0.1:${outside.address().port}`;
const toOutside = (raw) => raw.replace(/\/\/(evil|tracker)\.example/g, `//${outsideHost}`);
const watch = {
  offOrigin: [], // requests that left the deployment
  dialogs: [],
  pageErrors: [],
  consoleErrors: [], // console errors other than a policy's own report
  blocked: [], // CSP and sandbox reports: something was stopped
  navigations: [],
  popups: [],
  httpErrors: [], // API answers >= 400 the console did not expect
  allowHost: null, // the positive control lets this host be fetched
  allowedSeen: [],
};

function violations() {
  return {
    offOrigin: watch.offOrigin.length,
    dialogs: watch.dialogs.length,
    pageErrors: watch.pageErrors.length,
    consoleErrors: watch.consoleErrors.length,
    navigations: watch.navigations.length,
    popups: watch.popups.length,
    httpErrors: watch.httpErrors.length,
  };
}

function clean(since) {
  const now = violations();
  return Object.keys(now).filter((k) => now[k] !== since[k]);
}

function detail(since) {
  const out = {};
  for (const k of clean(since)) out[k] = watch[k].slice(since[k]);
  return JSON.stringify(out);
}

async function instrument(context, page, label) {
  await context.route("**/*", async (route) => {
    const url = route.request().url();
    const parsed = new URL(url);
    if (parsed.origin === origin) return route.continue();
    if (watch.allowHost && parsed.host === watch.allowHost) {
      watch.allowedSeen.push(url);
      return route.continue();
    }
    watch.offOrigin.push(`${label}: ${route.request().resourceType()} ${url}`);
    return route.abort("blockedbyclient");
  });
  // Requests that never reach the router (a websocket, a prefetch) are seen here.
  page.on("request", (request) => {
    const url = request.url();
    if (!/^(https?|wss?):/.test(url)) return;
    const parsed = new URL(url);
    if (parsed.origin === origin || parsed.origin === origin.replace(/^http/, "ws")) return;
    if (watch.allowHost && parsed.host === watch.allowHost) {
      if (!watch.allowedSeen.includes(url)) watch.allowedSeen.push(url);
      return;
    }
    if (!watch.offOrigin.some((seen) => seen.endsWith(` ${url}`))) watch.offOrigin.push(`${label}: request ${url}`);
  });
  page.on("dialog", async (dialog) => {
    watch.dialogs.push(`${label}: ${dialog.type()} ${dialog.message()}`);
    await dialog.dismiss().catch(() => {});
  });
  page.on("pageerror", (error) => watch.pageErrors.push(`${label}: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const text = message.text();
    // A 4xx/5xx answer is logged by the browser as "Failed to load resource":
    // those are judged by the response handler below, which knows the URL.
    if (/^Failed to load resource: the server responded with a status of/.test(text)) return;
    if (/Content Security Policy|sandboxed and the 'allow-scripts' permission|net::ERR_BLOCKED_BY_CLIENT/.test(text)) {
      watch.blocked.push(`${label}: ${text.slice(0, 200)}`);
    } else {
      watch.consoleErrors.push(`${label}: ${text.slice(0, 300)}`);
    }
  });
  page.on("framenavigated", (frame) => {
    const url = frame.url();
    if (frame === page.mainFrame()) {
      const u = new URL(url);
      if (u.origin !== origin || u.pathname !== "/") watch.navigations.push(`${label}: main frame to ${url}`);
    } else if (url !== "about:srcdoc" && url !== "about:blank") {
      watch.navigations.push(`${label}: a frame to ${url}`);
    }
  });
  page.on("response", (response) => {
    const url = new URL(response.url());
    if (url.origin !== origin || response.status() < 400) return;
    const call = `${response.request().method()} ${url.pathname} ${response.status()}`;
    // The one error the console asks for on purpose: no webhook is set.
    if (call === "GET /api/webhook 404") return;
    watch.httpErrors.push(`${label}: ${call}`);
  });
  page.on("popup", (popup) => watch.popups.push(`${label}: ${popup.url()}`));
}

// ---- accessibility and screenshots ------------------------------------

const axeSource = readFileSync(plan.axe, "utf8");

async function axe(page, name) {
  // Evaluated through the protocol (the page's CSP allows no inline script);
  // the mail's sandboxed frame is left out: its content is the sender's.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { iframes: false, resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help, target: v.nodes[0]?.target }));
  });
  const serious = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  report.axe[name] = { violations: result.length, serious: serious.length, ids: result.map((v) => `${v.id}:${v.impact}`) };
  if (serious.length) fail(`axe on ${name}: ${JSON.stringify(serious)}`);
}

async function shots(page, name) {
  for (const width of [1280, 360]) {
    await page.setViewportSize({ width, height: width === 360 ? 740 : 800 });
    await sleep(150);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    if (overflow > 1) fail(`${name} at ${width} px scrolls sideways by ${overflow} px`);
    const path = join(plan.shots, `${name}-${width}.png`);
    await page.screenshot({ path, fullPage: false });
    report.screenshots.push(path);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

async function view(page, hash, selector) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
  await rendered(page, hash);
  await page.waitForSelector(selector, { timeout: 15_000 });
}

/** Waits until the console has finished rendering the view at `hash`. */
async function rendered(page, hash) {
  await page.waitForFunction(
    (h) => {
      const main = document.getElementById("main");
      return location.hash === h && main.dataset.view === h && main.getAttribute("aria-busy") === "false";
    },
    hash,
    { timeout: 15_000 },
  );
}

async function mailFrame(page) {
  const handle = await page.waitForSelector("iframe.mail-frame", { timeout: 10_000 });
  const frame = await handle.contentFrame();
  if (!frame) fail("the mail frame has no document");
  await frame.waitForLoadState("load");
  return frame;
}

// ---- the run -----------------------------------------------------------

mkdirSync(plan.shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: plan.chromium,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
  ],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: "Europe/Paris", locale: "en-GB" });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
  const page = await context.newPage();
  await instrument(context, page, "full");
  let loads = 0;
  page.on("load", () => (loads += 1));

  // Sign in.
  const start = violations();
  const response = await page.goto(`${plan.base}/`);
  const csp = response.headers()["content-security-policy"] || "";
  if (!csp.includes("frame-ancestors 'none'") || !csp.includes("script-src 'self'")) fail(`the page's policy: ${csp}`);
  await page.waitForSelector("#sign-in");
  await axe(page, "sign-in");
  await page.fill("input[name=key]", plan.full);
  await page.click("#sign-in");
  await page.waitForSelector("#nav:not([hidden])");
  await page.waitForFunction(() => document.getElementById("live")?.textContent === "live", null, { timeout: 15_000 });
  const stored = await page.evaluate(() => Object.keys(sessionStorage));
  if (!stored.includes("inboxkit.key") || page.url().includes(plan.full)) fail("the key is not kept in sessionStorage only");
  note("signed in; the event socket is live");

  // A mail arrives while the inbox is open: it appears without a reload.
  await page.waitForSelector(".rows");
  const code = "482913";
  const firstId = await deliver(
    plan.peer,
    `From: Peer Agent <${plan.peer}>\r\nTo: ${plan.address}\r\nSubject: Your sign-in code\r\nMessage-ID: <console-live@peer.example>\r\n\r\nYour sign-in code is ${code}.\r\nOr open https://example.com/verify?t=abc\r\n`,
  );
  await page.waitForSelector(`.row[data-id] >> text=Your sign-in code`, { timeout: 15_000 });
  if (loads !== 1) fail(`the page reloaded (${loads} loads)`);
  note(`mail ${firstId} appeared live, without a reload`);
  await axe(page, "threads");
  await shots(page, "inbox");

  // Open it; copy its code.
  await page.click(`.row >> text=Your sign-in code`);
  await page.waitForSelector(`article.message[data-id="${firstId}"]`);
  const shown = (await page.textContent(".codes .code"))?.trim();
  if (shown !== code) fail(`the code shown is ${shown}`);
  await page.getByRole("button", { name: `Copy code ${code}` }).click();
  await page.waitForFunction(() => [...document.querySelectorAll(".copy")].some((b) => b.textContent.startsWith("Copied")));
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  if (copied !== code) fail(`the clipboard holds ${copied}`);
  note("opened it and copied its code");
  await axe(page, "message");
  await shots(page, "message");

  // Reply (the `r` key) with an attachment; the reply joins the thread.
  await page.locator("body").focus();
  await page.keyboard.press("r");
  await page.waitForSelector("form.compose textarea[name=text]");
  await axe(page, "compose");
  await shots(page, "compose");
  await page.fill("textarea[name=text]", "Thanks: the code worked.");
  await page.setInputFiles("input[type=file]", {
    name: "notes.txt",
    mimeType: "text/plain",
    buffer: Buffer.from("reply attachment\n"),
  });
  await page.click("#send");
  await page.waitForFunction(() => /^#\/thread\/\d+/.test(location.hash), null, { timeout: 15_000 });
  const threadId = Number((await page.evaluate(() => location.hash)).split("/")[2]);
  await page.waitForSelector(`.thread .row >> text=You to`, { timeout: 15_000 });
  const thread = await call(plan.full, "GET", `/api/threads/${threadId}`);
  const reply = thread.json.messages.find((m) => m.direction === "outbound");
  if (thread.json.messages.length !== 2 || !reply || !reply.hasAttachments) fail(`the thread: ${JSON.stringify(thread.json)}`);
  const detailOfReply = await call(plan.full, "GET", `/api/messages/${reply.id}`);
  const attachment = detailOfReply.json.attachments[0];
  if (!attachment || attachment.name !== "notes.txt") fail(`the reply's attachment: ${JSON.stringify(detailOfReply.json.attachments)}`);
  note(`replied with an attachment: thread ${threadId} holds the reply ${reply.id} (${reply.status})`);
  await axe(page, "thread");

  // Search (the `/` key) finds it.
  await page.locator("body").focus();
  await view(page, "#/threads", "#search");
  await page.locator("body").focus();
  await page.keyboard.press("/");
  if (!(await page.evaluate(() => document.activeElement?.id === "search"))) fail("/ does not focus the search box");
  await page.keyboard.type(`${code} from:${plan.peer.split("@")[0]}`);
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => location.hash.startsWith("#/search/"));
  await rendered(page, await page.evaluate(() => location.hash));
  await page.waitForSelector(`.row[data-id="${firstId}"]`, { timeout: 15_000 });
  note("search found it");
  await axe(page, "search");

  // j/k move through the list; Enter opens.
  await view(page, "#/messages", ".row[data-id]");
  await page.locator("body").focus();
  await page.keyboard.press("j");
  const focused = await page.evaluate(() => document.activeElement?.classList.contains("row"));
  if (!focused) fail("j does not focus a row");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => /^#\/(message|thread)\//.test(location.hash), null, { timeout: 15_000 });
  await page.waitForSelector("article.message");
  note("j and Enter open a message");
  await view(page, "#/messages", ".row[data-id]");
  await axe(page, "messages");
  await view(page, "#/settings", "form");
  await axe(page, "settings");
  await shots(page, "settings");

  const afterFlows = clean(start);
  if (afterFlows.length) fail(`the flows themselves: ${detail(start)}`);

  // ---- hostile mail ----------------------------------------------------
  const files = readdirSync(plan.hostile).filter((f) => f.endsWith(".eml")).sort();
  if (files.length < 30) fail(`only ${files.length} hostile mails`);
  for (const file of files) {
    const raw = toOutside(readFileSync(join(plan.hostile, file), "utf8").replaceAll("{{TO}}", plan.address));
    const marker = raw.match(/VISIBLE-\d+/)[0];
    const id = await deliver("attacker@evil.example", raw);
    const since = violations();
    const blockedBefore = watch.blocked.length;
    await view(page, `#/message/${id}`, `article.message[data-id="${id}"]`);
    let where = "html";
    let text = "";
    if (await page.$("iframe.mail-frame")) {
      const frame = await mailFrame(page);
      text = await frame.locator("body").innerText({ timeout: 5_000 }).catch(() => "");
      const links = await frame.$$eval("a, area", (all) =>
        all.map((a) => ({ href: a.getAttribute("href"), rel: a.getAttribute("rel"), target: a.getAttribute("target") })),
      );
      for (const link of links) {
        if (link.href !== null && !/^(https?:|mailto:|#)/i.test(link.href.trim())) fail(`${file}: a live link ${link.href}`);
        if (link.rel !== "noopener noreferrer" || link.target !== "_blank") fail(`${file}: a link opens without noopener: ${JSON.stringify(link)}`);
      }
      const sandbox = await page.getAttribute("iframe.mail-frame", "sandbox");
      if (/allow-scripts|allow-same-origin|allow-forms|allow-top-navigation/.test(sandbox || "")) fail(`${file}: sandbox ${sandbox}`);
    }
    if (!text.includes(marker)) {
      where = "text";
      const toggle = await page.$("#text-toggle");
      if (toggle) await toggle.click();
      text = await page.locator(".text-body").innerText();
    }
    if (!text.includes(marker)) fail(`${file}: ${marker} is not shown (${text.slice(0, 200)})`);
    // Give a refresh, a late load or a timer a moment to show itself.
    await sleep(400);
    const bad = clean(since);
    if (bad.length) fail(`${file}: ${detail(since)}`);
    if (hits.length) fail(`${file}: the outside server was reached: ${JSON.stringify(hits)}`);
    const entry = { file, id, shown: where, blocked: watch.blocked.length - blockedBefore };
    const subject = (await page.textContent("#subject")) || "";
    if (file.includes("subject-html") && !subject.startsWith("<img src=x onerror=alert(1)><b>")) fail(`${file}: subject shown as ${subject}`);
    if (file.includes("from-name-html")) {
      const facts = await page.textContent(".facts");
      if (!facts.includes("<script>alert(1)</script>")) fail(`${file}: the sender's name is not shown as text: ${facts}`);
      if (!text.includes("<script>alert('PWNED')</script>")) fail(`${file}: the text body is not shown as text`);
    }
    if (file.includes("filename-html")) {
      const name = await page.textContent(".file-name");
      if (name !== "<img src=x onerror=alert(1)>.html") fail(`${file}: the file name is shown as ${name}`);
    }
    if (await page.$("#load-remote")) entry.remoteBlocked = true;
    report.hostile.push(entry);
  }
  note(`${files.length} hostile mails opened: no script, no request off the deployment, text shown`);

  // Positive control: the tracking pixel loads once, and only once asked.
  const pixelFile = files.find((f) => f.includes("tracking-pixel"));
  const pixel = report.hostile.find((h) => h.file === pixelFile);
  await view(page, `#/message/${pixel.id}`, `article.message[data-id="${pixel.id}"]`);
  await mailFrame(page);
  await sleep(300);
  if (watch.allowedSeen.length || hits.length) fail("the pixel loaded before it was asked for");
  watch.allowHost = outsideHost;
  await page.click("#load-remote");
  const deadline = Date.now() + 10_000;
  while (!hits.length && Date.now() < deadline) await sleep(100);
  watch.allowHost = null;
  while (!hits.some((hit) => hit.startsWith("GET /pixel.gif?u=42")) && Date.now() < deadline) await sleep(100);
  if (!hits.some((hit) => hit.startsWith("GET /pixel.gif?u=42"))) {
    const frame = await mailFrame(page);
    const images = await frame.$$eval("img", (all) => all.map((i) => i.outerHTML)).catch((e) => `(${e.message})`);
    const csp = await page.getAttribute("iframe.mail-frame", "csp");
    fail(
      `after Load remote images, the pixel was still not requested: the check could not see a leak ` +
        `(images ${JSON.stringify(images)}; frame csp ${csp}; last reports ${JSON.stringify(watch.blocked.slice(-3))}; off-origin ${JSON.stringify(watch.offOrigin.slice(-3))}; server hits ${JSON.stringify(hits)})`,
    );
  }
  report.positiveControl = { server: hits, requestEvents: watch.allowedSeen };
  note(`after "Load remote images" the pixel was requested (${hits.join(", ")})`);

  // ---- a read key ------------------------------------------------------
  const readContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const readPage = await readContext.newPage();
  await instrument(readContext, readPage, "read");
  const readStart = violations();
  await readPage.goto(`${plan.base}/`);
  await readPage.fill("input[name=key]", plan.read);
  await readPage.click("#sign-in");
  await readPage.waitForSelector("#nav:not([hidden])");
  // The first view (the threads) has rendered: the console is signed in.
  await readPage.waitForFunction(() => document.getElementById("main").getAttribute("aria-busy") === "false");
  if (await readPage.isVisible("#compose-button")) fail("a read key sees the compose button");
  await view(readPage, `#/message/${firstId}`, "#main").catch((e) => fail(`a read key's message view: ${e.message}`));
  if (!(await readPage.$(`article.message[data-id="${firstId}"]`))) {
    fail(`a read key's message view shows: ${(await readPage.textContent("#main")).slice(0, 300)}`);
  }
  if ((await readPage.$("#reply")) || (await readPage.$("#forward"))) fail("a read key sees reply or forward");
  await axe(readPage, "message (read key)");
  await readPage.evaluate(() => {
    location.hash = "#/compose";
  });
  await readPage.waitForSelector(".card .error");
  const refused = await readPage.evaluate(async (key) => {
    const r = await fetch("/api/messages", {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ to: "someone@example.com", subject: "x", text: "x" }),
    });
    return r.status;
  }, plan.read);
  if (refused !== 403) fail(`the API answered a read key's send with ${refused}`);
  // That 403 was the point: it is not a fault of the console.
  const expected = watch.httpErrors.indexOf("read: POST /api/messages 403");
  if (expected === -1) fail("the refused send was not seen by the recorder");
  watch.httpErrors.splice(expected, 1);
  if (clean(readStart).length) fail(`read key: ${detail(readStart)}`);
  note("a read key sees no compose or reply, and the API refuses its send (403)");
  report.blockedReports = watch.blocked.length;
  report.violations = violations();
  writeFileSync(join(plan.shots, "report.json"), JSON.stringify(report, null, 2));
  console.log(JSON.stringify(report));
} finally {
  await browser.close();
  outside.close();
}
