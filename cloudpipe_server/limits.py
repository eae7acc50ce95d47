"""Bounds on what one request may carry, checked at the edge before any work is done
for it: counts and total sizes of a request first (before its jobs are converted),
then each job's sizes and numeric ranges (before it is stored, so the executor never
sees a value it cannot take). Each refusal names the field, as `field: why`.

Sizes are UTF-8 bytes. The command and environment bounds come from Linux's execve:
one argument or `NAME=value` string may be at most MAX_ARG_STRLEN (32 pages, 131072
bytes with its NUL), and all of them together must fit ARG_MAX (2 MiB by default),
which the image's own environment shares.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta

from cloudpipe_common.limits import MAX_JOBS_PER_SUBMIT, MAX_STDIN_BYTES
from cloudpipe_server.errors import InvalidArgument, ResourceExhausted
from cloudpipe_server.models import JobSpec
from cloudpipe_server.secrets.naming import parse_uses
from cloudpipe_server.transfers.urls import check_transfers
from cloudpipe_server.volumes.naming import parse_mounts

MAX_SUBMIT_BYTES = 128 << 20  # one Submit request, serialized
MAX_ARG_BYTES = 131_071  # the command, and each NAME=value of the environment
MAX_EXEC_BYTES = 1 << 20  # the command plus the whole environment
MAX_TEXT_BYTES = 1024  # name, image, result_source, idempotency key, each volume, ...
MAX_TAGS_BYTES = 64 << 10  # all tag keys and values of one job
MAX_VOLUMES = 64
MAX_DEPENDENCIES = 10_000
MAX_IDS_PER_QUERY = 10_000  # ids or names one List may filter on
MAX_CPUS = 1024.0
MIN_MEMORY_BYTES = 6 << 20  # Docker refuses less
MAX_MEMORY_BYTES = 1 << 44  # 16 TiB
MAX_PIDS = 1 << 22  # Linux's largest pid_max
MAX_RUNTIME = timedelta(days=366)


def check_submit_size(count: int, size: int) -> None:
    """Raise ResourceExhausted when a Submit of `count` jobs, `size` bytes serialized,
    is larger than one request may be."""
    if count > MAX_JOBS_PER_SUBMIT:
        raise ResourceExhausted(f"jobs: at most {MAX_JOBS_PER_SUBMIT} jobs per submit, got {count}")
    if size > MAX_SUBMIT_BYTES:
        raise ResourceExhausted(
            f"jobs: at most {MAX_SUBMIT_BYTES} bytes per submit, got {size}; submit large batches in several requests"
        )


def check_query_size(ids: int, names: int) -> None:
    if ids > MAX_IDS_PER_QUERY:
        raise InvalidArgument(f"ids: at most {MAX_IDS_PER_QUERY} ids per query, got {ids}")
    if names > MAX_IDS_PER_QUERY:
        raise InvalidArgument(f"names: at most {MAX_IDS_PER_QUERY} names per query, got {names}")


def check_spec_bounds(spec: JobSpec, where: str) -> None:
    """Raise InvalidArgument, naming the field, when a size or number of `spec` is out
    of range."""
    _check_exec(spec, where)
    if len(spec.stdin) > MAX_STDIN_BYTES:
        raise InvalidArgument(f"{where}.stdin: at most {MAX_STDIN_BYTES} bytes, got {len(spec.stdin)}")
    texts = {
        "name": spec.name,
        "image": spec.image,
        "result_source": spec.result_source,
        "idempotency_key": spec.idempotency_key,
        "core": spec.core,
        "serializer": spec.serializer,
        "client_python": spec.client_python,
    }
    for field, text in texts.items():
        _check_text(text, f"{where}.{field}")
    if _total(spec.tags.items()) > MAX_TAGS_BYTES:
        raise InvalidArgument(f"{where}.tags: at most {MAX_TAGS_BYTES} bytes of keys and values in all")
    if len(spec.volumes) > MAX_VOLUMES:
        raise InvalidArgument(f"{where}.volumes: at most {MAX_VOLUMES} volumes, got {len(spec.volumes)}")
    for volume in spec.volumes:
        _check_text(volume, f"{where}.volumes")
    parse_mounts(spec.volumes, where)
    if len(spec.secrets) > MAX_VOLUMES:
        raise InvalidArgument(f"{where}.secrets: at most {MAX_VOLUMES} secrets, got {len(spec.secrets)}")
    for secret in spec.secrets:
        _check_text(secret, f"{where}.secrets")
    parse_uses(spec.secrets, spec.env, where)
    check_transfers(spec, where)
    if len(spec.depends_on) > MAX_DEPENDENCIES:
        raise InvalidArgument(f"{where}.depends_on: at most {MAX_DEPENDENCIES} jobs, got {len(spec.depends_on)}")
    _check_numbers(spec, where)


def _check_exec(spec: JobSpec, where: str) -> None:
    cmd_bytes = len(spec.cmd.encode())
    if cmd_bytes > MAX_ARG_BYTES:
        raise InvalidArgument(
            f"{where}.cmd: at most {MAX_ARG_BYTES} bytes (Linux's limit for one argument), got {cmd_bytes};"
            " pass large input through stdin or a file"
        )
    total = cmd_bytes
    for name, value in spec.env.items():
        entry = len(name.encode()) + 1 + len(value.encode())
        if entry > MAX_ARG_BYTES:
            raise InvalidArgument(
                f"{where}.env: {name[:64]!r} is {entry} bytes as NAME=value; Linux allows at most {MAX_ARG_BYTES}"
            )
        total += entry
    if total > MAX_EXEC_BYTES:
        raise InvalidArgument(
            f"{where}.env: the command and environment are {total} bytes together; at most {MAX_EXEC_BYTES} fit"
        )


def _check_numbers(spec: JobSpec, where: str) -> None:
    resources = spec.resources
    if not (math.isfinite(resources.cpus) and 0 <= resources.cpus <= MAX_CPUS):
        raise InvalidArgument(
            f"{where}.resources.cpus: must be a number of cores from 0 (the default) to {MAX_CPUS:g},"
            f" got {resources.cpus}"
        )
    memory = resources.memory_bytes
    if memory != 0 and not MIN_MEMORY_BYTES <= memory <= MAX_MEMORY_BYTES:
        raise InvalidArgument(
            f"{where}.resources.memory_bytes: must be 0 (the default) or from {MIN_MEMORY_BYTES}"
            f" (Docker needs at least 6 MiB) to {MAX_MEMORY_BYTES}, got {memory}"
        )
    if not 0 <= resources.pids <= MAX_PIDS:
        raise InvalidArgument(
            f"{where}.resources.pids: must be from 0 (the default) to {MAX_PIDS}, got {resources.pids}"
        )
    runtime = spec.max_runtime
    if runtime is not None and not timedelta(0) <= runtime <= MAX_RUNTIME:
        raise InvalidArgument(
            f"{where}.max_runtime: must be from 0 (the default) to {MAX_RUNTIME.days} days,"
            f" got {runtime.total_seconds():g} s"
        )


def _check_text(text: str, field: str) -> None:
    size = len(text.encode())
    if size > MAX_TEXT_BYTES:
        raise InvalidArgument(f"{field}: at most {MAX_TEXT_BYTES} bytes, got {size}")


def _total(items: Iterable[tuple[str, str]]) -> int:
    return sum(len(key.encode()) + len(value.encode()) for key, value in items)
