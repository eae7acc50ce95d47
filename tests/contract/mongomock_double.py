"""mongomock, made fit to stand in for a MongoDB server where none can run.

mongomock is an in-memory double of pymongo, used here only because no MongoDB server
runs on this machine; nothing measured or proven on it says anything about MongoDB
itself. One gap matters to a job store: its writes (find_one_and_update included) read,
then write, with no lock in between, so two threads can both claim one job, which a
server never allows (every single-document write is atomic there); and its deletes find
the matching documents, then remove them one by one, so two threads deleting one document
make the second raise KeyError where a server deletes it once and counts it once.
`atomic_writes()` holds one lock around each write for as long as it is active: it
models that server guarantee and nothing more, so what is tested is the store's own logic.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

WRITES = (
    "find_one_and_update",
    "find_one_and_replace",
    "find_one_and_delete",
    "update_one",
    "update_many",
    "replace_one",
    "insert_many",
    "insert_one",
    "delete_one",
    "delete_many",
)


@contextmanager
def atomic_writes() -> Iterator[None]:
    """Serialise mongomock's collection writes (every client) while the block runs."""
    from mongomock.collection import Collection

    lock = threading.RLock()
    originals: dict[str, Callable[..., Any]] = {name: getattr(Collection, name) for name in WRITES}

    def locking(original: Callable[..., Any]) -> Callable[..., Any]:
        def locked(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return locked

    for name, original in originals.items():
        setattr(Collection, name, locking(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(Collection, name, original)
