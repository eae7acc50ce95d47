// The volumes page. Without `?name=`: every volume of the account (GET /ui/api/volumes),
// by name, with when it was made; create one (POST /ui/api/volume/create) and delete one
// after a confirmation (POST /ui/api/volume/delete). With `?name=X&path=P`: the files of
// directory P of volume X (GET /ui/api/volume/files), a breadcrumb of the path, directories
// as links; download a file (GET /ui/api/volume/download), upload one into P (POST
// /ui/api/volume/upload) or remove a file or directory after a confirmation (POST
// /ui/api/volume/remove). Each view is re-read after every change.
import { api, download, el, parseStamp, requireSession, showError, sizeText, table, timeElement } from "./common.js";

const session = requireSession();
const query = new URLSearchParams(location.search);
const chosen = query.get("name");
const here = (query.get("path") || "").replace(/^\/+|\/+$/g, "");
const errorRegion = document.getElementById("error");
const notice = document.getElementById("notice");
let busy = false;

const browseHref = (name, path = "") =>
  "volumes.html?" + new URLSearchParams(path ? { name, path } : { name }).toString();

function done(message) {
  notice.textContent = message;
  showError(errorRegion, null);
}

// -- the list of volumes ----------------------------------------------------------------

function emptyList() {
  return el("div", { class: "empty" },
    el("p", {}, "No volumes yet. Create one above, with ", el("code", {}, "cloudpipe volume create mydata"),
      ", or with the SDK: ", el("code", {}, 'client.volumes.create("mydata")'), "."),
    el("p", { class: "help" }, "Then open it here to upload files, put them in with ",
      el("code", {}, 'client.volumes.put("mydata", "in.csv")'), ", or have a job that mounts it write them."));
}

async function removeVolume(volume, button) {
  if (busy || !confirm(`Delete volume ${volume.name} and every file in it? This cannot be undone.`)) return;
  busy = true;
  button.disabled = true;
  try {
    await api(session, "api/volume/delete", { method: "POST", form: { name: volume.name } });
    done(`Deleted ${volume.name}.`);
  } catch (failure) {
    showError(errorRegion, failure);
  } finally {
    busy = false;
    await loadVolumes();
  }
}

function volumeRow(volume) {
  const button = el("button", { type: "button", class: "danger", "data-action": "delete",
    "data-volume": volume.name }, "Delete");
  button.addEventListener("click", () => removeVolume(volume, button));
  return el("tr", { "data-volume": volume.name },
    el("td", {}, el("a", { href: browseHref(volume.name) }, volume.name)),
    el("td", {}, timeElement(parseStamp(volume.created_at))),
    el("td", { class: "actions" }, button));
}

async function loadVolumes() {
  const region = document.getElementById("volumes");
  try {
    const answer = await api(session, "api/volumes");
    region.replaceChildren(answer.volumes.length
      ? table("Volumes", ["Name", "Created", "Actions"], answer.volumes.map(volumeRow))
      : emptyList());
  } catch (failure) {
    showError(errorRegion, failure);
  }
}

async function create(event) {
  event.preventDefault();
  const input = document.getElementById("create-name");
  const button = document.getElementById("create-submit");
  const name = input.value.trim();
  if (!name || busy) return;
  busy = true;
  button.disabled = true;
  try {
    await api(session, "api/volume/create", { method: "POST", form: { name } });
    input.value = "";
    done(`Created ${name}.`);
  } catch (failure) {
    showError(errorRegion, failure);
  } finally {
    busy = false;
    button.disabled = false;
    await loadVolumes();
  }
}

// -- one directory of a volume ----------------------------------------------------------

function crumbs() {
  const items = [el("li", {}, el("a", { href: "volumes.html" }, "Volumes"))];
  const parts = here ? here.split("/") : [];
  const trail = [chosen, ...parts];
  trail.forEach((part, index) => {
    const last = index === trail.length - 1;
    const path = parts.slice(0, index).join("/");
    items.push(el("li", {}, last
      ? el("span", { "aria-current": "page" }, part)
      : el("a", { href: browseHref(chosen, path) }, part)));
  });
  document.getElementById("crumbs").replaceChildren(...items);
  document.getElementById("browse-heading").textContent = here ? `${chosen}: ${here}/` : chosen;
  document.title = `${chosen}${here ? "/" + here : ""} · Volumes · Cloudpipe`;
}

function emptyDirectory() {
  if (here) return el("p", { class: "empty" }, "This directory is empty.");
  return el("div", { class: "empty" },
    el("p", {}, "No files in this volume yet. Upload one above, or put one in with ",
      el("code", {}, `client.volumes.put(${JSON.stringify(chosen)}, "in.csv")`), "."),
    el("p", { class: "help" }, "Jobs that mount it can write to it too."));
}

async function fetchFile(entry, button) {
  button.disabled = true;
  try {
    const params = new URLSearchParams({ name: chosen, path: entry.path });
    await download(session, `api/volume/download?${params}`, entry.name);
    showError(errorRegion, null);
  } catch (failure) {
    showError(errorRegion, failure);
  } finally {
    button.disabled = false;
  }
}

async function removeEntry(entry, button) {
  const what = entry.directory ? `directory ${entry.path} and everything in it` : entry.path;
  if (busy || !confirm(`Remove ${what} from ${chosen}? This cannot be undone.`)) return;
  busy = true;
  button.disabled = true;
  try {
    await api(session, "api/volume/remove", { method: "POST", form: { name: chosen, path: entry.path } });
    done(`Removed ${entry.path}.`);
  } catch (failure) {
    showError(errorRegion, failure);
  } finally {
    busy = false;
    await loadFiles();
  }
}

function fileRow(entry) {
  const remove = el("button", { type: "button", class: "danger", "data-action": "remove",
    "data-path": entry.path }, "Remove");
  remove.addEventListener("click", () => removeEntry(entry, remove));
  let name;
  let get = null;
  if (entry.directory) {
    name = el("a", { href: browseHref(chosen, entry.path), class: "directory" }, entry.name + "/");
  } else {
    name = el("span", { class: "file" }, entry.name);
    get = el("button", { type: "button", class: "secondary", "data-action": "download",
      "data-path": entry.path }, "Download");
    get.addEventListener("click", () => fetchFile(entry, get));
  }
  return el("tr", { "data-path": entry.path, "data-kind": entry.directory ? "directory" : "file" },
    el("td", {}, name),
    el("td", { class: "num" }, entry.directory ? "—" : sizeText(entry.size_bytes)),
    el("td", {}, entry.modified_at ? timeElement(parseStamp(entry.modified_at)) : "—"),
    el("td", { class: "actions" }, get, remove));
}

async function loadFiles() {
  const region = document.getElementById("files");
  try {
    const answer = await api(session, `api/volume/files?${new URLSearchParams({ name: chosen, path: here })}`);
    const rows = answer.entries.map(fileRow);
    region.replaceChildren(rows.length ? table(`Files of ${chosen}`, ["Name", "Size", "Modified", "Actions"], rows)
      : emptyDirectory());
    if (answer.truncated) region.append(el("p", { class: "help" }, "Only the first 10,000 entries are shown."));
    document.getElementById("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (failure) {
    region.replaceChildren();
    showError(errorRegion, failure);
  }
}

async function upload(event) {
  event.preventDefault();
  const input = document.getElementById("upload-file");
  const button = document.getElementById("upload-submit");
  const file = input.files[0];
  if (!file || busy) return;
  const path = here ? `${here}/${file.name}` : file.name;
  busy = true;
  button.disabled = true;
  try {
    const params = new URLSearchParams({ name: chosen, path });
    await api(session, `api/volume/upload?${params}`, { method: "POST", file });
    input.value = "";
    done(`Uploaded ${path} (${sizeText(file.size)}).`);
  } catch (failure) {
    showError(errorRegion, failure);
  } finally {
    busy = false;
    button.disabled = false;
    await loadFiles();
  }
}

if (session) {
  if (chosen) {
    document.getElementById("browse").hidden = false;
    crumbs();
    document.getElementById("upload").addEventListener("submit", upload);
    loadFiles();
  } else {
    document.getElementById("list").hidden = false;
    document.getElementById("create").addEventListener("submit", create);
    loadVolumes();
  }
}
