// One job: details and output from /ui/api/job, refreshed while it runs; kill.
import {
  ONGOING, absoluteTime, api, duration, el, elapsed, loadSession, nsToMs, ongoingFor, parseStamp, relativeTime, requireSession,
  showError, statusBadge,
} from "./common.js";

const REFRESH_MS = 2000;
const session = requireSession();
const jid = new URLSearchParams(location.search).get("jid") || "";
const title = document.getElementById("title");
const kill = document.getElementById("kill");
const notice = document.getElementById("notice");
const errorRegion = document.getElementById("error");

function when(stamp) {
  const date = parseStamp(stamp);
  return date ? el("time", { datetime: date.toISOString() }, `${absoluteTime(date)} (${relativeTime(date)})`) : "—";
}

function runtime(job) {
  if (job.status === "processing") return `${elapsed(ongoingFor(job))} so far`;
  return job.started_at ? duration(nsToMs(job.runtime)) : "—";
}

function details(job) {
  const started = Boolean(job.started_at);
  return [
    ["Name", job.name || "—"],
    ["Command", el("code", { class: "cmd-full" }, job.cmd)],
    ["Image", el("code", {}, job.image)],
    ["Created", when(job.created_at)],
    ["Started", when(job.started_at)],
    ["Finished", when(job.finished_at)],
    ["Queue delay", started ? duration(nsToMs(job.queue_delay)) : "—"],
    ["Start overhead", started ? duration(nsToMs(job.overhead_delay)) : "—"],
    ["Runtime", runtime(job)],
    ["Return code", job.return_code === "" ? "—" : String(job.return_code)],
    ["Reason", job.reason || "—"],
    ["Attempts", String(job.attempts || 0)],
    ["Result", `${job.result_type}, from ${job.result_source}`],
  ].flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]);
}

// Replace an output's text, staying at the bottom if the reader was there.
function setOutput(id, text) {
  const pre = document.getElementById(id);
  if (pre.textContent === text) return;
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = text;
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

function render(job) {
  const ongoing = ONGOING.includes(job.status);
  document.title = `Job ${job.jid} · Cloudpipe`;
  title.textContent = job.name ? `Job ${job.jid}: ${job.name}` : `Job ${job.jid}`;
  document.getElementById("status").replaceChildren(statusBadge(job.status));
  const hadFocus = document.activeElement === kill;
  kill.hidden = !ongoing;
  if (hadFocus && !ongoing) title.focus(); // the button went away: keep the reader's place
  document.getElementById("details").replaceChildren(...details(job));
  setOutput("stdout", job.stdout);
  setOutput("stderr", job.stderr);
}

async function refresh() {
  if (!loadSession()) return location.replace("./"); // logged out in another tab
  let job;
  try {
    job = await api(session, `api/job?jid=${encodeURIComponent(jid)}`);
  } catch (failure) {
    showError(errorRegion, failure);
    if (failure.status === 0 || failure.status >= 500) setTimeout(refresh, REFRESH_MS); // may come back
    return;
  }
  showError(errorRegion, null);
  render(job);
  if (ONGOING.includes(job.status)) setTimeout(refresh, REFRESH_MS);
}

async function killJob() {
  if (!confirm(`Kill job ${jid}?`)) return;
  kill.disabled = true;
  try {
    await api(session, "../v1/job/kill", { method: "POST", form: { jid } });
    notice.textContent = `Kill requested for job ${jid}.`;
    showError(errorRegion, null);
    title.focus(); // the button goes away with the job
  } catch (failure) {
    showError(errorRegion, failure);
  }
  kill.disabled = false;
}

if (session) {
  kill.addEventListener("click", killJob);
  refresh();
}
