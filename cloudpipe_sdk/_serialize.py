"""How function jobs travel: a cloudpickle of (f, args, kwargs) on stdin, and an
envelope dict written by the runner to the result file.

The runner image (runner_images/python3/cloudpipe_runner.py) is the other half.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

import cloudpickle

from cloudpipe_sdk._errors import InvalidRequest

RUNNER_COMMAND = "python3 -m cloudpipe_runner"
RESULT_PATH = "/tmp/.result"
SERIALIZER = "cloudpickle"
SERIALIZER_VERSION: str = cloudpickle.__version__


def client_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def dump_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """The job's stdin. Raises InvalidRequest when the call cannot be pickled."""
    try:
        return bytes(cloudpickle.dumps((fn, args, kwargs)))
    except Exception as exc:
        raise InvalidRequest(f"cannot serialize the function or its arguments with cloudpickle: {exc}") from exc


def load_envelope(data: bytes, job_id: int) -> dict[str, Any]:
    """Unpickle the runner's envelope and warn when its Python differs from ours."""
    envelope = cloudpickle.loads(data)
    if not isinstance(envelope, dict) or "ok" not in envelope:
        raise ValueError(f"job {job_id}: the result is not a Cloudpipe runner envelope")
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
