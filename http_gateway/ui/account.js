// The account page: sign up (when the auth service allows it; closed by default) and
// sign in with a password, then create, name, list and revoke API keys. A new key is
// shown once; "Use this key" logs the other pages in with it. Calls /ui/api/auth/...
import {
  authApi, clearSignin, el, explain, loadSignin, parseIso, saveSession, saveSignin, table, timeElement,
} from "./common.js";

const errorRegion = document.getElementById("error");
const notice = document.getElementById("notice");
let signin = loadSignin();
let secret = null; // the key just created, until the page is left

function say(message) {
  notice.textContent = message;
  errorRegion.textContent = "";
}

function fail(failure) {
  if (failure.code === "SESSION" && signin) {
    clearSignin();
    signin = null;
    show();
    errorRegion.textContent = "Your sign-in has expired: sign in again.";
    return;
  }
  errorRegion.textContent = failure.code === "SESSION" ? failure.message : explain(failure);
}

async function loadKeys() {
  const region = document.getElementById("keys");
  try {
    const { keys } = await authApi(signin.token, "api/auth/keys");
    if (!keys.length) {
      region.replaceChildren(el("p", { class: "empty" }, "No API keys yet."));
      return;
    }
    region.replaceChildren(table("API keys", ["Name", "Id", "Created", "Last used", ""], keys.map((key) => {
      const revoke = el("button", { type: "button", class: "danger", "data-revoke": key.id }, "Revoke");
      revoke.addEventListener("click", () => revokeKey(key, revoke));
      return el("tr", { "data-key": key.id },
        el("td", {}, key.name || el("span", { class: "meta" }, "(no name)")),
        el("td", {}, el("code", {}, key.id)),
        el("td", {}, timeElement(parseIso(key.created_at))),
        el("td", {}, key.last_used_at ? timeElement(parseIso(key.last_used_at)) : "Never"),
        el("td", {}, revoke));
    })));
  } catch (failure) {
    fail(failure);
  }
}

async function revokeKey(key, button) {
  if (!confirm(`Revoke the key ${key.name || key.id}? Programs using it stop working.`)) return;
  button.disabled = true;
  try {
    await authApi(signin.token, "api/auth/keys/revoke", { method: "POST", form: { id: key.id } });
    say(`Key ${key.name || key.id} revoked.`);
  } catch (failure) {
    fail(failure);
  }
  await loadKeys();
}

async function showSignup() {
  try {
    const policy = await authApi(null, "api/auth/signup");
    if (!policy.configured) {
      document.getElementById("no-auth").hidden = false;
      document.getElementById("signed-out").hidden = true;
      return;
    }
    document.getElementById("signup-closed").hidden = policy.open;
    document.getElementById("signup").hidden = !policy.open;
    document.getElementById("signup-help").textContent = `At least ${policy.min_password_length} characters.`;
  } catch (failure) {
    fail(failure);
  }
}

function show() {
  const inside = Boolean(signin);
  document.getElementById("signed-in").hidden = !inside;
  document.getElementById("signed-out").hidden = inside;
  document.getElementById("who").hidden = !inside;
  document.getElementById("sign-out").hidden = !inside;
  if (inside) {
    document.getElementById("signed-in-as").textContent = signin.account;
    loadKeys();
  } else {
    showSignup();
  }
}

async function signIn(account, password) {
  const answer = await authApi(null, "api/auth/login", { method: "POST", form: { account, password } });
  signin = { account: answer.account, token: answer.token, expires_at: answer.expires_at };
  saveSignin(signin);
  show();
}

document.getElementById("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  const account = document.getElementById("signin-account").value.trim();
  const password = document.getElementById("signin-password").value;
  if (!account || !password) return fail({ code: "SESSION", message: "Enter your account name and password." });
  try {
    await signIn(account, password);
    say(`Signed in as ${account}.`);
  } catch (failure) {
    fail(failure);
  }
});

document.getElementById("signup").addEventListener("submit", async (event) => {
  event.preventDefault();
  const account = document.getElementById("signup-account").value.trim();
  const password = document.getElementById("signup-password").value;
  if (!account || !password) return fail({ code: "SESSION", message: "Choose an account name and a password." });
  try {
    await authApi(null, "api/auth/signup", { method: "POST", form: { account, password } });
    await signIn(account, password);
    say(`Account ${account} created. Create an API key to use it.`);
  } catch (failure) {
    fail(failure);
  }
});

document.getElementById("new-key").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = document.getElementById("key-name").value.trim();
  try {
    const answer = await authApi(signin.token, "api/auth/keys", { method: "POST", form: { name } });
    secret = answer.secret;
    document.getElementById("secret").textContent = secret;
    document.getElementById("secret-box").hidden = false;
    document.getElementById("key-name").value = "";
    say(`Key ${answer.key.name || answer.key.id} created.`);
    await loadKeys();
  } catch (failure) {
    fail(failure);
  }
});

document.getElementById("use-key").addEventListener("click", () => {
  if (!secret || !signin) return;
  saveSession(signin.account, secret, false);
  location.assign("jobs.html");
});

document.getElementById("sign-out").addEventListener("click", async () => {
  try {
    await authApi(signin.token, "api/auth/logout", { method: "POST" });
  } catch {
    // ended anyway: the token is forgotten here
  }
  clearSignin();
  signin = null;
  secret = null;
  document.getElementById("secret-box").hidden = true;
  show();
  say("Signed out.");
});

show();
