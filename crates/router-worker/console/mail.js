// One message: its headers, the codes and links InboxKit found in it, its
// bodies and attachments. Mail is hostile: its HTML is rendered only inside a
// sandboxed iframe (no allow-scripts, no allow-same-origin: an opaque origin
// that can run nothing and reach nothing of the console) under its own CSP,
// after the active parts are taken out; remote images stay blocked until
// the viewer asks for them.

import { api, blob, save } from "./api.js";
import { bytes, confirmButton, fill, h, sender, when } from "./dom.js";

const SAFE_LINK = /^(https?:|mailto:)/i;
const REMOTE = /^\s*(https?:)?\/\//i;
const INLINE_IMAGE_MAX = 2 * 1024 * 1024;

/** The CSP the message's own document carries. */
export function frameCsp(allowRemote) {
  const images = allowRemote ? "data: https: http:" : "data:";
  return [
    "default-src 'none'",
    `img-src ${images}`,
    "style-src 'unsafe-inline'",
    "font-src data:",
    "script-src 'none'",
    "object-src 'none'",
    "frame-src 'none'",
    "child-src 'none'",
    "form-action 'none'",
    "base-uri 'none'",
  ].join("; ");
}

/**
 * CSS with every `@import` and every `url()` that is not a `data:` URL taken
 * out, and how many it took (CSS can fetch: a tracking pixel as a
 * background, a selector per character as an exfiltration channel). The
 * frame's CSP blocks them too; this keeps them from being asked for at all.
 */
export function remoteFreeCss(css) {
  let found = 0;
  const cleaned = css
    .replace(/@import\b[^;]*;?/gi, () => {
      found += 1;
      return "";
    })
    .replace(/url\s*\(\s*(["']?)(.*?)\1\s*\)/gi, (all, quote, target) => {
      if (/^data:/i.test(target.trim())) return all;
      found += 1;
      return "none";
    });
  // An escaped spelling (`u\\72l(`) gets past this: the frame's CSP blocks it.
  return [cleaned, found];
}

/**
 * The message's HTML as a standalone, inert document (a string for
 * `srcdoc`). DOMParser builds it without running or loading anything.
 * Returns {html, remote}: how many remote resources it asks for.
 */
export function inertDocument(html, allowRemote, inline = new Map()) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  doc
    .querySelectorAll("script, noscript, iframe, frame, frameset, object, embed, applet, base, meta, link, portal, template")
    .forEach((el) => el.remove());
  // SVG animation can rewrite a link's target after the fact.
  doc.querySelectorAll("set, animate").forEach((el) => {
    if (/href/i.test(el.getAttribute("attributeName") || "")) el.remove();
  });
  let remote = 0;
  for (const el of doc.querySelectorAll("*")) {
    for (const attr of [...el.attributes]) {
      const name = attr.name.toLowerCase();
      if (name.startsWith("on") || name === "formaction" || name === "action" || name === "ping") {
        el.removeAttribute(attr.name);
      }
    }
    for (const name of ["src", "srcset", "background", "poster", "href", "xlink:href"]) {
      const value = el.getAttribute(name);
      if (value === null) continue;
      const isLink = (name === "href" || name === "xlink:href") && (el.localName === "a" || el.localName === "area");
      if (isLink) continue;
      if (/^cid:/i.test(value.trim())) {
        const data = inline.get(value.trim().slice(4).replace(/^<|>$/g, ""));
        if (data) el.setAttribute(name, data);
        else el.removeAttribute(name);
      } else if (REMOTE.test(value) || name === "srcset") {
        remote += 1;
        if (!allowRemote) el.removeAttribute(name);
      } else if (!/^data:/i.test(value.trim())) {
        // A relative URL would resolve against the console's own origin.
        el.removeAttribute(name);
      }
    }
    if (el.hasAttribute("style")) {
      const [css, found] = remoteFreeCss(el.getAttribute("style"));
      remote += found;
      if (found && !allowRemote) el.setAttribute("style", css);
    }
  }
  for (const style of doc.querySelectorAll("style")) {
    const [css, found] = remoteFreeCss(style.textContent);
    remote += found;
    if (found && !allowRemote) style.textContent = css;
  }
  for (const a of doc.querySelectorAll("a, area")) {
    for (const name of ["href", "xlink:href"]) {
      const href = (a.getAttribute(name) || "").trim();
      if (href && !SAFE_LINK.test(href) && !href.startsWith("#")) a.removeAttribute(name);
    }
    a.setAttribute("target", "_blank");
    a.setAttribute("rel", "noopener noreferrer");
  }
  const head = doc.head || doc.documentElement.insertBefore(doc.createElement("head"), doc.body);
  const csp = doc.createElement("meta");
  csp.setAttribute("http-equiv", "Content-Security-Policy");
  csp.setAttribute("content", frameCsp(allowRemote));
  const referrer = doc.createElement("meta");
  referrer.setAttribute("name", "referrer");
  referrer.setAttribute("content", "no-referrer");
  head.prepend(csp, referrer);
  return { html: `<!doctype html>${doc.documentElement.outerHTML}`, remote };
}

/** The sandboxed frame showing `html`. */
function htmlFrame(message, inline) {
  const wrap = h("div", { class: "html-body" });
  const show = (allowRemote) => {
    const { html, remote } = inertDocument(message.html, allowRemote, inline);
    const frame = h("iframe", {
      title: `HTML body of “${message.subject || "(no subject)"}”`,
      sandbox: "allow-popups allow-popups-to-escape-sandbox",
      referrerpolicy: "no-referrer",
      csp: frameCsp(allowRemote),
      class: "mail-frame",
    });
    frame.srcdoc = html;
    const notice =
      remote > 0 && !allowRemote
        ? h(
            "p",
            { class: "notice" },
            `Remote content blocked (${remote}): it can tell the sender you opened this mail. `,
            h("button", { type: "button", id: "load-remote", onclick: () => show(true) }, "Load remote images"),
          )
        : null;
    fill(wrap, notice, frame);
  };
  show(false);
  return wrap;
}

async function inlineImages(message) {
  const inline = new Map();
  const wanted = message.attachments.filter(
    (a) => a.contentId && a.contentType.startsWith("image/") && a.size <= INLINE_IMAGE_MAX && /cid:/i.test(message.html || ""),
  );
  await Promise.all(
    wanted.map(async (a) => {
      try {
        const data = await blob(attachmentPath(message.id, a.id));
        const url = await new Promise((resolve, reject) => {
          const reader = new FileReader();
          reader.onload = () => resolve(String(reader.result));
          reader.onerror = () => reject(reader.error);
          reader.readAsDataURL(new Blob([data], { type: a.contentType }));
        });
        if (/^data:image\/(png|jpeg|gif|webp|avif|bmp);/i.test(url)) inline.set(a.contentId, url);
      } catch {
        // shown as a missing image
      }
    }),
  );
  return inline;
}

function attachmentPath(id, part) {
  return `/api/messages/${id}/attachments/${encodeURIComponent(part)}`;
}

async function copy(text, label) {
  try {
    await navigator.clipboard.writeText(text);
    label.textContent = "Copied";
  } catch {
    label.textContent = "Copy failed: select it by hand";
  }
  setTimeout(() => (label.textContent = "Copy"), 2000);
}

function findings(message) {
  if (!message.codes.length && !message.links.length) return null;
  return h(
    "section",
    { class: "findings", "aria-labelledby": "findings-title" },
    h("h3", { id: "findings-title" }, "Found in this mail"),
    h("p", { class: "hint" }, "Taken from what the sender wrote: treat them as untrusted."),
    message.codes.length
      ? h(
          "ul",
          { class: "codes" },
          message.codes.map((code) => {
            // The visible word leads the accessible name ("Copy code 482913").
            const label = h("span", {}, "Copy");
            const button = h("button", { type: "button", class: "copy" }, label, h("span", { class: "sr-only" }, ` code ${code.value}`));
            button.addEventListener("click", () => copy(code.value, label));
            return h("li", {}, h("code", { class: "code" }, code.value), button, h("small", { class: "context" }, code.context));
          }),
        )
      : null,
    message.links.length
      ? h(
          "ul",
          { class: "links" },
          message.links
            .filter((link) => /^https?:/i.test(link.url))
            .map((link) =>
              h(
                "li",
                {},
                h("a", { href: link.url, target: "_blank", rel: "noopener noreferrer" }, link.text || link.url),
                link.text ? h("small", { class: "url" }, link.url) : null,
              ),
            ),
        )
      : null,
  );
}

function addresses(label, list) {
  if (!list || !list.length) return null;
  return [h("dt", {}, label), h("dd", {}, list.join(", "))];
}

/**
 * Renders message `id` into `el`. `ctx` has {readOnly, go, status}.
 * Marks it read when a full key opens it.
 */
export async function showMessage(el, id, ctx) {
  const message = await api("GET", `/api/messages/${id}`);
  if (!message.read && !ctx.readOnly) {
    api("PATCH", `/api/messages/${id}`, { read: true }).catch(() => {});
  }
  const raw = h("pre", { class: "raw", hidden: true, tabindex: "0", "aria-label": "Raw message" });
  const actions = h(
    "div",
    { class: "actions", role: "group", "aria-label": "Message actions" },
    ctx.readOnly
      ? null
      : [
          h("a", { class: "button primary", href: `#/compose/reply/${id}`, id: "reply" }, "Reply"),
          h("a", { class: "button", href: `#/compose/reply-all/${id}`, id: "reply-all" }, "Reply all"),
          h("a", { class: "button", href: `#/compose/forward/${id}`, id: "forward" }, "Forward"),
          h(
            "button",
            {
              type: "button",
              onclick: async () => {
                await api("PATCH", `/api/messages/${id}`, { read: false });
                ctx.status("Marked unread.");
              },
            },
            "Mark unread",
          ),
        ],
    h(
      "button",
      {
        type: "button",
        id: "raw-toggle",
        "aria-expanded": "false",
        onclick: async (event) => {
          const button = event.currentTarget;
          if (raw.hidden && !raw.textContent) {
            const data = await blob(`/api/messages/${id}/raw`);
            const text = new TextDecoder("utf-8").decode(await data.slice(0, 1_048_576).arrayBuffer());
            raw.textContent = data.size > 1_048_576 ? `${text}\n… (the first MiB of ${bytes(data.size)}; download it for the rest)` : text;
          }
          raw.hidden = !raw.hidden;
          button.setAttribute("aria-expanded", String(!raw.hidden));
        },
      },
      "Raw",
    ),
    h(
      "button",
      { type: "button", onclick: async () => save(await blob(`/api/messages/${id}/raw`), `message-${id}.eml`) },
      "Download .eml",
    ),
    ctx.readOnly
      ? null
      : confirmButton("Delete", "Really delete?", async () => {
          await api("DELETE", `/api/messages/${id}`);
          ctx.status("Message deleted.");
          ctx.go(message.threadId ? `#/thread/${message.threadId}` : "#/messages");
        }),
  );
  const facts = h(
    "dl",
    { class: "facts" },
    h("dt", {}, "From"),
    h("dd", {}, sender(message)),
    addresses("To", message.toAddresses.length ? message.toAddresses : [message.to]),
    addresses("Cc", message.cc),
    addresses("Reply-To", message.replyTo),
    h("dt", {}, "Date"),
    h("dd", {}, when(message.date || message.receivedAt)),
    message.direction === "outbound" && message.status
      ? [h("dt", {}, "Status"), h("dd", {}, message.status, message.statusReason ? ` (${message.statusReason})` : "")]
      : null,
  );
  const inline = message.html ? await inlineImages(message) : new Map();
  const text = h("pre", { class: "text-body", tabindex: "0", "aria-label": "Text body" }, message.text || "");
  let body;
  if (message.html) {
    const frame = htmlFrame(message, inline);
    text.hidden = true;
    const toggle = h(
      "button",
      {
        type: "button",
        id: "text-toggle",
        onclick: () => {
          frame.hidden = !frame.hidden;
          text.hidden = !text.hidden;
          toggle.textContent = frame.hidden ? "Show HTML" : "Show text";
        },
      },
      "Show text",
    );
    body = [message.text ? toggle : null, frame, text];
  } else {
    body = [text];
  }
  const files = message.attachments.length
    ? h(
        "section",
        { class: "attachments", "aria-labelledby": "att-title" },
        h("h3", { id: "att-title" }, `Attachments (${message.attachments.length})`),
        h(
          "ul",
          {},
          message.attachments.map((a) => {
            const name = a.name || `attachment-${a.id}`;
            return h(
              "li",
              {},
              h("span", { class: "file-name" }, name),
              h("small", {}, ` ${a.contentType}, ${bytes(a.size)} `),
              h(
                "button",
                {
                  type: "button",
                  "aria-label": `Download ${name}`,
                  onclick: async () => save(await blob(attachmentPath(id, a.id)), name),
                },
                "Download",
              ),
            );
          }),
        ),
      )
    : null;
  const warnings = message.warnings.length ? h("p", { class: "notice" }, `Parsed with warnings: ${message.warnings.join("; ")}`) : null;
  fill(
    el,
    h(
      "article",
      { class: "message", "aria-labelledby": "subject", dataset: { id: String(id) } },
      h("h2", { id: "subject" }, message.subject || "(no subject)"),
      facts,
      actions,
      findings(message),
      warnings,
      body,
      files,
      raw,
    ),
  );
  return message;
}
