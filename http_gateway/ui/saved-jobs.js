// The saved jobs page: every saved job of the account (GET /ui/api/saved-jobs, latest
// versions); `?name=X` also shows its versions (GET /ui/api/saved-job) and a form to run
// it with overrides (POST /ui/api/saved-job/run), which links to the new job.
import { api, duration, el, nsToMs, parseStamp, requireSession, showError, table, timeElement } from "./common.js";

const session = requireSession();
const errorRegion = document.getElementById("error");
const notice = document.getElementById("notice");
const form = document.getElementById("run");
const chosen = new URLSearchParams(location.search).get("name");
let current = null; // the saved job shown in the detail section

const what = (saved) => saved.kind === "function"
  ? el("code", { class: "cmd", title: saved.cmd }, `${saved.function || "function"}()`)
  : el("code", { class: "cmd", title: saved.cmd }, saved.cmd);

function limits(saved) {
  const parts = [];
  if (saved.max_runtime) parts.push(`time ${duration(nsToMs(saved.max_runtime))}`);
  if (saved.cpus) parts.push(`${saved.cpus} CPU`);
  if (saved.memory_bytes) parts.push(`${Math.round(saved.memory_bytes / 2 ** 20)} MiB`);
  return parts.join(", ") || "server defaults";
}

function renderList(list) {
  const region = document.getElementById("saved-jobs");
  if (!list.length) {
    region.replaceChildren(el("p", { class: "empty" }, "No saved jobs yet."));
    return;
  }
  region.replaceChildren(table("Saved jobs", ["Name", "Version", "Runs", "Image", "Saved"],
    list.map((saved) => el("tr", { "data-saved": saved.name },
      el("td", {}, el("a", { href: `saved-jobs.html?name=${encodeURIComponent(saved.name)}` }, saved.name),
        saved.description ? el("span", { class: "help" }, saved.description) : null),
      el("td", { class: "num" }, String(saved.version)),
      el("td", {}, what(saved)),
      el("td", { class: "image" }, saved.image || "server default"),
      el("td", {}, timeElement(parseStamp(saved.created_at)))))));
}

function renderDetail(answer) {
  current = answer.saved_job;
  document.getElementById("detail").hidden = false;
  document.getElementById("detail-heading").textContent = current.name;
  document.getElementById("detail-description").textContent = current.description;
  const rows = answer.versions.map((v) => el("tr", { "data-version": v.version },
    el("td", { class: "num" }, String(v.version)),
    el("td", {}, timeElement(parseStamp(v.created_at))),
    el("td", {}, what(v)),
    el("td", { class: "image" }, v.image || "server default"),
    el("td", {}, Object.keys(v.env).length ? el("code", {}, Object.entries(v.env).map(([k, x]) => `${k}=${x}`).join(" ")) : "—"),
    el("td", {}, limits(v)),
    el("td", {}, v.description || "")));
  const versions = document.getElementById("versions");
  versions.replaceChildren(table(`Versions of ${current.name}`,
    ["Version", "Saved", "Runs", "Image", "Environment", "Limits", "Description"], rows));
  if (answer.more_versions) versions.append(el("p", { class: "help" }, `${answer.more_versions} older versions not shown.`));
  const select = document.getElementById("run-version");
  select.replaceChildren(el("option", { value: "" }, `Latest (${answer.versions[0].version})`),
    ...answer.versions.map((v) => el("option", { value: String(v.version) }, `Version ${v.version}`)));
  const isFunction = current.kind === "function";
  const args = document.getElementById("run-args");
  args.disabled = isFunction;
  document.getElementById("run-args-help").textContent = isFunction
    ? "A saved function call: run it with other arguments from the SDK (client.saved_jobs.run(name, args=...))."
    : "Appended to the command, each shell-quoted.";
}

async function run(event) {
  event.preventDefault();
  if (!current) return;
  const button = document.getElementById("run-submit");
  button.disabled = true;
  notice.replaceChildren();
  try {
    const answer = await api(session, "api/saved-job/run", { method: "POST", form: {
      name: current.name,
      version: document.getElementById("run-version").value,
      image: document.getElementById("run-image").value.trim(),
      max_runtime: document.getElementById("run-max-runtime").value.trim(),
      args: document.getElementById("run-args").disabled ? "" : document.getElementById("run-args").value,
      env: document.getElementById("run-env").value,
    } });
    showError(errorRegion, null);
    notice.append(`Started version ${answer.version} of ${current.name}: `,
      el("a", { href: `job.html?jid=${answer.jid}`, id: "run-link" }, `Job ${answer.jid}`));
  } catch (failure) {
    showError(errorRegion, failure);
  } finally {
    button.disabled = false;
  }
}

if (session) {
  form.addEventListener("submit", run);
  api(session, "api/saved-jobs").then((answer) => renderList(answer.saved_jobs), (f) => showError(errorRegion, f));
  if (chosen) {
    api(session, `api/saved-job?${new URLSearchParams({ name: chosen })}`).then(renderDetail,
      (failure) => showError(errorRegion, failure));
  }
}
