// The public API, as any client calls it. The key lives in sessionStorage
// only (gone when the tab closes; never in a URL, a cookie or a log) and
// travels as `Authorization: Bearer`, or, for the WebSocket, as the
// `inboxkit.key.<key>` subprotocol a browser can set.

const KEY = "inboxkit.key";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function key() {
  return sessionStorage.getItem(KEY);
}

export function setKey(value) {
  sessionStorage.setItem(KEY, value);
}

export function forget() {
  sessionStorage.removeItem(KEY);
}

/** Calls `path`; answers the parsed JSON (null for 204), or throws ApiError. */
export async function api(method, path, body, extraHeaders = {}) {
  const headers = { authorization: `Bearer ${key()}`, ...extraHeaders };
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "network", `The deployment did not answer (${e.message}).`);
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  if (!type.includes("json")) {
    if (response.ok) return response;
    throw new ApiError(response.status, "http", `HTTP ${response.status}`);
  }
  const json = await response.json();
  if (!response.ok) {
    throw new ApiError(response.status, json.code || "http", json.error || `HTTP ${response.status}`);
  }
  return json;
}

/** The bytes at `path` (raw message, attachment) as a Blob. */
export async function blob(path) {
  const response = await fetch(path, {
    headers: { authorization: `Bearer ${key()}` },
    cache: "no-store",
    credentials: "omit",
  });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try {
      message = (await response.json()).error || message;
    } catch {
      // not JSON: keep the status
    }
    throw new ApiError(response.status, "http", message);
  }
  return response.blob();
}

/** Saves `data` as a file named `name` (the browser's download). */
export function save(data, name) {
  const url = URL.createObjectURL(data);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.rel = "noopener";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** A File as base64 (for an attachment in a send). */
export function base64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ""));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

/**
 * Live events: calls `onEvent` with each frame; reconnects with backoff and
 * subscribes from the newest id seen, so nothing stored meanwhile is missed.
 * Returns a function that closes it.
 */
export function live(after, onEvent, onState) {
  let socket;
  let closed = false;
  let delay = 1000;
  let newest = after;
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/api/events`, [`inboxkit.key.${key()}`]);
    socket.addEventListener("open", () => {
      delay = 1000;
      onState(true);
      socket.send(JSON.stringify({ type: "subscribe", after: newest }));
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.message && frame.message.id > newest) newest = frame.message.id;
      onEvent(frame);
    });
    socket.addEventListener("close", () => {
      onState(false);
      if (closed) return;
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 30_000);
    });
  };
  open();
  return () => {
    closed = true;
    socket.close();
  };
}
