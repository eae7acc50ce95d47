// The schedules page: every schedule of the account (GET /ui/api/schedules) with its
// next fire and last outcome, pause / resume / fire now, and each one's fire history
// (GET /ui/api/schedule/history) on demand. Re-read every REFRESH_MS and after each action.
import { api, el, parseStamp, requireSession, showError, statusBadge, table, timeElement } from "./common.js";

const REFRESH_MS = 15_000;
const session = requireSession();
const region = document.getElementById("schedules");
const errorRegion = document.getElementById("error");
const notice = document.getElementById("notice");
const opened = new Set(); // names whose history is shown
let busy = false;

const OUTCOMES = {
  pending: "Pending", buffered: "Buffered", running: "Running", finished: "Finished", skipped: "Skipped", failed: "Failed",
};

// A fire's outcome as words: the job's status when it ran, else why it did not.
function outcome(fire) {
  if (!fire) return el("span", { class: "meta" }, "Never fired");
  const box = el("span", { class: "outcome" });
  if (fire.job_id && fire.job_status) box.append(statusBadge(fire.job_status));
  else box.append(el("span", { class: "status status-" + (fire.outcome === "failed" ? "error" : "unknown") },
    OUTCOMES[fire.outcome] || fire.outcome));
  if (fire.job_id) box.append(" ", el("a", { href: `job.html?jid=${fire.job_id}` }, `Job ${fire.job_id}`));
  if (fire.reason) box.append(el("span", { class: "help reason" }, fire.reason));
  return box;
}

function target(schedule) {
  const t = schedule.target;
  if (t.saved_job) {
    return el("span", {}, el("a", { href: `saved-jobs.html?name=${encodeURIComponent(t.saved_job)}` }, t.saved_job),
      t.version ? ` (version ${t.version})` : " (latest)");
  }
  if (t.job) return el("code", { class: "cmd", title: t.job.cmd }, t.job.function ? `${t.job.function}()` : t.job.cmd);
  return "—";
}

function nextFire(schedule) {
  if (schedule.paused) return el("span", { class: "status status-paused" }, "Paused");
  const due = parseStamp(schedule.next_due_at);
  return due ? timeElement(due) : el("span", { class: "meta" }, "Ended");
}

async function act(schedule, action, button) {
  if (busy) return;
  busy = true;
  button.disabled = true;
  try {
    const answer = await api(session, `api/schedule/${action}`, { method: "POST", form: { name: schedule.name } });
    notice.textContent = action === "trigger"
      ? (answer.job_id ? `Fired ${schedule.name}: job ${answer.job_id}.` : `Fired ${schedule.name}: ${answer.reason || answer.outcome}.`)
      : `${schedule.name} ${action === "pause" ? "paused" : "resumed"}.`;
    showError(errorRegion, null);
    if (action === "trigger") opened.add(schedule.name);
  } catch (failure) {
    showError(errorRegion, failure);
  } finally {
    busy = false;
    await load();
  }
}

function actions(schedule) {
  const toggle = el("button", { type: "button", class: "secondary", "data-action": schedule.paused ? "resume" : "pause",
    "data-schedule": schedule.name }, schedule.paused ? "Resume" : "Pause");
  toggle.addEventListener("click", () => act(schedule, schedule.paused ? "resume" : "pause", toggle));
  const fire = el("button", { type: "button", "data-action": "trigger", "data-schedule": schedule.name }, "Fire now");
  fire.addEventListener("click", () => act(schedule, "trigger", fire));
  const shown = opened.has(schedule.name);
  const history = el("button", { type: "button", class: "secondary", "aria-expanded": String(shown),
    "data-action": "history", "data-schedule": schedule.name }, "History");
  history.addEventListener("click", () => {
    if (opened.has(schedule.name)) opened.delete(schedule.name);
    else opened.add(schedule.name);
    render(lastList);
  });
  return el("td", { class: "actions" }, toggle, fire, history);
}

async function historyRow(schedule, columns) {
  const cell = el("td", { colspan: columns, class: "history" }, "Loading history…");
  const row = el("tr", { class: "history-row", "data-history": schedule.name }, cell);
  api(session, `api/schedule/history?${new URLSearchParams({ name: schedule.name, limit: "20" })}`).then(
    (answer) => {
      if (!answer.fires.length) {
        cell.replaceChildren(el("p", { class: "empty" }, "No fires yet."));
        return;
      }
      cell.replaceChildren(table(`Fires of ${schedule.name}`, ["Scheduled for", "Recorded", "Outcome", "How"],
        answer.fires.map((fire) => el("tr", {},
          el("td", {}, timeElement(parseStamp(fire.scheduled_at))),
          el("td", {}, timeElement(parseStamp(fire.recorded_at))),
          el("td", {}, outcome(fire)),
          el("td", {}, fire.manual ? "Fired by hand" : "On schedule")))));
    },
    (failure) => cell.replaceChildren(el("p", { class: "error" }, failure.message)),
  );
  return row;
}

let lastList = [];

async function render(list) {
  lastList = list;
  if (!list.length) {
    region.replaceChildren(el("p", { class: "empty" },
      "No schedules yet. Create one with client.schedules.create(...) or cloudpipe schedule create."));
    return;
  }
  const headers = ["Name", "When", "Runs", "Next fire", "Last outcome", "Actions"];
  const rows = [];
  for (const schedule of list) {
    rows.push(el("tr", { "data-schedule": schedule.name },
      el("td", {}, el("strong", {}, schedule.name), schedule.description ? el("span", { class: "help" }, schedule.description) : null),
      el("td", {}, el("code", {}, schedule.cron), el("span", { class: "help" }, schedule.timezone)),
      el("td", {}, target(schedule)),
      el("td", { class: "next-fire" }, nextFire(schedule)),
      el("td", { class: "last-outcome" }, outcome(schedule.last_fire)),
      actions(schedule)));
    if (opened.has(schedule.name)) rows.push(await historyRow(schedule, headers.length));
  }
  region.replaceChildren(table("Schedules", headers, rows));
}

async function load() {
  try {
    const answer = await api(session, "api/schedules");
    await render(answer.schedules);
    document.getElementById("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (failure) {
    showError(errorRegion, failure);
  }
}

if (session) {
  load();
  setInterval(() => { if (!busy && !document.hidden) load(); }, REFRESH_MS);
}
