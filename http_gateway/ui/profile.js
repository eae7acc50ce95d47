// The profile: account, API key (hidden until asked), and how to use them from Python.
import { api, requireSession, showError } from "./common.js";

const session = requireSession();
const reveal = document.getElementById("reveal");
const py = (text) => JSON.stringify(text); // a JSON string of printable ASCII is a Python literal
let server = "HOST:50051"; // until the gateway tells

function render() {
  const shown = reveal.getAttribute("aria-pressed") === "true";
  const key = shown ? session.key : "•".repeat(12);
  const apiUrl = new URL("../v1", location.href).href;
  document.getElementById("profile-account").textContent = session.account;
  document.getElementById("profile-key").textContent = key;
  document.getElementById("server").textContent = server;
  reveal.textContent = shown ? "Hide key" : "Show key";
  document.getElementById("multyvac-snippet").textContent = `import multyvac

multyvac.config.set_key(api_key=${py(session.account)}, api_secret_key=${py(key)},
                        api_url=${py(apiUrl)})

def add(a, b):
    return a + b

jid = multyvac.submit(add, 3, 4)
print(multyvac.get(jid).get_result())  # 7
`;
  document.getElementById("sdk-snippet").textContent = `from cloudpipe_sdk import Client

def add(a, b):
    return a + b

with Client(${py(server)}, account=${py(session.account)}, api_key=${py(key)}) as client:
    print(client.submit(add, 3, 4).result(timeout=60))  # 7
`;
}

if (session) {
  reveal.addEventListener("click", () => {
    reveal.setAttribute("aria-pressed", String(reveal.getAttribute("aria-pressed") !== "true"));
    render();
  });
  render();
  api(session, "api/account").then(
    (account) => {
      server = account.server;
      render();
    },
    (failure) => showError(document.getElementById("error"), failure),
  );
}
