// The overview: queue depth by status, jobs running now, jobs finished per minute over
// the last hour (done and failed, an inline SVG bar chart drawn here, no library), and
// for the server's admin account every account's queue and usage. Re-read every 10 s.
import {
  api, duration, el, jobLabel, nsToMs, ongoingFor, requireSession, showError, statusBadge, table,
} from "./common.js";

const REFRESH_MS = 10_000;
const STATUSES = ["waiting", "queued", "processing", "done", "error", "killed", "stalled"];
const SVG = "http://www.w3.org/2000/svg";
const session = requireSession();
const errorRegion = document.getElementById("error");

function svg(tag, attributes = {}, text = "") {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text) node.textContent = text;
  return node;
}

// Stacked bars, one a minute: done below, failed above.
function chart(done, failed) {
  const width = 720, height = 160, pad = 24;
  const most = Math.max(1, ...done.map((d, i) => d + failed[i]));
  const step = (width - pad) / done.length;
  const scale = (n) => (n / most) * (height - pad);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "bars",
    "aria-label": `Jobs finished per minute over the last ${done.length} minutes: ${done.reduce((a, b) => a + b, 0)} done, ${failed.reduce((a, b) => a + b, 0)} failed` });
  root.append(svg("line", { x1: pad, y1: height - pad, x2: width, y2: height - pad, class: "axis" }));
  root.append(svg("text", { x: 0, y: 12, class: "tick" }, String(most)));
  root.append(svg("text", { x: pad, y: height - 6, class: "tick" }, `${done.length} min ago`));
  root.append(svg("text", { x: width - 30, y: height - 6, class: "tick" }, "now"));
  done.forEach((d, i) => {
    const x = pad + i * step;
    const ok = scale(d), bad = scale(failed[i]);
    if (d) root.append(svg("rect", { x, y: height - pad - ok, width: Math.max(1, step - 2), height: ok, class: "done" }));
    if (failed[i]) root.append(svg("rect", { x, y: height - pad - ok - bad, width: Math.max(1, step - 2), height: bad, class: "failed" }));
  });
  return root;
}

function tiles(counts) {
  return STATUSES.map((status) => el("div", { class: "tile", "data-status": status },
    el("dt", {}, statusBadge(status)), el("dd", {}, String(counts[status] || 0))));
}

async function load() {
  try {
    const [usage, running] = await Promise.all([
      api(session, "api/usage?window=60"),
      api(session, "api/jobs?status=processing&limit=10"),
    ]);
    document.getElementById("queue").replaceChildren(...tiles(usage.counts));
    const done = usage.done_per_minute.reduce((a, b) => a + b, 0);
    const failed = usage.failed_per_minute.reduce((a, b) => a + b, 0);
    document.getElementById("hour-summary").textContent =
      `${done} done, ${failed} failed (error, killed or stalled); ${duration(nsToMs(usage.runtime))} of run time.`;
    document.getElementById("chart").replaceChildren(chart(usage.done_per_minute, usage.failed_per_minute),
      el("p", { class: "legend help" }, el("span", { class: "key done" }, "■"), " done  ",
        el("span", { class: "key failed" }, "■"), " failed"));
    document.getElementById("running").replaceChildren(running.jobs.length
      ? table("Running jobs", ["Job", "Status", "Running for", "Image"], running.jobs.map((job) => el("tr", {},
        el("td", {}, el("a", { href: `job.html?jid=${job.jid}` }, jobLabel(job))),
        el("td", {}, statusBadge(job.status)),
        el("td", {}, duration(ongoingFor(job))),
        el("td", { class: "image" }, job.image))))
      : el("p", { class: "empty" }, "Nothing is running."));
    document.getElementById("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
    showError(errorRegion, null);
  } catch (failure) {
    showError(errorRegion, failure);
  }
  try {
    const all = await api(session, "api/usage?all=1&window=60");
    const limit = (n) => (n ? String(n) : "no limit");
    document.getElementById("quotas").textContent = `Quotas per account: ${limit(all.quotas.max_queued_per_account)} queued, `
      + `${limit(all.quotas.max_running_per_account)} running.`;
    document.getElementById("accounts-table").replaceChildren(table("Accounts",
      ["Account", "Waiting", "Queued", "Running", "Done (hour)", "Failed (hour)", "Run time (hour)"],
      all.accounts.map((row) => el("tr", { "data-account": row.account },
        el("td", {}, row.account),
        el("td", { class: "num" }, String(row.counts.waiting || 0)),
        el("td", { class: "num" }, String(row.counts.queued || 0)),
        el("td", { class: "num" }, String(row.counts.processing || 0)),
        el("td", { class: "num" }, String(row.done)),
        el("td", { class: "num" }, String(row.failed)),
        el("td", { class: "num" }, duration(nsToMs(row.runtime)))))));
    document.getElementById("all-accounts").hidden = false;
  } catch {
    document.getElementById("all-accounts").hidden = true; // not the admin: nothing to show
  }
}

if (session) {
  load();
  setInterval(() => { if (!document.hidden) load(); }, REFRESH_MS);
}
