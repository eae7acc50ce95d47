"""Fixtures of the in-process job tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloudpipe_server.store.sqlite import SqliteJobStore
from cloudpipe_server.store.sqlite.database import SqliteDatabase


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteJobStore]:
    """An empty real SQLite job store in the test's own directory."""
    store = SqliteJobStore(SqliteDatabase(tmp_path / "jobs.db"))
    await store.initialize()
    yield store
    await store.close()
