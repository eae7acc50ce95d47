"""Durable storage of jobs, schedules and secrets: the contracts (`base`), one package per
backend (`sqlite/`, `postgres/`, `mongodb/`, each with the same modules), the logic they
share (`_shared`) and `open_stores(url)`, the one URL -> backend registry. README.md says
what a new backend writes."""

from __future__ import annotations

from cloudpipe_server.store._shared import from_ns, to_ns
from cloudpipe_server.store.base import (
    AccountQuota,
    JobStore,
    QuotaStore,
    ScheduleStore,
    SecretStore,
    StoredSecret,
    Stores,
)
from cloudpipe_server.store.registry import open_stores

# from_ns/to_ns: the int64-nanosecond time codec of every stored format (the auth
# service's account store stores its times the same way).
__all__ = [
    "AccountQuota",
    "JobStore",
    "QuotaStore",
    "ScheduleStore",
    "SecretStore",
    "StoredSecret",
    "Stores",
    "from_ns",
    "open_stores",
    "to_ns",
]
