// Building the page. Everything from the API (names, subjects, file names,
// bodies) reaches the document as text nodes or attribute values set through
// the DOM, never as HTML: no HTML string is ever parsed into the console's page.

/** An element: `h("p", {class: "x", onclick: fn}, "text", child, ...)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces `el`'s children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const stamp = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const today = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });

/** An RFC 3339 time in the viewer's time zone, as a `<time>`. */
export function when(iso, short = false) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const sameDay = new Date().toDateString() === date.toDateString();
  const label = short && sameDay ? today.format(date) : stamp.format(date);
  return h("time", { datetime: iso, title: stamp.format(date) }, label);
}

/** 1234567 → "1.2 MB". */
export function bytes(n) {
  if (!Number.isFinite(n)) return "";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A sender as "Name <address>" (or the address alone). */
export function sender(summary) {
  return summary.fromName ? `${summary.fromName} <${summary.from}>` : summary.from;
}

/** A labelled form field; returns [wrapper, control]. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  control.id = id;
  const parts = [h("label", { for: id }, label), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return [h("div", { class: "field" }, parts), control];
}

/** A button that asks once more before it acts (no native dialogs). */
export function confirmButton(label, confirmLabel, action) {
  let armed = false;
  let timer;
  const button = h("button", { type: "button", class: "danger" }, label);
  button.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      button.textContent = confirmLabel;
      button.setAttribute("aria-pressed", "true");
      timer = setTimeout(() => {
        armed = false;
        button.textContent = label;
        button.removeAttribute("aria-pressed");
      }, 5000);
      return;
    }
    clearTimeout(timer);
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
    }
  });
  return button;
}
