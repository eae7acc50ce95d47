// Shared by every page: the session, calls to the gateway, safe DOM building, and
// time formatting. Job data only ever reaches the page as text (el() and textContent),
// never as HTML.

const SESSION = "cloudpipe.session";
export const ONGOING = ["waiting", "queued", "processing"];

// -- session: {account, key} in sessionStorage, or localStorage with "remember me" --

export function loadSession() {
  for (const storage of [sessionStorage, localStorage]) {
    try {
      const session = JSON.parse(storage.getItem(SESSION) || "null");
      if (session && session.account && session.key) return session;
    } catch {
      storage.removeItem(SESSION);
    }
  }
  return null;
}

export function saveSession(account, key, remember) {
  clearSession();
  (remember ? localStorage : sessionStorage).setItem(SESSION, JSON.stringify({ account, key }));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION);
  localStorage.removeItem(SESSION);
}

// The session of a signed-in page; without one, null, and off to log in and come back.
export function requireSession() {
  const session = loadSession();
  if (!session) {
    const here = location.pathname.split("/").pop() + location.search;
    location.replace("./?next=" + encodeURIComponent(here));
    return null;
  }
  document.getElementById("account").textContent = session.account;
  document.getElementById("logout").addEventListener("click", () => {
    clearSession();
    location.replace("./?loggedout=1");
  });
  return session;
}

// -- the gateway -----------------------------------------------------------------------

export class ApiFailure extends Error {
  constructor(status, code, message, hint) {
    super(message);
    this.status = status;
    this.code = code;
    this.hint = hint || "";
  }
}

function basic(session) {
  const bytes = new TextEncoder().encode(session.account + ":" + session.key);
  return "Basic " + btoa(String.fromCharCode(...bytes));
}

// The gateway's error envelope of a failed `response` (its `text`) as an ApiFailure.
function failureOf(response, text) {
  let data = null;
  try {
    data = JSON.parse(text);
  } catch {
    // not JSON: the text itself is the message
  }
  const error = (data && data.error) || {};
  return new ApiFailure(response.status, error.code || "HTTP", error.message || text || response.statusText, error.hint);
}

// A call with the session's Basic credentials; the parsed JSON, or an ApiFailure with
// the gateway's error envelope (status 0: the gateway did not answer). `form` is sent
// form-encoded; `file` (a Blob) as the raw body, which the browser sends with its length.
export async function api(session, path, { method = "GET", form = null, file = null, authorization = "" } = {}) {
  const headers = {};
  if (session) headers.Authorization = basic(session);
  else if (authorization) headers.Authorization = authorization;
  let body = null;
  if (form) {
    headers["Content-Type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(form).toString();
  } else if (file) {
    headers["Content-Type"] = "application/octet-stream";
    body = file;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store" });
  } catch {
    throw new ApiFailure(0, "NET", "Cannot reach the Cloudpipe gateway.");
  }
  const text = await response.text();
  if (!response.ok) throw failureOf(response, text);
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// A call of the accounts routes (/ui/api/auth/...): `token` is a sign-in token or the
// admin token, sent as Bearer; null sends no credentials.
export function authApi(token, path, options = {}) {
  return api(null, path, { ...options, authorization: token ? "Bearer " + token : "" });
}

// The sign-in of the accounts page (a session token of the auth service), kept apart
// from the API key session of the other pages.
const SIGNIN = "cloudpipe.signin";

export function loadSignin() {
  try {
    const signin = JSON.parse(sessionStorage.getItem(SIGNIN) || "null");
    if (signin && signin.token && (!signin.expires_at || new Date(signin.expires_at) > new Date())) return signin;
  } catch {
    // unreadable: forget it below
  }
  sessionStorage.removeItem(SIGNIN);
  return null;
}

export function saveSignin(signin) {
  sessionStorage.setItem(SIGNIN, JSON.stringify(signin));
}

export function clearSignin() {
  sessionStorage.removeItem(SIGNIN);
}

// A failed call as one sentence for people; a refused key ends the session.
export function explain(failure) {
  if (failure.status === 401) {
    clearSession();
    return "The gateway refused the account name or API key.";
  }
  if (failure.status === 429) return "Too many failed attempts: wait a minute, then try again.";
  if (failure.code === "ACONN") return "The server cannot check keys right now (authentication service unreachable). Try again shortly.";
  return failure.message + (failure.hint ? " " + failure.hint : "");
}

// Shows `failure` (or clears the region with null); after a refused key, a link to log in.
export function showError(region, failure) {
  region.replaceChildren();
  if (!failure) return;
  const refused = failure.status === 401;
  region.append(explain(failure));
  if (refused) region.append(" ", el("a", { href: "./" }, "Log in again"));
}

// -- DOM ----------------------------------------------------------------------------------

// el("a", {href: "x", class: "y"}, "text", child): children are nodes or text, never HTML.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

export function statusLabel(status) {
  return status ? status[0].toUpperCase() + status.slice(1) : "Unknown";
}

// The status as text (readable without colour), with a spinner while the job is ongoing.
export function statusBadge(status) {
  const marks = { done: "✓", error: "✗", killed: "■", stalled: "!" };
  const badge = el("span", { class: "status status-" + (status || "unknown") });
  if (ONGOING.includes(status)) badge.append(el("span", { class: "spinner", "aria-hidden": "true" }));
  else badge.append(el("span", { class: "mark", "aria-hidden": "true" }, marks[status] || "?"));
  badge.append(statusLabel(status));
  return badge;
}

// -- time -------------------------------------------------------------------------------

// The API's "YYYY-MM-DD HH:MM:SS.mmm" (UTC) as a Date; null when absent.
export function parseStamp(stamp) {
  return stamp ? new Date(stamp.replace(" ", "T") + "Z") : null;
}

// An ISO 8601 time of the auth service as a Date; null when absent.
export function parseIso(text) {
  return text ? new Date(text) : null;
}

export function absoluteTime(date) {
  return date.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "numeric", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });
}

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const UNITS = [["year", 31536e6], ["month", 2592e6], ["week", 6048e5], ["day", 864e5], ["hour", 36e5], ["minute", 6e4], ["second", 1e3]];

export function relativeTime(date, now = Date.now()) {
  const ms = date.getTime() - now;
  for (const [unit, size] of UNITS) {
    if (Math.abs(ms) >= size || unit === "second") return RELATIVE.format(Math.round(ms / size), unit);
  }
  return "";
}

// <time> showing "3 minutes ago", the absolute time in its tooltip.
export function timeElement(date) {
  if (!date) return "—";
  return el("time", { datetime: date.toISOString(), title: absoluteTime(date) }, relativeTime(date));
}

// Milliseconds as "850 ms", "12.3 s", "3 min 4 s", "2 h 5 min", "3 d 4 h".
export function duration(ms) {
  ms = Math.max(0, ms);
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60e3) return (ms / 1000).toFixed(ms < 10e3 ? 1 : 0) + " s";
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

// Time on a clock that keeps ticking: whole seconds, then as duration().
export function elapsed(ms) {
  return ms < 60e3 ? `${Math.floor(Math.max(0, ms) / 1000)} s` : duration(ms);
}

// How long an ongoing job has been running (or waiting, before it started), in ms.
export function ongoingFor(job, now = Date.now()) {
  const since = parseStamp(job.started_at) || parseStamp(job.created_at);
  return since ? now - since.getTime() : 0;
}

export function nsToMs(ns) {
  return (ns || 0) / 1e6;
}

// -- server push ------------------------------------------------------------------------

// Follows a Server-Sent Events feed of the gateway (fetch, not EventSource: it needs the
// Authorization header). `onEvent(name, data)` gets each event; `path()` gives the URL
// each time it (re)connects, so a reconnect resumes from what the page already has. The
// feed ends itself every couple of minutes (`end`); it is opened again at once, and
// after a failure after a short pause. Returns a function that stops it.
export function follow(session, path, onEvent, { onState = () => {} } = {}) {
  let controller = null;
  let stopped = false;
  async function run() {
    while (!stopped) {
      controller = new AbortController();
      let again = 1000;
      try {
        const response = await fetch(path(), {
          headers: { Authorization: basic(session), Accept: "text/event-stream" },
          cache: "no-store",
          signal: controller.signal,
        });
        if (!response.ok) {
          const text = await response.text();
          let error = {};
          try { error = JSON.parse(text).error || {}; } catch { /* not JSON */ }
          throw new ApiFailure(response.status, error.code || "HTTP", error.message || response.statusText, error.hint);
        }
        onState("live", null);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let name = "message";
            const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event: ")) name = line.slice(7);
              else if (line.startsWith("data: ")) data.push(line.slice(6));
            }
            if (!data.length) continue;
            const payload = JSON.parse(data.join("\n"));
            if (name === "end") again = 0;
            else if (name === "error") throw new ApiFailure(200, "LIVE", payload.message);
            else if (onEvent(name, payload) === false) stopped = true;
          }
        }
      } catch (failure) {
        if (stopped || failure.name === "AbortError") return;
        onState("lost", failure instanceof ApiFailure ? failure : new ApiFailure(0, "NET", "Cannot reach the Cloudpipe gateway."));
        if (failure.status === 401 || failure.status === 404) return;
        again = 2000;
      }
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, again));
    }
  }
  run();
  const stop = () => {
    stopped = true;
    if (controller) controller.abort();
  };
  // Leaving the page ends the feed: the browser would otherwise keep its connection
  // (one of six per host) open for the page kept in its back/forward cache.
  window.addEventListener("pagehide", stop, { once: true });
  return stop;
}

// Downloads what `path` answers as `filename` (a link cannot carry the credentials).
export async function download(session, path, filename) {
  let response;
  try {
    response = await fetch(path, { headers: { Authorization: basic(session) }, cache: "no-store" });
  } catch {
    throw new ApiFailure(0, "NET", "Cannot reach the Cloudpipe gateway.");
  }
  if (!response.ok) throw failureOf(response, await response.text());
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// A number of bytes for people: "0 B", "512 B", "1.5 KiB", "3.2 GiB".
export function sizeText(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes || 0;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

// The summary's name for people: its name, else the function it calls, else "Job N".
export function jobLabel(job) {
  return job.label || `Job ${job.jid}`;
}

// What the job runs: the function for function jobs, else the shell command.
export function jobWhat(job) {
  return job.function ? `${job.function}()` : job.cmd;
}

// A page brought back from the back/forward cache had its live feeds ended (pagehide):
// load it afresh.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) location.reload();
});

// A table with a hidden caption (for screen readers), column headers and `rows`.
export function table(label, headers, rows) {
  return el("div", { class: "scroll" },
    el("table", {},
      el("caption", { class: "visually-hidden" }, label),
      el("thead", {}, el("tr", {}, headers.map((text) => el("th", { scope: "col" }, text)))),
      el("tbody", {}, rows)));
}
