// The jobs page: the account's jobs from GET /v1/job, ongoing and completed, refreshed.
import {
  ONGOING, api, duration, el, elapsed, loadSession, nsToMs, ongoingFor, parseStamp, requireSession, showError, statusBadge,
  timeElement,
} from "./common.js";

const REFRESH_MS = 3000;
const PAGE = 1000; // GET /v1/job's default limit; it answers oldest first
const session = requireSession();
const jobs = new Map(); // jid -> job
const statusFilter = document.getElementById("status-filter");
const nameFilter = document.getElementById("name-filter");
const errorRegion = document.getElementById("error");

// Every job with a JID >= after, page by page.
async function fetchFrom(after) {
  for (;;) {
    const page = (await api(session, `../v1/job?after=${after}&limit=${PAGE}`)).jobs;
    for (const job of page) jobs.set(job.jid, job);
    if (page.length < PAGE) return;
    after = page[page.length - 1].jid + 1;
  }
}

// Finished jobs never change: refresh from the oldest unfinished job, or after the newest.
function refreshFrom() {
  let from = 1;
  for (const job of jobs.values()) from = Math.max(from, job.jid + 1);
  for (const job of jobs.values()) if (ONGOING.includes(job.status)) from = Math.min(from, job.jid);
  return from;
}

function matches(job) {
  const status = statusFilter.value;
  const ongoing = ONGOING.includes(job.status);
  if (status === "ongoing" ? !ongoing : status === "completed" ? ongoing : status && job.status !== status) {
    return false;
  }
  const name = nameFilter.value.trim().toLowerCase();
  return !name || (job.name || "").toLowerCase().includes(name);
}

function table(label, headers, rows) {
  return el("div", { class: "scroll" },
    el("table", {},
      el("caption", { class: "visually-hidden" }, label),
      el("thead", {}, el("tr", {}, headers.map((text) => el("th", { scope: "col" }, text)))),
      el("tbody", {}, rows)));
}

function jobCells(job) {
  return [
    el("td", { class: "num" }, String(job.jid)),
    el("td", {}, el("a", { href: `job.html?jid=${job.jid}`, "data-jid": job.jid }, job.name || `Job ${job.jid}`)),
    el("td", {}, statusBadge(job.status)),
  ];
}

const command = (job) => el("td", {}, el("code", { class: "cmd", title: job.cmd }, job.cmd));

function ongoingRow(job) {
  const verb = job.status === "processing" ? "running" : job.status;
  return el("tr", {}, jobCells(job), el("td", {}, `${verb} for ${elapsed(ongoingFor(job))}`), command(job));
}

function completedRow(job) {
  const finished = parseStamp(job.finished_at || job.started_at || job.created_at);
  return el("tr", {}, jobCells(job), el("td", {}, timeElement(finished)),
    el("td", {}, duration(nsToMs(job.runtime))), command(job));
}

function section(id, name, list, headers, row) {
  document.getElementById(`${id}-heading`).textContent = `${name} (${list.length})`;
  const content = list.length
    ? table(`${name} jobs`, headers, list.map(row))
    : el("p", { class: "empty" }, `No ${name.toLowerCase()} jobs${statusFilter.value || nameFilter.value ? " match the filters" : ""}.`);
  document.getElementById(id).replaceChildren(content);
}

function render() {
  const focused = document.activeElement && document.activeElement.dataset.jid;
  const shown = [...jobs.values()].filter(matches).sort((a, b) => b.jid - a.jid);
  section("ongoing", "Ongoing", shown.filter((job) => ONGOING.includes(job.status)),
    ["ID", "Name", "Status", "Time", "Command"], ongoingRow);
  section("completed", "Completed", shown.filter((job) => !ONGOING.includes(job.status)),
    ["ID", "Name", "Status", "Completed", "Runtime", "Command"], completedRow);
  if (focused) document.querySelector(`a[data-jid="${focused}"]`)?.focus(); // keep focus across refreshes
}

async function refresh() {
  if (!loadSession()) return location.replace("./"); // logged out in another tab
  try {
    await fetchFrom(refreshFrom());
    showError(errorRegion, null);
    document.getElementById("updated").textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  } catch (failure) {
    showError(errorRegion, failure);
    if (failure.status === 401) return; // the session ended: stop polling
  }
  render();
  setTimeout(refresh, REFRESH_MS);
}

if (session) {
  document.getElementById("filters").addEventListener("submit", (event) => event.preventDefault());
  statusFilter.addEventListener("change", render);
  nameFilter.addEventListener("input", render);
  refresh();
}
