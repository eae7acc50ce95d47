"""The SQLite backend's database: the one connection shared by its job store, its
schedule store and its secret store. The class lives in `cloudpipe_common.sqlite`
because the auth service's account store uses it too, and the auth service must not
import the server."""

from __future__ import annotations

from cloudpipe_common.sqlite import SqliteDatabase

__all__ = ["SqliteDatabase"]
