// The login page: check account name + API key with the gateway, then keep them.
import { api, explain, loadSession, saveSession } from "./common.js";

// where ?next= may lead
const PAGES = /^((jobs|profile|schedules|saved-jobs|overview)\.html|job\.html\?jid=\d+|saved-jobs\.html\?name=[\w%.@+-]+)$/;
const params = new URLSearchParams(location.search);
const next = PAGES.test(params.get("next") || "") ? params.get("next") : "jobs.html";

if (loadSession()) location.replace(next);

const form = document.getElementById("login");
const accountInput = document.getElementById("account-name");
const keyInput = document.getElementById("api-key");
const error = document.getElementById("error");
const submit = document.getElementById("submit");

if (params.has("loggedout")) document.getElementById("notice").textContent = "You are logged out.";
accountInput.focus();

function fail(message, input) {
  error.textContent = message;
  for (const field of [accountInput, keyInput]) field.removeAttribute("aria-invalid");
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const account = accountInput.value.trim();
  const key = keyInput.value;
  if (!account) return fail("Enter your account name.", accountInput);
  if (!key) return fail("Enter your API key.", keyInput);
  fail("");
  submit.disabled = true;
  submit.textContent = "Logging in…";
  try {
    await api({ account, key }, "api/account");
    saveSession(account, key, document.getElementById("remember").checked);
    location.replace(next);
  } catch (failure) {
    if (failure.status === 401) fail("Wrong account name or API key.", keyInput);
    else fail(explain(failure));
    submit.disabled = false;
    submit.textContent = "Log in";
  }
});
