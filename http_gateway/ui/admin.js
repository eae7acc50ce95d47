// The admin view of accounts: list (state, created), disable / enable, delete, list and
// revoke keys, create accounts; the quotas every account runs under. Needs the auth
// service's admin token, kept in sessionStorage of this tab only.
import { api, authApi, el, explain, loadSession, parseIso, table, timeElement } from "./common.js";

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
  const cell = el("td", { colspan: 4, class: "history" }, "Loading keys…");
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
      rows.push(el("tr", { "data-account": name },
        el("td", {}, el("strong", {}, name)),
        el("td", {}, el("span", { class: "status " + (account.disabled ? "status-paused" : "status-done") },
          account.disabled ? "Disabled" : "Active")),
        el("td", {}, timeElement(parseIso(account.created_at))),
        el("td", { class: "actions" }, toggle, keys, revoke, remove)));
      if (shownKeys.has(name)) rows.push(await keysRow(account));
    }
    document.getElementById("accounts").replaceChildren(accounts.length
      ? table("Accounts", ["Account", "State", "Created", "Actions"], rows)
      : el("p", { class: "empty" }, "No accounts yet."));
  } catch (failure) {
    fail(failure);
  }
}

// The quotas come from the Cloudpipe server (an admin-only call): with the admin's API
// key session of the other pages, when there is one.
async function loadQuotas() {
  const region = document.getElementById("quotas");
  const session = loadSession();
  if (!session) {
    region.replaceChildren(el("p", { class: "help" }, "Log in to the jobs pages as the server's admin account to see them."));
    return;
  }
  try {
    const usage = await api(session, "api/usage?all=1");
    const limit = (n) => (n ? String(n) : "no limit");
    region.replaceChildren(el("dl", { class: "details" },
      el("dt", {}, "Queued jobs per account"), el("dd", { id: "quota-queued" }, limit(usage.quotas.max_queued_per_account)),
      el("dt", {}, "Running jobs per account"), el("dd", { id: "quota-running" }, limit(usage.quotas.max_running_per_account))),
      el("p", { class: "help" }, "Set on the server (CLOUDPIPE_MAX_QUEUED_PER_ACCOUNT, CLOUDPIPE_MAX_RUNNING_PER_ACCOUNT); "
        + "the same for every account. Usage per account: "), el("a", { href: "overview.html" }, "Overview"));
  } catch (failure) {
    region.replaceChildren(el("p", { class: "help" }, failure.status === 403
      ? "Only the server's admin account can see them." : explain(failure)));
  }
}

function show() {
  document.getElementById("admin-login").hidden = Boolean(token);
  document.getElementById("admin-view").hidden = !token;
  document.getElementById("admin-out").hidden = !token;
  if (token) {
    loadAccounts();
    loadQuotas();
  }
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

document.getElementById("create").addEventListener("submit", async (event) => {
  event.preventDefault();
  const account = document.getElementById("create-account").value.trim();
  const password = document.getElementById("create-password").value;
  if (!account || !password) return;
  await act("api/auth/admin/accounts", { account, password }, () => `Account ${account} created.`);
  document.getElementById("create-password").value = "";
});

show();
