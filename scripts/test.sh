#!/usr/bin/env bash
# Run the whole test suite: installs what is missing, starts dockerd, builds the runner
# images, checks generated code, lint and types, then runs every test (Docker and
# PostgreSQL included; the tests start their own throwaway PostgreSQL cluster).
#
#   bash scripts/test.sh [pytest args...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" --with-test-deps
cd "$CLOUDPIPE_ROOT"

say "generated code is fresh"
"$VENV/bin/python" scripts/gen_protos.py --check
say "ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check . >/dev/null || { "$VENV/bin/ruff" format --diff . | head -40; exit 1; }
say "mypy"
"$VENV/bin/mypy"

say "pytest"
set +e
"$VENV/bin/python" -m pytest "$@"
status=$?
set -e
say "test command done in ${SECONDS} s (pytest exit $status)"
if ((status == 5)); then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit $status
