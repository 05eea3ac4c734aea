// Compose, reply, reply all and forward, with attachments. Each form carries
// its own Idempotency-Key, so a double click or a retry after a lost answer
// sends once.

import { api, base64 } from "./api.js";
import { field, fill, h, sender } from "./dom.js";

const list = (value) =>
  value
    .split(/[,;\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);

/** mode: "new" | "reply" | "reply-all" | "forward"; id: the original's. */
export async function showCompose(el, mode, id, ctx) {
  const original = id ? await api("GET", `/api/messages/${id}`) : null;
  const idempotencyKey = crypto.randomUUID();
  const [toField, to] = field(
    "To",
    h("input", { type: "text", name: "to", autocomplete: "off", required: mode === "new" || mode === "forward" }),
    "Addresses separated by commas.",
  );
  const [ccField, cc] = field("Cc", h("input", { type: "text", name: "cc", autocomplete: "off" }));
  const [bccField, bcc] = field("Bcc", h("input", { type: "text", name: "bcc", autocomplete: "off" }));
  const [subjectField, subject] = field("Subject", h("input", { type: "text", name: "subject" }));
  const [textField, text] = field("Message", h("textarea", { name: "text", rows: "10", required: mode !== "forward" }));
  const [filesField, files] = field("Attachments", h("input", { type: "file", name: "attachments", multiple: true }), "Up to 10 MiB in all.");
  const error = h("p", { class: "error", role: "alert" });
  const send = h("button", { type: "submit", class: "primary", id: "send" }, "Send");

  let heading = "New message";
  let fields = [toField, ccField, bccField, subjectField, textField, filesField];
  if (mode === "reply" || mode === "reply-all") {
    heading = mode === "reply" ? "Reply" : "Reply all";
    const target = original.replyTo.length ? original.replyTo.join(", ") : original.from;
    fields = [
      h("p", { class: "hint" }, `To ${target}${mode === "reply-all" ? " and everyone on the original" : ""}; “Re: ${original.subject || ""}”.`),
      textField,
      filesField,
    ];
  } else if (mode === "forward") {
    heading = "Forward";
    fields = [
      h("p", { class: "hint" }, `Forwarding “${original.subject || "(no subject)"}” from ${sender(original)} with its attachments.`),
      toField,
      ccField,
      bccField,
      textField,
      filesField,
    ];
  }

  const form = h(
    "form",
    { class: "compose", "aria-labelledby": "compose-title", novalidate: true },
    h("h2", { id: "compose-title" }, heading),
    fields,
    error,
    h("div", { class: "actions" }, send, h("a", { class: "button", href: original ? `#/message/${id}` : "#/threads" }, "Cancel")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    send.disabled = true;
    send.textContent = "Sending…";
    try {
      const attachments = await Promise.all(
        [...files.files].map(async (file) => ({
          filename: file.name,
          contentType: file.type || undefined,
          content: await base64(file),
        })),
      );
      let path;
      let body;
      if (mode === "new") {
        path = "/api/messages";
        body = { to: list(to.value), subject: subject.value || undefined, text: text.value };
        if (list(cc.value).length) body.cc = list(cc.value);
        if (list(bcc.value).length) body.bcc = list(bcc.value);
      } else if (mode === "forward") {
        path = `/api/messages/${id}/forward`;
        body = { to: list(to.value) };
        if (text.value) body.text = text.value;
        if (list(cc.value).length) body.cc = list(cc.value);
        if (list(bcc.value).length) body.bcc = list(bcc.value);
      } else {
        path = `/api/messages/${id}/reply`;
        body = { text: text.value, replyAll: mode === "reply-all" };
      }
      if (attachments.length) body.attachments = attachments;
      const sent = await api("POST", path, body, { "idempotency-key": idempotencyKey });
      const failed = sent.recipients.filter((r) => r.status === "failed");
      ctx.status(
        failed.length
          ? `Sent, but not to ${failed.map((r) => `${r.address} (${r.statusReason || "failed"})`).join(", ")}.`
          : `Sent (${sent.status}).`,
      );
      ctx.go(sent.threadId ? `#/thread/${sent.threadId}` : `#/message/${sent.id}`);
    } catch (e) {
      error.textContent = e.message;
      send.disabled = false;
      send.textContent = "Send";
    }
  });
  fill(el, form);
  (mode === "reply" || mode === "reply-all" ? text : to).focus();
}
