"""`RemoteFunction`: what `@client.function(...)` makes of a function."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

from cloudpipe_sdk._job import Job
from cloudpipe_sdk._options import JobOptions

P = ParamSpec("P")
R = TypeVar("R")


class Runner(Protocol):
    """What a remote function needs of a client (a `Client` is one)."""

    address: str

    @property
    def options(self) -> JobOptions: ...

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Job: ...

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], **map_options: Any) -> Iterator[Any]: ...

    def starmap(
        self, fn: Callable[..., Any], iterable: Iterable[Iterable[Any]], **map_options: Any
    ) -> Iterator[Any]: ...

    def with_options(self, **options: Any) -> Runner: ...


class RemoteFunction(Generic[P, R]):
    """A function that runs as Cloudpipe jobs.

    - `f(*args, **kwargs)` calls it here, as if undecorated;
    - `f.remote(*args, **kwargs)` submits one call and returns its `Job` at once
      (`.result()` waits for the value);
    - `f.map(*iterables, ...)` and `f.starmap(iterable, ...)` run many calls, results
      in order (see `Client.map` for chunksize, timeout, return_exceptions, progress);
    - `f.with_options(...)` is the same function with other `JobOptions`.

    When the function's module is your own code (not the standard library or an
    installed package), its code travels by value with every call, with the modules of
    your project it uses, so the runner does not need them installed.

    Example::

        @client.function(memory="2G", retries=1)
        def word_count(text: str) -> int:
            return len(text.split())

        word_count("a b")                          # 2, here
        word_count.remote("a b c").result()        # 3, in a container
        list(word_count.map(["a", "b c"]))         # [1, 2]
    """

    def __init__(self, client: Runner, fn: Callable[P, R]) -> None:
        self._client = client
        self._fn = fn
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._fn(*args, **kwargs)

    def remote(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Submit one call; return its Job."""
        return self._client.submit(self._fn, *args, **kwargs)

    def map(self, *iterables: Iterable[Any], **map_options: Any) -> Iterator[R]:
        """Run one call per item (of the iterables zipped together); results in order."""
        return self._client.map(self._fn, *iterables, **map_options)

    def starmap(self, iterable: Iterable[Iterable[Any]], **map_options: Any) -> Iterator[R]:
        """Run one call per argument tuple; results in order."""
        return self._client.starmap(self._fn, iterable, **map_options)

    def with_options(self, **options: Any) -> RemoteFunction[P, R]:
        """The same function with other job options (e.g. more memory for one call)."""
        return RemoteFunction(self._client.with_options(**options), self._fn)

    def __repr__(self) -> str:
        return f"<RemoteFunction {getattr(self._fn, '__qualname__', self._fn)!r} on {self._client.address}>"
