"""How function jobs travel: a pickle of (f, args, kwargs) on stdin, made with the job's
serializer, and an envelope dict written by the runner to the result file with the
same serializer.

Serializers: `cloudpickle` (the default) and `dill` (for objects cloudpickle cannot
serialize). The job records its serializer (`JobSpec.serializer`); the runner image has
both, pinned to the same versions as this SDK (runner_images/build.py).
The runner image (runner_images/python3/cloudpipe_runner.py) is the other half.
"""

from __future__ import annotations

import pickle
import sys
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal

import cloudpickle

from cloudpipe_sdk._errors import InvalidRequest, ProtocolError
from cloudpipe_sdk._shipping import ship_local_modules

RUNNER_COMMAND = "python3 -m cloudpipe_runner"
RESULT_PATH = "/tmp/.result"
SERIALIZER = "cloudpickle"  # the default
SERIALIZER_VERSION: str = cloudpickle.__version__
SERIALIZERS = ("cloudpickle", "dill")
DILL_VERSION = "0.4.1"  # the runner image's; this SDK's own dill must match it
SerializerName = Literal["cloudpickle", "dill"]


def client_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def check_serializer(name: str) -> str:
    """The name if it is a serializer the runners have; InvalidRequest otherwise."""
    if name not in SERIALIZERS:
        raise InvalidRequest(f"serializer: {name!r} is not one of {', '.join(SERIALIZERS)}")
    return name


def codec(name: str) -> ModuleType:
    """The module (`dumps`/`loads`) of a serializer; InvalidRequest when not installed."""
    if check_serializer(name) == "cloudpickle":
        pickler: ModuleType = cloudpickle
        return pickler
    try:
        import dill  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        raise InvalidRequest(f"serializer dill is not installed: pip install dill=={DILL_VERSION}") from None
    module: ModuleType = dill
    return module


def version_of(name: str) -> str:
    return str(getattr(codec(name), "__version__", "?"))


def dump_call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], serializer: str = SERIALIZER
) -> bytes:
    """The job's stdin. Raises InvalidRequest when the call cannot be pickled.

    With cloudpickle, the user's own modules the call reaches travel by value
    (`cloudpipe_sdk._shipping`); installed packages must be in the image."""
    module = codec(serializer)
    try:
        if module is cloudpickle:
            ship_local_modules((fn, *args, *kwargs.values()))
            return bytes(module.dumps((fn, args, kwargs)))
        # dill: a function's globals by value (only those it uses), not its module by name
        return bytes(module.dumps((fn, args, kwargs), recurse=True))
    except Exception as exc:
        hint = " (try serializer='dill')" if serializer == "cloudpickle" else ""
        raise InvalidRequest(f"cannot serialize the function or its arguments with {serializer}: {exc}{hint}") from exc


def load_call(data: bytes, serializer: str = "") -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """(fn, args, kwargs) from a function job's stdin, as `dump_call` made it."""
    try:
        fn, args, kwargs = codec(serializer or SERIALIZER).loads(data)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise ProtocolError(f"cannot load the saved call with {serializer or SERIALIZER}: {exc}") from exc
    return fn, tuple(args), dict(kwargs)


def load_envelope(data: bytes, job_id: int, serializer: str = "") -> dict[str, Any]:
    """Unpickle the runner's envelope and warn when its Python differs from ours.
    ProtocolError when the result is not an envelope this SDK can read."""
    try:
        envelope = codec(serializer or SERIALIZER).loads(data)
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise ProtocolError(f"job {job_id}: cannot load its result with {serializer or SERIALIZER}: {exc}") from exc
    if not isinstance(envelope, dict) or "ok" not in envelope:
        raise ProtocolError(f"job {job_id}: the result is not a Cloudpipe runner envelope")
    runner = str(envelope.get("python", ""))
    if runner and ".".join(runner.split(".")[:2]) != client_python():
        warnings.warn(
            f"job {job_id} ran on Python {runner} but this client is Python {client_python()}: "
            "pickled functions and values may not survive the trip; run the client on the runner's "
            "Python, or build a runner image for yours (runner_images/build.py --base-python3 IMAGE)",
            RuntimeWarning,
            stacklevel=3,
        )
    return envelope
