// The admin view of accounts: list (state, created, quotas), disable / enable, delete,
// list and revoke keys, create accounts; the server's default quotas and each account's
// overrides, which the admin edits. Needs the auth service's admin token, kept in
// sessionStorage of this tab only; the quotas need the jobs pages' session of the
// server's admin account (the Cloudpipe server, not the auth service, keeps them).
import { api, authApi, el, explain, loadSession, parseIso, parseStamp, table, timeElement } from "./common.js";

const TOKEN = "cloudpipe.admin";
const errorRegion = document.getElementById("error");
const notice = document.getElementById("notice");
const shownKeys = new Set();
let token = sessionStorage.getItem(TOKEN);

function say(message) {
  notice.textContent = message;
  errorRegion.textContent = "";
}

function fail(failure) {
  if (failure.code === "SESSION" || failure.code === "DENIED") {
    sessionStorage.removeItem(TOKEN);
    token = null;
    show();
    errorRegion.textContent = "The auth service refused the admin token.";
    return;
  }
  errorRegion.textContent = failure.code === "NOTFOUND" ? failure.message : explain(failure);
}

async function act(path, form, done) {
  try {
    const answer = await authApi(token, path, { method: "POST", form });
    say(done(answer));
  } catch (failure) {
    fail(failure);
  }
  await loadAccounts();
}

function button(label, attrs, onClick) {
  const node = el("button", { type: "button", ...attrs }, label);
  node.addEventListener("click", onClick);
  return node;
}

async function keysRow(account) {
  const cell = el("td", { colspan: 5, class: "history" }, "Loading keys…");
  authApi(token, `api/auth/admin/keys?${new URLSearchParams({ name: account.account })}`).then(({ keys }) => {
    cell.replaceChildren(keys.length
      ? table(`Keys of ${account.account}`, ["Name", "Id", "Created", "Last used"], keys.map((key) => el("tr", {},
        el("td", {}, key.name || "(no name)"), el("td", {}, el("code", {}, key.id)),
        el("td", {}, timeElement(parseIso(key.created_at))),
        el("td", {}, key.last_used_at ? timeElement(parseIso(key.last_used_at)) : "Never"))))
      : el("p", { class: "empty" }, "No keys."));
  }, (failure) => cell.replaceChildren(el("p", { class: "error" }, failure.message)));
  return el("tr", { class: "history-row", "data-keys-of": account.account }, cell);
}

// The server's quotas: {defaults, byAccount: Map(name -> quotas)}, or null when they
// cannot be read (no session of the admin account, or the server refused).
let quotaState = null;

const limitText = (n) => (n ? String(n) : "no limit");

function quotaCell(name) {
  if (!quotaState) return el("td", { class: "quotas" }, "—");
  const own = quotaState.byAccount.get(name);
  const queued = own ? own.max_queued : quotaState.defaults.max_queued;
  const running = own ? own.max_running : quotaState.defaults.max_running;
  const mark = (set) => (set === null || set === undefined ? " (default)" : "");
  return el("td", { class: "quotas", "data-quotas-of": name },
    `Queued: ${limitText(queued)}${mark(own && own.override.max_queued)}`, el("br"),
    `Running: ${limitText(running)}${mark(own && own.override.max_running)}`);
}

function editQuotas(name) {
  const own = quotaState && quotaState.byAccount.get(name);
  const shown = (n) => (n === null || n === undefined ? "" : String(n));
  document.getElementById("quota-account").value = name;
  document.getElementById("quota-max-queued").value = shown(own && own.override.max_queued);
  document.getElementById("quota-max-running").value = shown(own && own.override.max_running);
  document.getElementById("quota-max-queued").focus();
}

async function loadAccounts() {
  try {
    const { accounts } = await authApi(token, "api/auth/admin/accounts");
    const rows = [];
    for (const account of accounts) {
      const name = account.account;
      const toggle = button(account.disabled ? "Enable" : "Disable",
        { class: "secondary", "data-action": account.disabled ? "enable" : "disable", "data-account": name },
        () => act("api/auth/admin/account/disable", { name, disabled: String(!account.disabled) },
          () => `${name} ${account.disabled ? "enabled" : "disabled"}.`));
      const keys = button("Keys", { class: "secondary", "data-action": "keys", "data-account": name,
        "aria-expanded": String(shownKeys.has(name)) }, () => {
        if (shownKeys.has(name)) shownKeys.delete(name);
        else shownKeys.add(name);
        loadAccounts();
      });
      const revoke = button("Revoke all keys", { class: "secondary", "data-action": "revoke-all", "data-account": name },
        () => confirm(`Revoke every key of ${name}?`) && act("api/auth/admin/keys/revoke-all", { name },
          (answer) => `${answer.revoked} key(s) of ${name} revoked.`));
      const remove = button("Delete", { class: "danger", "data-action": "delete", "data-account": name },
        () => confirm(`Delete ${name}? Its keys stop working, its schedules stop, and the name can never be used again.`)
          && act("api/auth/admin/account/delete", { name }, () => `${name} deleted.`));
      const quotas = quotaState
        ? [button("Quotas", { class: "secondary", "data-action": "quotas", "data-account": name }, () => editQuotas(name))]
        : [];
      rows.push(el("tr", { "data-account": name },
        el("td", {}, el("strong", {}, name)),
        el("td", {}, el("span", { class: "status " + (account.disabled ? "status-paused" : "status-done") },
          account.disabled ? "Disabled" : "Active")),
        el("td", {}, timeElement(parseIso(account.created_at))),
        quotaCell(name),
        el("td", { class: "actions" }, toggle, ...quotas, keys, revoke, remove)));
      if (shownKeys.has(name)) rows.push(await keysRow(account));
    }
    document.getElementById("accounts").replaceChildren(accounts.length
      ? table("Accounts", ["Account", "State", "Created", "Quotas", "Actions"], rows)
      : el("p", { class: "empty" }, "No accounts yet."));
  } catch (failure) {
    fail(failure);
  }
}

// The quotas come from the Cloudpipe server (admin-only calls): with the admin's API
// key session of the other pages, when there is one.
async function loadQuotas() {
  const region = document.getElementById("quotas");
  const session = loadSession();
  const editable = (on) => {
    document.getElementById("quota-form").hidden = !on;
    document.getElementById("quota-help").hidden = !on;
  };
  quotaState = null;
  if (!session) {
    editable(false);
    region.replaceChildren(el("p", { class: "help" }, "Log in to the jobs pages as the server's admin account to see and set them."));
    return;
  }
  try {
    const { defaults, accounts } = await api(session, "api/quotas");
    quotaState = { defaults, byAccount: new Map(accounts.map((q) => [q.account, q])) };
    const shown = (n) => (n === null ? "default" : limitText(n));
    const overrideRow = (q) => el("tr", { "data-quota-account": q.account },
      el("td", {}, q.account),
      el("td", {}, shown(q.override.max_queued)),
      el("td", {}, shown(q.override.max_running)),
      el("td", {}, q.updated_at ? timeElement(parseStamp(q.updated_at)) : ""));
    const overrides = accounts.length
      ? table("Quota overrides", ["Account", "Max queued", "Max running", "Set"], accounts.map(overrideRow))
      : el("p", { class: "empty" }, "No account has quotas of its own.");
    region.replaceChildren(
      el("dl", { class: "details" },
        el("dt", {}, "Queued jobs per account"), el("dd", { id: "quota-queued" }, limitText(defaults.max_queued)),
        el("dt", {}, "Running jobs per account"), el("dd", { id: "quota-running" }, limitText(defaults.max_running))),
      el("p", { class: "help" }, "The server's defaults (CLOUDPIPE_MAX_QUEUED_PER_ACCOUNT, CLOUDPIPE_MAX_RUNNING_PER_ACCOUNT), "
        + "for every account without an override of its own. Usage per account: ", el("a", { href: "overview.html" }, "Overview")),
      overrides);
    editable(true);
  } catch (failure) {
    editable(false);
    region.replaceChildren(el("p", { class: "help" }, failure.status === 403
      ? "Only the server's admin account can see and set them." : explain(failure)));
  }
}

async function saveQuotas(form) {
  const session = loadSession();
  try {
    const saved = await api(session, "api/quota/set", { method: "POST", form });
    say(saved.updated_at ? `Quotas of ${saved.account} saved: at most ${limitText(saved.max_queued)} queued, `
      + `${limitText(saved.max_running)} running.` : `${saved.account} runs under the server's defaults again.`);
  } catch (failure) {
    errorRegion.textContent = explain(failure);
  }
  await loadQuotas();
  await loadAccounts();
}

function show() {
  document.getElementById("admin-login").hidden = Boolean(token);
  document.getElementById("admin-view").hidden = !token;
  document.getElementById("admin-out").hidden = !token;
  if (token) loadQuotas().then(loadAccounts);
}

document.getElementById("admin-login").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = document.getElementById("admin-token").value;
  if (!value) return;
  token = value;
  sessionStorage.setItem(TOKEN, token);
  document.getElementById("admin-token").value = "";
  show();
});

document.getElementById("admin-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN);
  token = null;
  show();
});

document.getElementById("quota-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const account = document.getElementById("quota-account").value.trim();
  if (!account) return;
  saveQuotas({
    account,
    max_queued: document.getElementById("quota-max-queued").value.trim(),
    max_running: document.getElementById("quota-max-running").value.trim(),
  });
});

document.getElementById("quota-clear").addEventListener("click", () => {
  const account = document.getElementById("quota-account").value.trim();
  if (!account) return;
  document.getElementById("quota-max-queued").value = "";
  document.getElementById("quota-max-running").value = "";
  saveQuotas({ account, max_queued: "", max_running: "" });
});

document.getElementById("create").addEventListener("submit", async (event) => {
  event.preventDefault();
  const account = document.getElementById("create-account").value.trim();
  const password = document.getElementById("create-password").value;
  if (!account || !password) return;
  await act("api/auth/admin/accounts", { account, password }, () => `Account ${account} created.`);
  document.getElementById("create-password").value = "";
});

show();
