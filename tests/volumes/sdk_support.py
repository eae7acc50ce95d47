"""SDK clients acting as fresh accounts of the volume server (tests/volumes/conftest.py,
anonymous mode); each deletes its account's volumes when it closes."""

from __future__ import annotations

import uuid

from cloudpipe_sdk import Client
from tests.support import ServerProcess


class tenant:  # lower case: used like a function
    """`with tenant(server, "alice") as client:` a Client of a new account."""

    def __init__(self, server: ServerProcess, prefix: str) -> None:
        self.account = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.client = Client(server.address, account=self.account)

    def __enter__(self) -> Client:
        return self.client

    def __exit__(self, *exc_info: object) -> None:
        for volume in self.client.volumes.list():
            self.client.volumes.delete(volume.name, wait=60)  # once ended jobs' containers are gone
        self.client.close()
