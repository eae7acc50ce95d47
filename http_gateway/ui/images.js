// The images page: every image of the account (GET /ui/api/images), newest first, with
// its reference, digest, build time, size and what its spec does; delete one (after a
// confirmation) with POST /ui/api/image/delete. Re-read every REFRESH_MS and after a delete.
import { api, el, parseStamp, requireSession, showError, sizeText, table, timeElement } from "./common.js";

const REFRESH_MS = 30_000;
const session = requireSession();
const region = document.getElementById("images");
const errorRegion = document.getElementById("error");
const notice = document.getElementById("notice");
let busy = false;

function empty() {
  return el("div", { class: "empty" },
    el("p", {}, "No images yet. Build one with the SDK, for example ",
      el("code", {}, 'client.images.build(Image.runner().pip_install("six"))'),
      ", or with ", el("code", {}, "cloudpipe image build"), "."),
    el("p", { class: "help" }, 'See docs/sdk.md, "Images", for the steps an image can have.'));
}

async function remove(image, button) {
  if (busy || !confirm(`Delete image ${image.reference}? Jobs already started on it are not affected.`)) return;
  busy = true;
  button.disabled = true;
  try {
    await api(session, "api/image/delete", { method: "POST", form: { reference: image.reference } });
    notice.textContent = `Deleted ${image.reference}.`;
    showError(errorRegion, null);
  } catch (failure) {
    showError(errorRegion, failure);
  } finally {
    busy = false;
    await load();
  }
}

function row(image) {
  const button = el("button", { type: "button", class: "danger", "data-action": "delete",
    "data-image": image.reference }, "Delete");
  button.addEventListener("click", () => remove(image, button));
  const built = parseStamp(image.created_at);
  return el("tr", { "data-image": image.reference },
    el("td", {}, el("code", { class: "cmd", title: image.reference }, image.reference)),
    el("td", { class: "summary" }, image.summary || "—"),
    el("td", {}, built ? timeElement(built) : "—"),
    el("td", { class: "size" }, image.size_bytes ? sizeText(image.size_bytes) : "—"),
    el("td", { class: "actions" }, button));
}

function render(list) {
  if (!list.length) {
    region.replaceChildren(empty());
    return;
  }
  region.replaceChildren(table("Images", ["Reference", "Steps", "Built", "Size", "Actions"], list.map(row)));
}

async function load() {
  try {
    const answer = await api(session, "api/images");
    render(answer.images);
    document.getElementById("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (failure) {
    showError(errorRegion, failure);
  }
}

if (session) {
  load();
  setInterval(() => { if (!busy && !document.hidden) load(); }, REFRESH_MS);
}
