"""`BaseClient`: what `Client` and `AsyncClient` share, the way httpx's clients share
theirs: settings resolution, `with_options` views, and building every job spec and
request. The two clients differ only in how they do I/O (their transports).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, Generic, Protocol, TypeVar

from cloudpipe_sdk._config import ClientConfig, resolve_config
from cloudpipe_sdk._errors import InvalidRequest
from cloudpipe_sdk._image import Image
from cloudpipe_sdk._mapping import MapPlan
from cloudpipe_sdk._options import JobOptions, qualname
from cloudpipe_sdk._progress import wanted
from cloudpipe_sdk._serialize import check_serializer
from cloudpipe_sdk._types import JobSpec

TransportT = TypeVar("TransportT")
Self = TypeVar("Self", bound="BaseClient[Any]")


class HasId(Protocol):
    @property
    def id(self) -> int: ...


class BaseClient(Generic[TransportT]):
    """Settings come from the arguments, then the environment (`CLOUDPIPE_ADDRESS`,
    `CLOUDPIPE_API_KEY`, `CLOUDPIPE_ACCOUNT`, `CLOUDPIPE_TLS_CA`, `CLOUDPIPE_SERIALIZER`),
    then a profile of `~/.config/cloudpipe/config.toml` (`profile`, or
    `CLOUDPIPE_PROFILE`), then defaults (localhost:50051); see `Client`."""

    config: ClientConfig
    transport: TransportT
    options: JobOptions

    def __init__(
        self,
        address: str | None = None,
        *,
        api_key: str | None = None,
        account: str | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        profile: str | None = None,
        serializer: str | None = None,
        rpc_timeout: float | None = None,
        retry_for: float | None = None,
        channel: Any = None,
    ) -> None:
        config = resolve_config(
            profile=profile,
            address=address,
            api_key=api_key,
            account=account,
            tls_ca=tls_ca,
            serializer=serializer,
            rpc_timeout=rpc_timeout,
            retry_for=retry_for,
        )
        transport = self._open(config, channel)
        options = JobOptions(serializer=check_serializer(config.serializer), _resolve=self._references(transport))
        self._setup(config, transport, options, owner=True)

    def _references(self, transport: TransportT) -> Callable[[Image], str]:
        """What names an Image for this client's jobs (building it)."""
        raise NotImplementedError

    def _open(self, config: ClientConfig, channel: Any) -> TransportT:
        raise NotImplementedError

    def _setup(self, config: ClientConfig, transport: TransportT, options: JobOptions, *, owner: bool) -> None:
        self.config = config
        self.address = config.address
        self.transport = transport
        self.options = options
        self._owner = owner

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address}>"

    def with_options(self: Self, **options: Any) -> Self:
        """A view of this client (same connection, not closed by the view) whose jobs
        use these `JobOptions`: image, cpus, memory, timeout, retries, serializer, env,
        name, tags, network, restartable, fresh_container, volumes, secrets,
        inputs, outputs, storage_secret.

        Example::

            big = client.with_options(cpus=4, memory="8G", serializer="dill")
            big.submit(train, data).result()
        """
        view = object.__new__(type(self))
        view._setup(self.config, self.transport, self.options.merged(**options), owner=False)
        return view

    # -- spec building -----------------------------------------------------------------

    def _shell_spec(
        self,
        cmd: str,
        *,
        stdin: bytes | str | None,
        result_source: str,
        interactive: bool,
        tty: bool = False,
        depends_on: Sequence[HasId | int],
        options: dict[str, Any],
    ) -> JobSpec:
        return self.options.merged(**options).shell_spec(
            cmd,
            stdin=stdin,
            result_source=result_source,
            interactive=interactive,
            tty=tty,
            depends_on=[dep if isinstance(dep, int) else dep.id for dep in depends_on],
        )

    def _function_spec(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> JobSpec:
        return self.options.function_spec(fn, args, kwargs)

    def _map_plan(
        self,
        fn: Callable[..., Any],
        calls: Sequence[tuple[Any, ...]],
        chunksize: int | None,
        timeout: float | None,
        return_exceptions: bool,
        progress: bool | None,
        options: dict[str, Any],
    ) -> MapPlan:
        """The specs of a map: one per call, or per chunk of `chunksize` calls (run as
        `list(map(fn, ...))` in the runner); and how to collect their results."""
        deadline = None if timeout is None else time.monotonic() + timeout
        size = chunksize or 1
        if size < 1:
            raise InvalidRequest(f"chunksize: must be at least 1, got {chunksize}")
        job_options = self.options.merged(**options)
        chunks = [calls[start : start + size] for start in range(0, len(calls), size)]
        if size == 1:
            specs = [job_options.function_spec(fn, chunk[0], {}) for chunk in chunks]
        else:
            specs = []
            for chunk in chunks:
                spec = job_options.function_spec(list, (map(fn, *_columns(chunk)),), {})
                specs.append(replace(spec, tags={**spec.tags, "function": qualname(fn)}))
        return MapPlan(
            specs,
            [len(chunk) for chunk in chunks],
            chunked=size > 1,
            return_exceptions=return_exceptions,
            deadline=deadline,
            timeout=timeout,
            show_progress=wanted(progress, sys.stderr),
        )


def zipped(iterables: Sequence[Iterable[Any]]) -> list[tuple[Any, ...]]:
    """The calls of `map(fn, *iterables)`."""
    return list(zip(*iterables, strict=False))


def starred(iterable: Iterable[Iterable[Any]]) -> list[tuple[Any, ...]]:
    """The calls of `starmap(fn, iterable)`."""
    return [tuple(args) for args in iterable]


def _columns(chunk: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    if len({len(args) for args in chunk}) != 1 or not chunk[0]:
        raise InvalidRequest("chunksize > 1 needs calls with the same number (at least one) of arguments")
    return list(zip(*chunk, strict=True))
