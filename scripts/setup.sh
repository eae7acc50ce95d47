#!/usr/bin/env bash
# Shared set-up for scripts/demo.sh and scripts/test.sh, on Debian as root.
# Installs what is missing (apt packages, a venv with the Python deps), starts dockerd
# when no engine answers, and builds the runner images (cached after the first run).
#
#   source scripts/setup.sh [--with-test-deps]
set -euo pipefail

CLOUDPIPE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CLOUDPIPE_VENV:-$CLOUDPIPE_ROOT/.venv}"
WITH_TEST_DEPS=0
[[ "${1:-}" == "--with-test-deps" ]] && WITH_TEST_DEPS=1

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

APT_UPDATED=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  if ! command -v apt-get >/dev/null; then
    echo "missing packages ${missing[*]} and no apt-get: install them by hand" >&2
    return 1
  fi
  if ((APT_UPDATED == 0)); then
    say "apt-get update"
    apt-get update -qq
    APT_UPDATED=1
  fi
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# -- system packages -------------------------------------------------------------
packages=(ca-certificates debootstrap)
command -v dockerd >/dev/null || packages+=(docker.io)
if ((WITH_TEST_DEPS)); then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
  packages+=(chromium chromium-driver tmux) # a real browser for the web UI tests; a real terminal for the CLI
  # The Node.js SDK's build and tests (Debian's npm is its own package; a nodejs with npm
  # bundled needs neither), and the Ruby client's runtime and stub generator (protoc's
  # well-known types, google/protobuf/*.proto, come with libprotobuf-dev).
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
  packages+=(ruby ruby-grpc ruby-google-protobuf ruby-grpc-tools libprotobuf-dev)
  command -v ip >/dev/null || packages+=(iproute2) # the multi-node tests' engines in network namespaces
fi
apt_install "${packages[@]}"

# -- Python environment ----------------------------------------------------------
PYTHON="${PYTHON:-python3}"
if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating the virtual environment $VENV"
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    apt_install python3-venv
    "$PYTHON" -m venv "$VENV"
  fi
fi
extras="" && ((WITH_TEST_DEPS)) && extras="[dev]"
stamp="$VENV/.cloudpipe-installed$extras"
fresh_stamp() { [[ -f "$1" && ! "$CLOUDPIPE_ROOT/pyproject.toml" -nt "$1" && ! "$CLOUDPIPE_ROOT/sdk/pyproject.toml" -nt "$1" ]]; }
# The [dev] install includes everything the plain one has.
if ! fresh_stamp "$stamp" && ! fresh_stamp "$VENV/.cloudpipe-installed[dev]"; then
  say "installing Python dependencies$extras (log: $VENV/pip-install.log)"
  "$VENV/bin/python" -m pip install -q --upgrade pip >"$VENV/pip-install.log" 2>&1 || true
  # Two distributions, both editable: the SDK and CLI (sdk/), and the server that needs it.
  if ! "$VENV/bin/python" -m pip install -e "$CLOUDPIPE_ROOT/sdk" -e "$CLOUDPIPE_ROOT$extras" >>"$VENV/pip-install.log" 2>&1; then
    tail -30 "$VENV/pip-install.log" >&2
    echo "installing the Python dependencies failed (whole log: $VENV/pip-install.log)" >&2
    exit 1
  fi
  # A venv made before the split had `cloudpipe` from the server distribution: replacing
  # that removes the script the SDK just installed, so the SDK is installed once more.
  if [[ ! -x "$VENV/bin/cloudpipe" ]]; then
    "$VENV/bin/python" -m pip install --no-deps --force-reinstall -e "$CLOUDPIPE_ROOT/sdk" >>"$VENV/pip-install.log" 2>&1
  fi
  touch "$stamp"
fi

# -- Docker engine ---------------------------------------------------------------
DOCKERD_PID_FILE=/var/run/cloudpipe-dockerd.pid
if [[ -f $DOCKERD_PID_FILE ]] && ! kill -0 "$(cat "$DOCKERD_PID_FILE")" 2>/dev/null; then
  rm -f "$DOCKERD_PID_FILE" # a stale record of a dockerd we started earlier
fi
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: /var/log/cloudpipe-dockerd.log)"
  setsid nohup dockerd >/var/log/cloudpipe-dockerd.log 2>&1 </dev/null &
  echo $! >"$DOCKERD_PID_FILE" # ours: the engine-restart test may restart it
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { tail -20 /var/log/cloudpipe-dockerd.log >&2; echo "dockerd did not start" >&2; exit 1; }
fi

# -- runner images ---------------------------------------------------------------
say "building runner images (cached)"
"$VENV/bin/python" "$CLOUDPIPE_ROOT/runner_images/build.py"
say "set-up done in ${SECONDS} s"
