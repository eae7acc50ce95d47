"""`client.secrets`: your account's secrets (named values, stored encrypted by the
server, that jobs ask for by name: `secrets=["API_TOKEN"]`). `Secrets` for `Client`,
`AsyncSecrets` for `AsyncClient`; requests are made in `cloudpipe_sdk._secret_calls`.

Only names and times ever come back: no call returns a value, and the SDK never logs
one. Another account's secret is NotFound, like a missing one. See docs/secrets.md for
how the server keeps them (the key file, rotation).

Example::

    client.secrets.set("API_TOKEN", token)                  # creates or replaces
    client.shell('curl -H "Authorization: Bearer $API_TOKEN" ...', secrets=["API_TOKEN"])
    client.shell("psql ...", secrets={"DB_PASSWORD": "/run/secrets/db"})   # as a 0400 file
    client.secrets.list()                                   # [Secret("API_TOKEN", ...)]
    client.secrets.delete("API_TOKEN")
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from cloudpipe_sdk import _secret_calls as calls
from cloudpipe_sdk._types import Secret

if TYPE_CHECKING:
    from cloudpipe_sdk._transport import AsyncTransport, Transport


class Secrets:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def set(self, name: str, value: str | bytes) -> Secret:
        """Create the secret `name` or replace its value (text is stored as UTF-8;
        bytes as they are, at most 64 KiB). Names are letters, digits and '_', not
        starting with a digit, at most 128: a job's environment variable is named like
        its secret. InvalidRequest for a bad name or value; ResourceExhausted past the
        server's count per account. A job given the secret as an environment variable
        needs UTF-8 text without NUL; a file takes any bytes.

        Example::

            client.secrets.set("API_TOKEN", os.environ["MY_TOKEN"])
            client.secrets.set("TLS_KEY", Path("server.key").read_bytes())
        """
        return self._transport.call(calls.set_secret(name, value))

    def list(self) -> builtins.list[Secret]:
        """Your secrets, by name, with when each was made and last set (no values)."""
        return self._transport.call(calls.list_secrets())

    def delete(self, name: str) -> None:
        """Delete a secret (NotFound if you have none of that name). A job submitted
        with it that has not started yet fails when it would start."""
        self._transport.call(calls.delete_secret(name))


class AsyncSecrets:
    """As `Secrets`, awaited."""

    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def set(self, name: str, value: str | bytes) -> Secret:
        return await self._transport.call(calls.set_secret(name, value))

    async def list(self) -> builtins.list[Secret]:
        return await self._transport.call(calls.list_secrets())

    async def delete(self, name: str) -> None:
        await self._transport.call(calls.delete_secret(name))
