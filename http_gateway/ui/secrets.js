// The secrets page: every secret of the account by name (GET /ui/api/secrets), with when it
// was made and last set; set one, new or a new value, from the form (POST /ui/api/secret/set),
// and delete one after a confirmation (POST /ui/api/secret/delete). A value is only ever sent:
// no answer carries one, and the form is emptied once it is saved. The list is re-read after
// every change.
import { api, el, parseStamp, requireSession, showError, table, timeElement } from "./common.js";

const session = requireSession();
const errorRegion = document.getElementById("error");
const notice = document.getElementById("notice");
let busy = false;

function done(message) {
  notice.textContent = message;
  showError(errorRegion, null);
}

function emptyList() {
  return el("div", { class: "empty" },
    el("p", {}, "No secrets yet. Set one above, with ", el("code", {}, "cloudpipe secret set API_TOKEN"),
      " (the value from stdin or a prompt), or with the SDK: ",
      el("code", {}, 'client.secrets.set("API_TOKEN", value)'), "."),
    el("p", { class: "help" }, "A job gets it when it names it: ",
      el("code", {}, "cloudpipe submit --secret API_TOKEN ..."), "."));
}

function replace(secret) {
  const name = document.getElementById("set-name");
  name.value = secret.name;
  document.getElementById("set-value").focus();
  done(`Type the new value of ${secret.name} and save.`);
}

async function remove(secret, button) {
  if (busy || !confirm(`Delete secret ${secret.name}? Jobs that name it will be refused.`)) return;
  busy = true;
  button.disabled = true;
  try {
    await api(session, "api/secret/delete", { method: "POST", form: { name: secret.name } });
    done(`Deleted ${secret.name}.`);
  } catch (failure) {
    showError(errorRegion, failure);
  } finally {
    busy = false;
    await loadSecrets();
  }
}

function secretRow(secret) {
  const change = el("button", { type: "button", class: "secondary", "data-action": "replace",
    "data-secret": secret.name }, "New value");
  change.addEventListener("click", () => replace(secret));
  const drop = el("button", { type: "button", class: "danger", "data-action": "delete",
    "data-secret": secret.name }, "Delete");
  drop.addEventListener("click", () => remove(secret, drop));
  return el("tr", { "data-secret": secret.name },
    el("td", {}, el("code", {}, secret.name)),
    el("td", {}, timeElement(parseStamp(secret.created_at))),
    el("td", {}, timeElement(parseStamp(secret.updated_at))),
    el("td", { class: "actions" }, change, drop));
}

async function loadSecrets() {
  const region = document.getElementById("secrets");
  try {
    const answer = await api(session, "api/secrets");
    region.replaceChildren(answer.secrets.length
      ? table("Secrets", ["Name", "Created", "Last set", "Actions"], answer.secrets.map(secretRow))
      : emptyList());
  } catch (failure) {
    showError(errorRegion, failure);
  }
}

async function save(event) {
  event.preventDefault();
  const name = document.getElementById("set-name");
  const value = document.getElementById("set-value");
  const button = document.getElementById("set-submit");
  const chosen = name.value.trim();
  if (!chosen || !value.value || busy) return;
  busy = true;
  button.disabled = true;
  try {
    await api(session, "api/secret/set", { method: "POST", form: { name: chosen, value: value.value } });
    name.value = "";
    value.value = "";
    done(`Saved ${chosen}.`);
  } catch (failure) {
    showError(errorRegion, failure);
  } finally {
    busy = false;
    button.disabled = false;
    await loadSecrets();
  }
}

if (session) {
  document.getElementById("set").addEventListener("submit", save);
  loadSecrets();
}
