#!/usr/bin/env bash
# Start Cloudpipe (SQLite store, local Docker) with its multyvac HTTP gateway and web UI,
# then run a shell job, a Python function job and multyvac jobs. Everything missing is
# installed first; the server and the gateway keep running afterwards.
#
#   bash scripts/demo.sh         # start (or reuse) and run the demo
#   bash scripts/demo.sh stop    # stop the server and the gateway this script started
set -euo pipefail

DATA_DIR="${CLOUDPIPE_DATA_DIR:-$HOME/.local/share/cloudpipe}"
ADDRESS="${CLOUDPIPE_ADDRESS:-127.0.0.1:50051}"
GATEWAY="${CLOUDPIPE_GATEWAY_LISTEN:-127.0.0.1:8000}"
SERVER_LOG="$DATA_DIR/server.log"
GATEWAY_LOG="$DATA_DIR/gateway.log"

# -- stop ------------------------------------------------------------------------
stop_recorded() { # NAME PIDFILE: stop the process recorded in PIDFILE, if it still runs
  local name=$1 pidfile=$2 pid
  [[ -f $pidfile ]] || { echo "$name: not started by this script"; return 0; }
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "$name (pid $pid): stopped"
  else
    echo "$name (pid $pid): was not running"
  fi
  rm -f "$pidfile"
}
if [[ "${1:-}" == "stop" ]]; then
  stop_recorded "gateway" "$DATA_DIR/gateway.pid"
  stop_recorded "cloudpipe-server" "$DATA_DIR/server.pid"
  echo "dockerd keeps running (the test command and your containers share it)."
  exit 0
fi
[[ $# -eq 0 ]] || { echo "usage: bash scripts/demo.sh [stop]" >&2; exit 2; }

source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
mkdir -p "$DATA_DIR"

port_in_use() { # HOST:PORT -> 0 when something accepts connections there
  "$VENV/bin/python" - "$1" <<'PY'
import socket, sys
host, _, port = sys.argv[1].rpartition(":")
with socket.socket() as s:
    s.settimeout(1)
    sys.exit(0 if s.connect_ex((host.strip("[]"), int(port))) == 0 else 1)
PY
}

server_serving() {
  "$VENV/bin/python" - "$ADDRESS" <<'PY' 2>/dev/null
import sys, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
with grpc.insecure_channel(sys.argv[1]) as ch:
    health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
PY
}

gateway_serving() {
  "$VENV/bin/python" - "$GATEWAY" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(f"http://{sys.argv[1]}/v1/auth_service", timeout=2) as answer:
    sys.exit(0 if answer.status == 200 else 1)
PY
}

wait_for() { # WHAT LOG CHECK...: poll CHECK for up to 60 s; show the log's tail on failure
  local what=$1 log=$2
  shift 2
  for _ in $(seq 1 300); do
    "$@" && return 0
    sleep 0.2
  done
  echo "$what did not start; the end of $log:" >&2
  tail -20 "$log" >&2
  exit 1
}

# -- server ----------------------------------------------------------------------
if server_serving; then
  say "cloudpipe-server already serving on $ADDRESS"
elif port_in_use "$ADDRESS"; then
  echo "$ADDRESS is in use by another program: stop it, or set CLOUDPIPE_ADDRESS=HOST:PORT" >&2
  exit 1
else
  say "starting cloudpipe-server on $ADDRESS (log: $SERVER_LOG)"
  CLOUDPIPE_DATA_DIR="$DATA_DIR" CLOUDPIPE_LISTEN="$ADDRESS" \
    setsid nohup "$VENV/bin/cloudpipe-server" >>"$SERVER_LOG" 2>&1 </dev/null &
  echo $! >"$DATA_DIR/server.pid"
  wait_for cloudpipe-server "$SERVER_LOG" server_serving
fi
for _ in $(seq 1 50); do [[ -s "$DATA_DIR/admin.key" ]] && break; sleep 0.2; done
API_KEY="${CLOUDPIPE_API_KEY:-$(cat "$DATA_DIR/admin.key")}"

# -- gateway (multyvac HTTP API + web UI) -----------------------------------------
if gateway_serving; then
  say "cloudpipe-gateway already serving on $GATEWAY"
elif port_in_use "$GATEWAY"; then
  echo "$GATEWAY is in use by another program: stop it, or set CLOUDPIPE_GATEWAY_LISTEN=HOST:PORT" >&2
  exit 1
else
  say "starting cloudpipe-gateway on $GATEWAY (log: $GATEWAY_LOG)"
  setsid nohup "$VENV/bin/cloudpipe-gateway" --listen "$GATEWAY" --server "$ADDRESS" \
    >>"$GATEWAY_LOG" 2>&1 </dev/null &
  echo $! >"$DATA_DIR/gateway.pid"
  wait_for cloudpipe-gateway "$GATEWAY_LOG" gateway_serving
fi

# -- the demo --------------------------------------------------------------------
say "running the demo"
CLOUDPIPE_ADDRESS="$ADDRESS" CLOUDPIPE_API_KEY="$API_KEY" "$VENV/bin/python" "$CLOUDPIPE_ROOT/scripts/demo_jobs.py"

say "a multyvac 0.5.0 job through the gateway (Python 2.7, in cloudpipe/runner-py2)"
# The unmodified multyvac client is installed in the runner-py2 image; host networking
# lets it reach the gateway on loopback. The key travels in the environment, not argv.
docker run --rm --network host -e GATEWAY_URL="http://$GATEWAY/v1" -e API_KEY="$API_KEY" \
  cloudpipe/runner-py2 python -c '
import os, multyvac
multyvac.config.set_key(api_key="admin", api_secret_key=os.environ["API_KEY"], api_url=os.environ["GATEWAY_URL"])
def add(a, b):
    return a + b
jid = multyvac.submit(add, 3, 4)
print("multyvac job %s: add(3, 4) = %s" % (jid, multyvac.get(jid).get_result()))
# a module of the client'"'"'s own: multyvac syncs it (rsync over the gateway'"'"'s SSH) into
# its auto-deps volume, mounted on the job'"'"'s PYTHONPATH
import sys
open("/tmp/mymath.py", "w").write("def triple(x):\n    return 3 * x\n")
sys.path.insert(0, "/tmp")
from mymath import triple
jid = multyvac.submit(lambda x: triple(x) + 1, 4)
print("multyvac job %s: triple(4) + 1 with the local module mymath = %s" % (jid, multyvac.get(jid).get_result()))
'

KEY_FILE="$DATA_DIR/admin.key"
cat <<MSG

Cloudpipe is running.
  gRPC API   $ADDRESS           (server pid $(cat "$DATA_DIR/server.pid" 2>/dev/null || echo "not ours"), log $SERVER_LOG)
  HTTP API   http://$GATEWAY/v1 (gateway pid $(cat "$DATA_DIR/gateway.pid" 2>/dev/null || echo "not ours"), log $GATEWAY_LOG)
  web UI     http://$GATEWAY/ui/
  account    admin
  API key    in $KEY_FILE (mode 0600; not printed here so it stays out of logs: cat it to paste it)

  export CLOUDPIPE_ADDRESS=$ADDRESS CLOUDPIPE_API_KEY=\$(cat $KEY_FILE)
  SDK        $VENV/bin/python -c 'from cloudpipe_sdk import Client; print(Client().shell("echo hi").result())'
  CLI        $VENV/bin/cloudpipe submit --wait 'uname -a'
  multyvac   multyvac.config.set_key(api_key='admin', api_secret_key='<the key>', api_url='http://$GATEWAY/v1')
  grpcurl    grpcurl -plaintext -H "authorization: Bearer \$CLOUDPIPE_API_KEY" -d '{"jobs":[{"cmd":"echo hi"}]}' $ADDRESS cloudpipe.v1.JobService/Submit
  browser    open http://$GATEWAY/ui/ and log in as admin with the key
Stop them with: bash scripts/demo.sh stop
(demo done in ${SECONDS} s)
MSG
