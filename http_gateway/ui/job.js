// One job: its details from /ui/api/job?view=summary, its output and status pushed by
// the gateway's feed (/ui/api/job/live, over gRPC Attach), kill, run again, downloads.
import {
  ONGOING, absoluteTime, api, download, duration, el, elapsed, follow, jobLabel, jobWhat, loadSession, nsToMs,
  ongoingFor, parseStamp, relativeTime, requireSession, showError, statusBadge, table,
} from "./common.js";

const SHOWN_BYTES = 2 << 20; // of each stream in the page; the downloads have everything
const session = requireSession();
const jid = new URLSearchParams(location.search).get("jid") || "";
const title = document.getElementById("title");
const kill = document.getElementById("kill");
const rerun = document.getElementById("rerun");
const notice = document.getElementById("notice");
const errorRegion = document.getElementById("error");
const interleave = document.getElementById("interleave");
const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
const received = { stdout: 0, stderr: 0 }; // bytes of each stream the page has (the feed's offsets)
const text = { stdout: "", stderr: "" };
let segments = []; // [{stream, text}] in arrival order, for the interleaved view
let cut = false;
let job = null;
let stopLive = null;

function when(stamp) {
  const date = parseStamp(stamp);
  return date ? el("time", { datetime: date.toISOString() }, `${absoluteTime(date)} (${relativeTime(date)})`) : "—";
}

function runtime(job) {
  if (job.status === "processing") return `${elapsed(ongoingFor(job))} so far`;
  return job.started_at ? duration(nsToMs(job.runtime)) : "—";
}

function attempts(job) {
  const n = job.attempts || 0;
  if (n <= 1) return String(n);
  return `${n} (retried ${n - 1} time${n > 2 ? "s" : ""} after its runner was lost${job.restartable ? "; restartable" : ""})`;
}

function details(job) {
  const started = Boolean(job.started_at);
  const rows = [
    ["Name", job.name || (job.function ? `${job.function}()` : "—")],
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
    ["Attempts", attempts(job)],
    ["Result", `${job.result_type}, from ${job.result_source}`],
  ];
  if (job.function) rows.splice(1, 0, ["Function", el("code", {}, jobWhat(job))]);
  if (job.schedule_id) rows.push(["Schedule", job.schedule_id]);
  if (job.saved_job) rows.push(["Saved job", job.saved_job]);
  if (job.tags && job.tags.rerun_of) rows.push(["Run again from", el("a", { href: `job.html?jid=${job.tags.rerun_of}` }, `Job ${job.tags.rerun_of}`)]);
  return rows.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]);
}

// The ended attempts (the latest 50), when the job ran more than once: how each ended
// ("Requeued" when its runner was lost), when, its exit code, the server and why.
function attemptRows(history) {
  return history.map((attempt) => {
    const badge = attempt.status === "queued"
      ? el("span", { class: "status status-requeued" }, el("span", { class: "mark", "aria-hidden": "true" }, "↻"), "Requeued")
      : statusBadge(attempt.status);
    const started = parseStamp(attempt.started_at);
    const ended = parseStamp(attempt.ended_at);
    return el("tr", {},
      el("td", { class: "num" }, String(attempt.number)),
      el("td", {}, badge),
      el("td", {}, when(attempt.started_at)),
      el("td", {}, when(attempt.ended_at)),
      el("td", {}, started && ended ? duration(ended - started) : "—"),
      el("td", {}, attempt.return_code === "" ? "—" : String(attempt.return_code)),
      el("td", {}, attempt.owner ? el("code", {}, attempt.owner) : "—"),
      el("td", {}, attempt.reason || "—"));
  });
}

function renderAttempts() {
  const history = job.attempt_history || [];
  const section = document.getElementById("attempts-section");
  section.hidden = history.length === 0 || (history.length === 1 && (job.attempts || 0) <= 1);
  if (section.hidden) return;
  document.getElementById("attempts").replaceChildren(table("Attempts of this job",
    ["#", "Outcome", "Started", "Ended", "Duration", "Return code", "Server", "Reason"], attemptRows(history)));
}

// A new attempt began, or the job ended: read the details (and attempts) again.
async function reloadDetails() {
  try {
    const fresh = await api(session, `api/job?view=summary&jid=${encodeURIComponent(jid)}`);
    job = { ...job, ...fresh };
    render();
  } catch (failure) {
    showError(errorRegion, failure);
  }
}

function render() {
  const ongoing = ONGOING.includes(job.status);
  document.title = `Job ${job.jid} · Cloudpipe`;
  title.textContent = job.label ? `Job ${job.jid}: ${jobLabel(job)}` : `Job ${job.jid}`;
  document.getElementById("status").replaceChildren(statusBadge(job.status));
  const hadFocus = document.activeElement === kill;
  kill.hidden = !ongoing;
  if (hadFocus && !ongoing) title.focus(); // the button went away: keep the reader's place
  document.getElementById("details").replaceChildren(...details(job));
  renderAttempts();
}

// The output views, staying at the bottom where the reader was there.
function stick(pre, update) {
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  update();
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

function showOutput() {
  for (const stream of ["stdout", "stderr"]) {
    const pre = document.getElementById(stream);
    if (pre.textContent !== text[stream]) stick(pre, () => { pre.textContent = text[stream]; });
  }
  const combined = document.getElementById("combined");
  if (!document.getElementById("together").hidden) {
    stick(combined, () => combined.replaceChildren(
      ...segments.map((part) => (part.stream === "stderr" ? el("span", { class: "stderr" }, part.text) : part.text))));
  }
  document.getElementById("output-note").textContent = cut
    ? `Showing the last ${SHOWN_BYTES >> 20} MB of each stream; download for all of it.`
    : "";
}

function append(stream, offset, data) {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  if (offset + bytes.length <= received[stream]) return; // already have it (a reconnect)
  const fresh = bytes.subarray(Math.max(0, received[stream] - offset));
  received[stream] = offset + bytes.length;
  const chunk = decoders[stream].decode(fresh, { stream: true });
  text[stream] += chunk;
  segments.push({ stream, text: chunk });
  if (text[stream].length > SHOWN_BYTES) {
    text[stream] = text[stream].slice(-SHOWN_BYTES);
    cut = true;
  }
  let total = segments.reduce((sum, part) => sum + part.text.length, 0);
  while (total > 2 * SHOWN_BYTES && segments.length > 1) total -= segments.shift().text.length;
}

let outputQueued = false;
function showOutputSoon() {
  if (outputQueued) return;
  outputQueued = true;
  setTimeout(() => {
    outputQueued = false;
    showOutput();
  }, 50);
}

function startLive() {
  stopLive = follow(session, () => `api/job/live?jid=${encodeURIComponent(jid)}&stdout=${received.stdout}&stderr=${received.stderr}`,
    (name, data) => {
      if (name === "job") {
        const moved = data.attempts !== job.attempts || (data.status !== job.status && !ONGOING.includes(data.status));
        job = { ...job, ...data }; // a summary: the details of the first answer stay
        render();
        if (moved) reloadDetails(); // an attempt ended: its row comes with the details
      } else if (name === "output") {
        append(data.stream, data.offset, data.data);
        showOutputSoon();
      } else if (name === "exit") {
        showOutput();
        return false; // the job ended: nothing more will come
      }
      return true;
    }, {
      onState(state, failure) {
        if (state === "live") showError(errorRegion, null);
        else showError(errorRegion, failure);
      },
    });
}

async function load() {
  if (!loadSession()) return location.replace("./"); // logged out in another tab
  try {
    job = await api(session, `api/job?view=summary&jid=${encodeURIComponent(jid)}`);
  } catch (failure) {
    showError(errorRegion, failure);
    return;
  }
  showError(errorRegion, null);
  render();
  startLive();
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

async function runAgain() {
  rerun.disabled = true;
  try {
    const answer = await api(session, "api/job/rerun", { method: "POST", form: { jid } });
    notice.replaceChildren(`Submitted again as `, el("a", { href: `job.html?jid=${answer.jid}`, id: "rerun-link" }, `job ${answer.jid}`), ".");
    showError(errorRegion, null);
  } catch (failure) {
    showError(errorRegion, failure);
  }
  rerun.disabled = false;
}

function downloader(part) {
  return async () => {
    try {
      await download(session, `api/job/output?jid=${encodeURIComponent(jid)}&part=${part}`, `job-${jid}.${part}`);
    } catch (failure) {
      showError(errorRegion, failure);
    }
  };
}

if (session) {
  kill.addEventListener("click", killJob);
  rerun.addEventListener("click", runAgain);
  for (const part of ["stdout", "stderr", "result"]) {
    document.getElementById(`download-${part}`).addEventListener("click", downloader(part));
  }
  interleave.addEventListener("change", () => {
    document.getElementById("together").hidden = !interleave.checked;
    document.getElementById("separate").hidden = interleave.checked;
    showOutput();
  });
  setInterval(() => { if (job && job.status === "processing") render(); }, 1000);
  load();
}
