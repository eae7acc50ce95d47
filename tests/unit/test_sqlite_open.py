"""Servers starting together on one new SQLite file: every one of them opens it (the
switch to WAL mode, which SQLite refuses at once while another connection opens the
file, is tried again instead of failing the server's start)."""

from __future__ import annotations

import threading
from pathlib import Path

from cloudpipe_common.sqlite import SqliteDatabase


def test_many_openers_of_one_new_file_all_open_it(tmp_path: Path) -> None:
    for attempt in range(60):  # before the retry, about one round in twenty failed here
        path = tmp_path / f"store-{attempt}.db"
        errors: list[BaseException] = []
        together = threading.Barrier(8)

        def open_it(
            database: SqliteDatabase, together: threading.Barrier = together, errors: list[BaseException] = errors
        ) -> None:
            together.wait()
            try:
                database._open().close()
            except BaseException as exc:
                errors.append(exc)

        openers = [threading.Thread(target=open_it, args=(SqliteDatabase(str(path)),)) for _ in range(8)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(60)
        assert not errors, f"round {attempt}: {errors}"
