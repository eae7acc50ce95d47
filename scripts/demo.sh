#!/usr/bin/env bash
# Start Cloudpipe (SQLite store, local Docker) and run a shell job and a Python function job.
# Everything missing is installed first; the server keeps running afterwards.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

DATA_DIR="${CLOUDPIPE_DATA_DIR:-$HOME/.local/share/cloudpipe}"
ADDRESS="${CLOUDPIPE_ADDRESS:-127.0.0.1:50051}"
LOG="$DATA_DIR/server.log"
mkdir -p "$DATA_DIR"

if ! "$VENV/bin/python" - "$ADDRESS" <<'PY' 2>/dev/null; then
import sys, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
with grpc.insecure_channel(sys.argv[1]) as ch:
    health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
PY
  say "starting cloudpipe-server on $ADDRESS (log: $LOG)"
  CLOUDPIPE_DATA_DIR="$DATA_DIR" CLOUDPIPE_LISTEN="$ADDRESS" nohup "$VENV/bin/cloudpipe-server" >>"$LOG" 2>&1 &
  echo $! >"$DATA_DIR/server.pid"
  for _ in $(seq 1 50); do
    [[ -f "$DATA_DIR/admin.key" ]] && grep -q "listening on" "$LOG" && break
    sleep 0.2
  done
fi

say "running the demo"
CLOUDPIPE_ADDRESS="$ADDRESS" CLOUDPIPE_API_KEY="${CLOUDPIPE_API_KEY:-$(cat "$DATA_DIR/admin.key")}" \
  "$VENV/bin/python" "$CLOUDPIPE_ROOT/scripts/demo_jobs.py"

cat <<MSG

Cloudpipe is running on $ADDRESS (pid $(cat "$DATA_DIR/server.pid" 2>/dev/null || echo "?"), log $LOG).
  export CLOUDPIPE_ADDRESS=$ADDRESS CLOUDPIPE_API_KEY=\$(cat $DATA_DIR/admin.key)
  $VENV/bin/cloudpipe submit --wait 'uname -a'
Stop it with: kill \$(cat $DATA_DIR/server.pid)
MSG
