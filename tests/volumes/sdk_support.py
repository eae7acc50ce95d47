"""SDK clients acting as fresh accounts of the volume server (tests/volumes/conftest.py,
anonymous mode); each deletes its account's volumes when it closes."""

from __future__ import annotations

import time
import uuid

from cloudpipe_sdk import Client, InvalidRequest
from tests.support import ServerProcess


class tenant:  # noqa: N801: used like a function
    """`with tenant(server, "alice") as client:` a Client of a new account."""

    def __init__(self, server: ServerProcess, prefix: str) -> None:
        self.account = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.client = Client(server.address, account=self.account)

    def __enter__(self) -> Client:
        return self.client

    def __exit__(self, *exc_info: object) -> None:
        for volume in self.client.volumes.list():
            delete_when_free(self.client, volume.name)
        self.client.close()


def delete_when_free(client: Client, name: str, timeout: float = 60) -> None:
    """Delete a volume once no job's container holds it (containers of ended jobs are
    removed in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.volumes.delete(name)
            return
        except InvalidRequest as exc:
            if exc.code != "FAILED_PRECONDITION" or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
