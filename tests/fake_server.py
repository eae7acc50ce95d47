"""`python -m tests.fake_server`: `cloudpipe-server` with the fake executor (a double:
no Docker engine; cloudpipe_server/executors/fake.py says what it runs). Everything else
is the real program: settings, store, auth, gRPC over a socket, SIGTERM shutdown.

Tests that run no container use it (`tests.support.start_server(..., fake=True)`), so
`pytest -m "not docker"` needs no engine; the `docker`-marked tests keep the real one.
The fake knows no image labels, so submit-time runner checks are skipped, as for an
image the engine has not pulled yet."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from cloudpipe_server.__main__ import main
from cloudpipe_server.config import Settings
from cloudpipe_server.executors.fake import FakeExecutor


def fake_executor(settings: Settings) -> FakeExecutor:
    return FakeExecutor(lambda: datetime.now(UTC), owner=settings.server_id or "fake")


if __name__ == "__main__":
    sys.exit(main(executor=fake_executor))
