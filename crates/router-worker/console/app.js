// The console: sign-in, the mailbox (threads, messages, search), a thread,
// a message, compose, settings; live updates over the WebSocket; keyboard
// navigation. Views live in the URL's fragment (never the key).

import { ApiError, api, forget, key, live, setKey } from "./api.js";
import { showCompose } from "./compose.js";
import { confirmButton, field, fill, h, sender, when } from "./dom.js";
import { showMessage } from "./mail.js";
import { showSettings } from "./settings.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const statusLine = document.getElementById("status");
const composeButton = document.getElementById("compose-button");

const state = { me: null, stopLive: null, refresh: null, newest: 0, generation: 0 };

function status(text) {
  statusLine.textContent = text;
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function signOut(reason) {
  if (state.stopLive) state.stopLive();
  state.stopLive = null;
  state.me = null;
  forget();
  nav.hidden = true;
  who.textContent = "";
  status(reason || "Signed out.");
  signIn();
}

function ctx() {
  return { readOnly: state.me.scope !== "full", go, status, signOut };
}

function signIn(error) {
  const [keyField, input] = field(
    "API key",
    h("input", { type: "password", name: "key", autocomplete: "off", spellcheck: "false", required: true }),
    "The inbox's key from signup (ik_…). It is kept in this tab only.",
  );
  const message = h("p", { class: "error", role: "alert" }, error || "");
  const form = h(
    "form",
    { class: "card sign-in", "aria-labelledby": "sign-in-title" },
    h("h2", { id: "sign-in-title" }, "Sign in to an inbox"),
    keyField,
    h("button", { type: "submit", class: "primary", id: "sign-in" }, "Sign in"),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setKey(input.value.trim());
    try {
      await start();
    } catch (e) {
      forget();
      message.textContent = e instanceof ApiError && e.status === 401 ? "That key is not valid." : e.message;
    }
  });
  fill(main, form);
  input.focus();
}

async function start() {
  state.me = await api("GET", "/api/me");
  nav.hidden = false;
  composeButton.hidden = state.me.scope !== "full";
  fill(who, state.me.email, state.me.scope === "full" ? "" : h("span", { class: "badge" }, "read-only"), " ", h("span", { id: "live", class: "badge" }, "connecting…"));
  const latest = await api("GET", "/api/messages?limit=1");
  state.newest = latest.messages.length ? latest.messages[0].id : 0;
  state.stopLive = live(state.newest, onEvent, (up) => {
    const badge = document.getElementById("live");
    if (badge) badge.textContent = up ? "live" : "reconnecting…";
  });
  await route();
}

function onEvent(frame) {
  if (frame.type !== "message.received" && frame.type !== "message.sent") return;
  const m = frame.message;
  if (!frame.replay) {
    status(frame.type === "message.received" ? `New mail from ${sender(m)}: ${m.subject || "(no subject)"}` : `Sent: ${m.subject || "(no subject)"} (${m.status || "sent"})`);
  }
  if (state.refresh) state.refresh(m);
}

// ---- the mailbox --------------------------------------------------------

function searchForm(q) {
  const input = h("input", { type: "search", id: "search", name: "q", value: q || "", placeholder: "from:github code is:unread", autocomplete: "off" });
  const form = h(
    "form",
    { role: "search", class: "search" },
    h("label", { for: "search", class: "sr-only" }, "Search mail"),
    input,
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go(input.value.trim() ? `#/search/${encodeURIComponent(input.value.trim())}` : "#/threads");
  });
  return form;
}

function threadRow(t) {
  return h(
    "li",
    {},
    h(
      "a",
      { class: `row${t.unreadCount ? " unread" : ""}`, href: `#/thread/${t.id}`, dataset: { id: String(t.id) } },
      h("span", { class: "who" }, t.participants.join(", ")),
      t.messageCount > 1 ? h("span", { class: "count", "aria-label": `${t.messageCount} messages` }, String(t.messageCount)) : null,
      t.unreadCount ? h("span", { class: "sr-only" }, "unread") : null,
      h("span", { class: "subject" }, t.subject || "(no subject)"),
      h("span", { class: "preview" }, t.preview || ""),
      t.hasAttachments ? h("span", { class: "clip", "aria-label": "has attachments" }, "📎") : null,
      h("span", { class: "time" }, when(t.lastMessageAt, true)),
    ),
  );
}

function messageRow(m) {
  return h(
    "li",
    {},
    h(
      "a",
      { class: `row${m.read ? "" : " unread"}`, href: `#/message/${m.id}`, dataset: { id: String(m.id) } },
      h("span", { class: "who" }, m.direction === "outbound" ? `To ${m.to}` : sender(m)),
      m.read ? null : h("span", { class: "sr-only" }, "unread"),
      h("span", { class: "subject" }, m.subject || "(no subject)"),
      h("span", { class: "preview" }, m.snippet || m.preview || ""),
      m.hasAttachments ? h("span", { class: "clip", "aria-label": "has attachments" }, "📎") : null,
      h("span", { class: "time" }, when(m.receivedAt, true)),
    ),
  );
}

async function showList(kind, q) {
  const title = kind === "threads" ? "Threads" : kind === "messages" ? "Messages" : `Search: ${q}`;
  const rows = h("ul", { class: "rows", "aria-label": title });
  const more = h("button", { type: "button", class: "more", hidden: true }, "Load more");
  const note = h("p", { class: "hint" });
  let cursor = null;
  const page = async (first) => {
    const params = new URLSearchParams({ limit: "25" });
    if (cursor !== null && !first) params.set("cursor", String(cursor));
    let items;
    if (kind === "threads") {
      const answer = await api("GET", `/api/threads?${params}`);
      items = answer.threads.map(threadRow);
      cursor = answer.nextCursor;
    } else if (kind === "messages") {
      const answer = await api("GET", `/api/messages?${params}`);
      items = answer.messages.map(messageRow);
      cursor = answer.nextCursor;
    } else {
      params.set("q", q);
      const answer = await api("GET", `/api/messages/search?${params}`);
      items = answer.messages.map(messageRow);
      cursor = answer.nextCursor;
      note.textContent = answer.complete === false ? "Older mail is still being indexed: results may be missing some." : "";
    }
    if (first) fill(rows, items);
    else rows.append(...items);
    more.hidden = cursor === null || cursor === undefined;
    if (first && !items.length) fill(rows, h("li", { class: "empty" }, kind === "search" ? "Nothing matches." : "No mail yet."));
  };
  more.addEventListener("click", () => page(false).catch(fail));
  await page(true);
  fill(main, h("div", { class: "list-head" }, h("h2", {}, title), searchForm(q)), note, rows, more);
  // New mail re-reads the first page (a search is left as the viewer made it).
  state.refresh = kind === "search" ? null : () => page(true).catch(fail);
}

async function showThread(id, selected) {
  const thread = await api("GET", `/api/threads/${id}`);
  const pick = selected ?? thread.messages[thread.messages.length - 1]?.id;
  const detail = h("div", { class: "detail" });
  const list = h(
    "ol",
    { class: "rows thread", "aria-label": "Messages in this thread, oldest first" },
    thread.messages.map((m) =>
      h(
        "li",
        {},
        h(
          "a",
          {
            class: `row${m.read ? "" : " unread"}${m.id === pick ? " current" : ""}`,
            href: `#/thread/${id}/${m.id}`,
            "aria-current": m.id === pick ? "true" : false,
            dataset: { id: String(m.id) },
          },
          h("span", { class: "who" }, m.direction === "outbound" ? `You to ${m.to}` : sender(m)),
          h("span", { class: "preview" }, (m.extractedText || m.preview || "").slice(0, 300)),
          h("span", { class: "time" }, when(m.receivedAt, true)),
        ),
      ),
    ),
  );
  const remove = state.me.scope === "full"
    ? confirmButton("Delete thread", "Really delete the whole thread?", async () => {
        await api("DELETE", `/api/threads/${id}`);
        status("Thread deleted.");
        go("#/threads");
      })
    : null;
  fill(
    main,
    h(
      "div",
      { class: "list-head" },
      h("h2", {}, thread.subject || "(no subject)"),
      h("p", { class: "hint" }, `${thread.messageCount} message${thread.messageCount === 1 ? "" : "s"} · ${thread.participants.join(", ")}`),
      h("a", { class: "button", href: "#/threads" }, "Back to threads"),
      remove,
    ),
    list,
    detail,
  );
  if (pick !== undefined) await showMessage(detail, pick, ctx());
  state.refresh = (m) => {
    if (m.threadId === id) showThread(id, m.id).catch(fail);
  };
}

// ---- routing ------------------------------------------------------------

function fail(e) {
  if (e instanceof ApiError && e.status === 401) {
    signOut("The key is no longer valid.");
    return;
  }
  fill(main, h("div", { class: "card" }, h("h2", {}, e instanceof ApiError && e.status === 404 ? "Not found" : "Something went wrong"), h("p", { class: "error", role: "alert" }, e.message), h("a", { class: "button", href: "#/threads" }, "Back to the inbox")));
}

async function route() {
  if (!state.me) return;
  const generation = ++state.generation;
  state.refresh = null;
  // Assistive technology (and the browser test) can tell a view is ready.
  main.setAttribute("aria-busy", "true");
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const number = (s) => (/^[1-9][0-9]{0,15}$/.test(s || "") ? Number(s) : null);
  for (const a of nav.querySelectorAll("a")) {
    a.toggleAttribute("aria-current", a.getAttribute("href") === `#/${parts[0] || "threads"}`);
  }
  try {
    switch (parts[0]) {
      case "":
      case "threads":
        await showList("threads");
        break;
      case "messages":
        await showList("messages");
        break;
      case "search":
        await showList("search", decodeURIComponent(parts.slice(1).join("/")));
        break;
      case "thread":
        if (number(parts[1]) === null) throw new ApiError(404, "not_found", "There is no such thread.");
        await showThread(number(parts[1]), number(parts[2]) ?? undefined);
        break;
      case "message": {
        if (number(parts[1]) === null) throw new ApiError(404, "not_found", "There is no such message.");
        const detail = h("div", { class: "detail" });
        fill(main, h("a", { class: "button", href: "#/messages" }, "Back to messages"), detail);
        await showMessage(detail, number(parts[1]), ctx());
        break;
      }
      case "compose": {
        if (state.me.scope !== "full") throw new ApiError(403, "forbidden", "A read key cannot send.");
        const mode = parts[1] || "new";
        if (!["new", "reply", "reply-all", "forward"].includes(mode) || (mode !== "new" && number(parts[2]) === null)) {
          throw new ApiError(404, "not_found", "There is no such page.");
        }
        await showCompose(main, mode, number(parts[2]), ctx());
        break;
      }
      case "settings":
        await showSettings(main, ctx());
        break;
      default:
        throw new ApiError(404, "not_found", "There is no such page.");
    }
    if (generation === state.generation && !main.contains(document.activeElement)) main.focus({ preventScroll: true });
  } catch (e) {
    if (generation === state.generation) fail(e);
  } finally {
    if (generation === state.generation) {
      main.setAttribute("aria-busy", "false");
      main.dataset.view = location.hash || "#/threads";
    }
  }
}

// ---- keyboard -----------------------------------------------------------

function typing(target) {
  return target.closest("input, textarea, select, [contenteditable]") !== null;
}

document.addEventListener("keydown", (event) => {
  if (!state.me || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
  const rows = [...main.querySelectorAll(".row")];
  const at = rows.indexOf(document.activeElement);
  const click = (id) => document.getElementById(id)?.click();
  switch (event.key) {
    case "j":
    case "k": {
      if (!rows.length) return;
      const start = at === -1 ? rows.findIndex((r) => r.classList.contains("current")) : at;
      const next = event.key === "j" ? Math.min(start + 1, rows.length - 1) : Math.max(start - 1, 0);
      rows[next === -1 ? 0 : next].focus();
      break;
    }
    case "/": {
      const search = document.getElementById("search");
      if (search) search.focus();
      else go("#/threads");
      break;
    }
    case "r":
      click("reply");
      break;
    case "a":
      click("reply-all");
      break;
    case "f":
      click("forward");
      break;
    case "c":
      if (state.me.scope === "full") go("#/compose");
      break;
    case "u":
    case "Escape":
      if (!location.hash.startsWith("#/threads") && location.hash !== "") go("#/threads");
      break;
    default:
      return;
  }
  event.preventDefault();
});

window.addEventListener("hashchange", route);
// The skip link moves focus without touching the fragment (which names views).
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
composeButton.addEventListener("click", () => go("#/compose"));
document.getElementById("sign-out").addEventListener("click", () => signOut());

if (key()) start().catch((e) => (e instanceof ApiError && e.status === 401 ? signOut("The key is no longer valid.") : fail(e)));
else signIn();
