// The jobs page: pages of job summaries from GET /ui/api/jobs (newest first, never any
// output), ongoing and completed, kept live by the gateway's feed (/ui/api/jobs/live:
// status changes and new jobs, pushed), filters applied by the gateway, bulk kill.
import {
  ONGOING, api, duration, el, elapsed, follow, jobLabel, jobWhat, loadSession, nsToMs, ongoingFor, parseStamp,
  requireSession, showError, statusBadge, table, timeElement,
} from "./common.js";

const PAGE = 50;
const COMPLETED = ["done", "error", "killed", "stalled"];
const session = requireSession();
const jobs = new Map(); // jid -> summary
const sections = {
  ongoing: { statuses: ONGOING, next: 0 },
  completed: { statuses: COMPLETED, next: 0 },
};
const selected = new Set();
const statusFilter = document.getElementById("status-filter");
const nameFilter = document.getElementById("name-filter");
const imageFilter = document.getElementById("image-filter");
const sinceFilter = document.getElementById("since-filter");
const errorRegion = document.getElementById("error");
const notice = document.getElementById("notice");
const killSelected = document.getElementById("kill-selected");
let stopLive = null;
let generation = 0; // a newer load makes older answers stale

function since() {
  return sinceFilter.value ? new Date(Date.now() - Number(sinceFilter.value) * 1000) : null;
}

// The statuses of `section` the status filter lets through.
function statusesOf(section) {
  const status = statusFilter.value;
  const own = sections[section].statuses;
  if (!status) return own;
  if (status === "ongoing") return section === "ongoing" ? own : [];
  if (status === "completed") return section === "completed" ? own : [];
  return own.includes(status) ? [status] : [];
}

function matches(job) {
  const status = statusFilter.value;
  const ongoing = ONGOING.includes(job.status);
  if (status === "ongoing" ? !ongoing : status === "completed" ? ongoing : status && job.status !== status) {
    return false;
  }
  const name = nameFilter.value.trim().toLowerCase();
  if (name && !`${job.name}\n${job.function}`.toLowerCase().includes(name)) return false;
  const image = imageFilter.value.trim().toLowerCase();
  if (image && !(job.image || "").toLowerCase().includes(image)) return false;
  const from = since();
  return !from || parseStamp(job.created_at) >= from;
}

function query(section, before) {
  const params = new URLSearchParams({ limit: String(section === "ongoing" ? 100 : PAGE) });
  params.set("status", statusesOf(section).join(","));
  if (nameFilter.value.trim()) params.set("name", nameFilter.value.trim());
  if (imageFilter.value.trim()) params.set("image", imageFilter.value.trim());
  const from = since();
  if (from) params.set("since", from.toISOString());
  if (before) params.set("before", String(before));
  return `api/jobs?${params}`;
}

// One page of `section`, after `before` (0: the newest).
async function loadPage(section, before = 0) {
  const state = sections[section];
  if (!statusesOf(section).length) {
    state.next = 0;
    return;
  }
  const mine = generation;
  const page = await api(session, query(section, before));
  if (mine !== generation) return;
  for (const job of page.jobs) jobs.set(job.jid, job);
  if (!before && page.next_before) {
    // A fresh first page: forget what older filters left beyond it, so no gap shows.
    for (const [jid, job] of jobs) {
      if (jid < page.next_before && sections[section].statuses.includes(job.status)) jobs.delete(jid);
    }
  }
  state.next = page.next_before;
}

function idCell(job, selectable) {
  const cell = el("td", { class: "num" });
  if (selectable) {
    const box = el("input", { type: "checkbox", class: "pick", "aria-label": `Select job ${job.jid}`, "data-pick": job.jid,
      checked: selected.has(job.jid) });
    box.addEventListener("change", () => {
      if (box.checked) selected.add(job.jid);
      else selected.delete(job.jid);
      killSelected.disabled = !selected.size;
      killSelected.textContent = selected.size ? `Kill selected (${selected.size})` : "Kill selected";
    });
    cell.append(box, " ");
  }
  cell.append(String(job.jid));
  return cell;
}

function jobCells(job, selectable) {
  return [
    idCell(job, selectable),
    el("td", {}, el("a", { href: `job.html?jid=${job.jid}`, "data-jid": job.jid }, jobLabel(job))),
    el("td", {}, statusBadge(job.status)),
  ];
}

const command = (job) => el("td", {}, el("code", { class: "cmd", title: job.cmd }, jobWhat(job)));
const image = (job) => el("td", {}, el("span", { class: "image" }, job.image));

function ongoingRow(job) {
  const verb = job.status === "processing" ? "running" : job.status;
  return el("tr", {}, jobCells(job, true), el("td", { class: "ticks", "data-jid": job.jid }, `${verb} for ${elapsed(ongoingFor(job))}`),
    command(job), image(job));
}

function completedRow(job) {
  const finished = parseStamp(job.finished_at || job.started_at || job.created_at);
  return el("tr", {}, jobCells(job, false), el("td", {}, timeElement(finished)),
    el("td", {}, duration(nsToMs(job.runtime))), command(job), image(job));
}

function filtered() {
  return statusFilter.value || nameFilter.value || imageFilter.value || sinceFilter.value;
}

const drawn = {}; // section -> what it shows, so an unchanged section is left alone (focus, selection, tests' elements)

function section(id, name, list, headers, row) {
  const more = sections[id].next ? "+" : "";
  const signature = JSON.stringify([filtered(), more, list.map((job) => [job.jid, job.status, job.label, job.finished_at || ""])]);
  if (drawn[id] === signature) return;
  drawn[id] = signature;
  document.getElementById(`${id}-heading`).textContent = `${name} (${list.length}${more})`;
  const content = list.length
    ? table(`${name} jobs`, headers, list.map(row))
    : el("p", { class: "empty" }, `No ${name.toLowerCase()} jobs${filtered() ? " match the filters" : ""}.`);
  document.getElementById(id).replaceChildren(content);
  document.getElementById(`${id}-more`).hidden = !sections[id].next;
}

function render() {
  const focused = document.activeElement && (document.activeElement.dataset.jid || document.activeElement.dataset.pick);
  const shown = [...jobs.values()].filter(matches).sort((a, b) => b.jid - a.jid);
  const ongoing = shown.filter((job) => ONGOING.includes(job.status));
  for (const jid of selected) if (!ongoing.some((job) => job.jid === jid)) selected.delete(jid);
  killSelected.disabled = !selected.size;
  killSelected.textContent = selected.size ? `Kill selected (${selected.size})` : "Kill selected";
  section("ongoing", "Ongoing", ongoing, ["ID", "Name", "Status", "Time", "Command", "Image"], ongoingRow);
  section("completed", "Completed", shown.filter((job) => !ONGOING.includes(job.status)),
    ["ID", "Name", "Status", "Completed", "Runtime", "Command", "Image"], completedRow);
  if (focused) document.querySelector(`[data-jid="${focused}"] , [data-pick="${focused}"]`)?.focus(); // keep focus
}

let renderQueued = false;
function renderSoon() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(() => {
    renderQueued = false;
    render();
  }, 50);
}

function startLive() {
  if (stopLive) stopLive();
  const liveState = document.getElementById("live-state");
  stopLive = follow(session, () => {
    const ongoing = [...jobs.values()].filter((job) => ONGOING.includes(job.status)).map((job) => job.jid);
    const newest = Math.max(0, ...jobs.keys());
    return `api/jobs/live?ids=${ongoing.slice(0, 1000).join(",")}&after=${newest}`;
  }, (name, job) => {
    if (name !== "job") return;
    const known = jobs.get(job.jid);
    if (known && JSON.stringify(known) === JSON.stringify(job)) return; // nothing new
    jobs.set(job.jid, job);
    renderSoon();
  }, {
    onState(state, failure) {
      liveState.textContent = state === "live" ? "Live: changes show as they happen." : "Live updates interrupted; reconnecting…";
      if (state === "live") showError(errorRegion, null);
      else showError(errorRegion, failure);
    },
  });
}

// Both sections from their newest job, then live.
async function reload() {
  if (!loadSession()) return location.replace("./"); // logged out in another tab
  generation += 1;
  const started = performance.now();
  try {
    await Promise.all([loadPage("ongoing"), loadPage("completed")]);
    showError(errorRegion, null);
    const ms = Math.round(performance.now() - started);
    document.getElementById("updated").textContent = `Updated ${new Date().toLocaleTimeString()} (loaded in ${ms} ms).`;
    document.body.dataset.loadMs = String(ms);
  } catch (failure) {
    showError(errorRegion, failure);
    if (failure.status === 401) return; // the session ended
  }
  render();
  startLive();
}

async function older(id) {
  const button = document.getElementById(`${id}-more`);
  button.disabled = true;
  try {
    await loadPage(id, sections[id].next);
    render();
  } catch (failure) {
    showError(errorRegion, failure);
  }
  button.disabled = false;
}

async function killMany() {
  const jids = [...selected].sort((a, b) => a - b);
  if (!jids.length || !confirm(`Kill ${jids.length} job${jids.length > 1 ? "s" : ""}?`)) return;
  killSelected.disabled = true;
  try {
    const answer = await api(session, "api/jobs/kill", { method: "POST", form: { jids: jids.join(",") } });
    const failed = Object.keys(answer.failed);
    notice.textContent = `Kill requested for ${answer.killed.length} job(s)` + (failed.length ? `; failed: ${failed.join(", ")}.` : ".");
    selected.clear();
    showError(errorRegion, null);
  } catch (failure) {
    showError(errorRegion, failure);
  }
  render();
}

let typing = 0;
function filtersChanged() {
  for (const state of Object.values(sections)) state.next = 0;
  render(); // at once, from what is loaded; then from the gateway
  clearTimeout(typing);
  typing = setTimeout(reload, 250);
}

if (session) {
  document.getElementById("filters").addEventListener("submit", (event) => event.preventDefault());
  for (const control of [statusFilter, sinceFilter]) control.addEventListener("change", filtersChanged);
  for (const control of [nameFilter, imageFilter]) control.addEventListener("input", filtersChanged);
  document.getElementById("ongoing-more").addEventListener("click", () => older("ongoing"));
  document.getElementById("completed-more").addEventListener("click", () => older("completed"));
  killSelected.addEventListener("click", killMany);
  setInterval(() => {
    for (const cell of document.querySelectorAll("td.ticks")) {
      const job = jobs.get(Number(cell.dataset.jid));
      if (job) cell.textContent = `${job.status === "processing" ? "running" : job.status} for ${elapsed(ongoingFor(job))}`;
    }
  }, 1000);
  reload();
}
