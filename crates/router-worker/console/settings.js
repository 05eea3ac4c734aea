// The inbox's settings: retention, the webhook and its delivery log, keys,
// and deleting the inbox (typed confirmation). A read key sees the inbox
// facts only: the API refuses it everything else anyway.

import { ApiError, api } from "./api.js";
import { confirmButton, field, fill, h, when } from "./dom.js";

function section(title, id, ...body) {
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), body);
}

function shownOnce(label, value) {
  const button = h("button", { type: "button", class: "copy" }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(value);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed: select it by hand";
    }
  });
  return h("div", { class: "secret", role: "alert" }, h("p", {}, `${label} (shown only now):`), h("code", {}, value), button);
}

async function webhook(ctx) {
  const out = h("div", {});
  const render = async (created) => {
    let current = null;
    try {
      current = await api("GET", "/api/webhook");
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 404) throw e;
    }
    const [urlField, url] = field("Webhook URL", h("input", { type: "url", name: "url", value: current ? current.url : "", placeholder: "https://example.com/hooks/mail" }));
    const error = h("p", { class: "error", role: "alert" });
    const form = h(
      "form",
      { class: "inline-form" },
      urlField,
      h("button", { type: "submit", class: "primary" }, current ? "Replace" : "Set"),
      error,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const made = await api("PUT", "/api/webhook", { url: url.value });
        await render(made);
      } catch (e) {
        error.textContent = e.message;
      }
    });
    const deliveries = current ? (await api("GET", "/api/webhook/deliveries")).deliveries : [];
    fill(
      out,
      current ? h("p", {}, "Posting to ", h("code", {}, current.url), " since ", when(current.createdAt)) : h("p", {}, "No webhook is set."),
      created ? shownOnce("Signing secret", created.secret) : null,
      form,
      current ? confirmButton("Remove webhook", "Really remove?", async () => {
        await api("DELETE", "/api/webhook");
        await render(null);
      }) : null,
      h("h3", {}, "Delivery log"),
      deliveries.length
        ? h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { class: "deliveries" },
              h("caption", { class: "sr-only" }, "Webhook deliveries, newest first"),
              h("thead", {}, h("tr", {}, ["When", "Event", "Message", "Attempt", "Status", "Error", "Next attempt"].map((t) => h("th", { scope: "col" }, t)))),
              h(
                "tbody",
                {},
                deliveries.map((d) =>
                  h(
                    "tr",
                    {},
                    h("td", {}, when(d.at)),
                    h("td", {}, d.event),
                    h("td", {}, h("a", { href: `#/message/${d.messageId}` }, `#${d.messageId}`)),
                    h("td", {}, String(d.attempt)),
                    h("td", {}, d.statusCode ? String(d.statusCode) : "—"),
                    h("td", {}, d.error || ""),
                    h("td", {}, d.nextAttemptAt ? when(d.nextAttemptAt) : "—"),
                  ),
                ),
              ),
            ),
          )
        : h("p", {}, "No deliveries yet."),
    );
  };
  await render(null);
  return section("Webhook", "webhook-title", out);
}

async function keys(ctx) {
  const out = h("div", {});
  const render = async (created) => {
    const { keys: all } = await api("GET", "/api/keys");
    const [nameField, name] = field("Name", h("input", { type: "text", name: "name", required: true, maxlength: "64" }));
    const scope = h("select", { name: "scope" }, h("option", { value: "read" }, "read: may only read"), h("option", { value: "full" }, "full: may do everything"));
    const [scopeField] = field("Scope", scope);
    const error = h("p", { class: "error", role: "alert" });
    const form = h("form", { class: "inline-form" }, nameField, scopeField, h("button", { type: "submit", class: "primary" }, "Create key"), error);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const made = await api("POST", "/api/keys", { name: name.value, scope: scope.value });
        await render(made);
      } catch (e) {
        error.textContent = e.message;
      }
    });
    fill(
      out,
      created ? shownOnce(`Key “${created.name}”`, created.apiKey) : null,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "keys" },
          h("caption", { class: "sr-only" }, "API keys"),
          h("thead", {}, h("tr", {}, [...["Name", "Scope", "Starts with", "Created", "Last used"].map((t) => h("th", { scope: "col" }, t)), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions"))])),
          h(
            "tbody",
            {},
            all.map((k) =>
              h(
                "tr",
                {},
                h("td", {}, k.name),
                h("td", {}, k.scope),
                h("td", {}, k.prefix ? h("code", {}, `${k.prefix}…`) : "—"),
                h("td", {}, when(k.createdAt)),
                h("td", {}, k.lastUsedAt ? when(k.lastUsedAt) : "never"),
                h(
                  "td",
                  {},
                  confirmButton("Delete", "Really delete?", async () => {
                    try {
                      await api("DELETE", `/api/keys/${k.id}`);
                      await render(null);
                    } catch (e) {
                      ctx.status(e.message);
                    }
                  }),
                ),
              ),
            ),
          ),
        ),
      ),
      form,
    );
  };
  await render(null);
  return section("Keys", "keys-title", out);
}

function retention(me, ctx) {
  const [daysField, days] = field(
    "Keep messages for (days)",
    h("input", { type: "number", min: "1", max: "3650", name: "retention", value: me.retentionDays ?? "" }),
    "Empty keeps them until deleted.",
  );
  const form = h("form", { class: "inline-form" }, daysField, h("button", { type: "submit" }, "Save"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("PATCH", "/api/me", { retentionDays: days.value ? Number(days.value) : null });
      ctx.status("Retention saved.");
    } catch (e) {
      ctx.status(e.message);
    }
  });
  return form;
}

function danger(me, ctx) {
  const [typedField, typed] = field("Type the inbox's address to delete it", h("input", { type: "text", name: "confirm", autocomplete: "off" }));
  const button = h("button", { type: "submit", class: "danger", disabled: true }, "Delete this inbox for ever");
  typed.addEventListener("input", () => (button.disabled = typed.value !== me.email));
  const form = h(
    "form",
    { class: "danger-zone" },
    h("p", {}, "Every message, the webhook and every key are erased; mail to the address is refused from then on, and the address is never given out again."),
    typedField,
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (typed.value !== me.email) return;
    await api("DELETE", "/api/me");
    ctx.signOut("The inbox was deleted.");
  });
  return section("Delete the inbox", "danger-title", form);
}

export async function showSettings(el, ctx) {
  const me = await api("GET", "/api/me");
  const facts = section(
    "This inbox",
    "inbox-title",
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Address"),
      h("dd", {}, me.email),
      h("dt", {}, "Created"),
      h("dd", {}, when(me.createdAt)),
      h("dt", {}, "Messages"),
      h("dd", {}, String(me.messageCount)),
      h("dt", {}, "This key"),
      h("dd", {}, me.scope),
      h("dt", {}, "Retention"),
      h("dd", {}, me.retentionDays ? `${me.retentionDays} days` : "kept until deleted"),
    ),
    ctx.readOnly ? h("p", { class: "hint" }, "A read key can only read: the settings need a full key.") : retention(me, ctx),
  );
  if (ctx.readOnly) {
    fill(el, facts);
    return;
  }
  fill(el, facts, await webhook(ctx), await keys(ctx), danger(me, ctx));
}
