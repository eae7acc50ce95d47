"""Cloudpipe job bootstrap for the Python 3 runner image.

Run as ``python3 -m cloudpipe_runner`` with the job on stdin.

Contract:

* stdin holds a pickle of the tuple ``(f, args, kwargs)`` made with the job's
  serializer, ``$CLOUDPIPE_SERIALIZER``: ``cloudpickle`` (the default) or ``dill``;
* ``f(*args, **kwargs)`` is called;
* a pickle of an *envelope* dict, made with the same serializer, is written atomically to
  ``$CLOUDPIPE_RESULT_PATH`` (default ``/tmp/.result``)::

      {"ok": True, "value": <result>, "python": "3.11.2"}
      {"ok": False, "exc": <exception or None>, "exc_type": "module.QualName",
       "exc_repr": "...", "traceback": "...", "python": "3.11.2"}

  ``exc`` is None when the exception does not survive a pickle round trip. When the job
  failed because a module is missing in this image (the payload, or the call, raised
  ``ModuleNotFoundError``), the failure envelope also has ``"missing_module": "<name>"``
  and ``exc`` is a ``ModuleNotFoundError`` whose ``name`` is that module;
* exit status 0 on success; on failure the traceback also goes to stderr
  and the exit status is 1.

``$CLOUDPIPE_RETRIES`` (default 0): call ``f`` again up to that many times when it
raises an Exception, pausing 1, 2, 4... seconds (at most 30) in between.

Optional environment: ``CLOUDPIPE_CLIENT_PYTHON`` (client ``major.minor``;
a mismatch is warned about on stderr) and ``CLOUDPIPE_CLIENT_CLOUDPICKLE``
(client cloudpickle version, quoted when the payload cannot be unpickled).
"""

from __future__ import annotations

import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import cloudpickle

SERIALIZERS = ("cloudpickle", "dill")
DEFAULT_RESULT_PATH = "/tmp/.result"
RUNNER_PYTHON = "{}.{}".format(*sys.version_info[:2])


def qualified_name(cls: type) -> str:
    """Return ``module.QualName`` of ``cls``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def codec() -> Any:
    """The serializer module named by ``$CLOUDPIPE_SERIALIZER`` (``dumps``/``loads``)."""
    name = os.environ.get("CLOUDPIPE_SERIALIZER") or "cloudpickle"
    if name == "dill":
        import dill

        return dill
    if name != "cloudpickle":
        raise RuntimeError(f"unknown serializer {name!r}; this runner has {', '.join(SERIALIZERS)}")
    return cloudpickle


def dumps(obj: Any) -> bytes:
    """Pickle with the job's serializer (dill: only the globals a function uses, so
    functions of modules the client has do not need those modules)."""
    module = codec()
    if module is cloudpickle:
        return bytes(module.dumps(obj))
    return bytes(module.dumps(obj, recurse=True))


def portable_exception(exc: BaseException) -> BaseException | None:
    """Return ``exc`` if it survives a pickle round trip, else None."""
    try:
        codec().loads(dumps(exc))
    except Exception:
        return None
    return exc


def failure(exc: BaseException, text: str) -> dict[str, Any]:
    """Build the failure envelope for ``exc`` with traceback ``text``."""
    envelope = {
        "ok": False,
        "exc": portable_exception(exc),
        "exc_type": qualified_name(type(exc)),
        "exc_repr": repr(exc),
        "traceback": text,
        "python": platform.python_version(),
    }
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        envelope["missing_module"] = exc.name
    return envelope


def format_exc(exc: BaseException, skip_frames: int = 0) -> str:
    """Format ``exc`` with its traceback, dropping the first ``skip_frames`` frames."""
    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def warn_on_version_mismatch() -> None:
    """Warn on stderr if the client's Python differs from the runner's."""
    client = os.environ.get("CLOUDPIPE_CLIENT_PYTHON")
    if client and client != RUNNER_PYTHON:
        print(
            f"cloudpipe: warning: job pickled with Python {client} but the runner has "
            f"Python {RUNNER_PYTHON}; functions and objects may not transfer correctly",
            file=sys.stderr,
        )


def missing_module_error(exc: ModuleNotFoundError) -> ModuleNotFoundError:
    """The error for a payload that needs a module this image lacks: a
    ``ModuleNotFoundError`` (so it pickles with its ``name``) saying what to do."""
    name = exc.name or "?"
    top = name.partition(".")[0]
    return ModuleNotFoundError(
        f"cannot unpickle the job payload: module {name!r} is not installed in this runner image "
        f"(runner: Python {platform.python_version()}). If it is an installed package, run the job "
        f"in an image that has it (a Dockerfile FROM cloudpipe/runner-python3 that installs {top!r}, "
        f"then image=...); if it is your own code, make it importable where you submit from, "
        f"so that it travels by value",
        name=name,
    )


def load_job(payload: bytes) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """Unpickle the ``(f, args, kwargs)`` payload.

    Raises ModuleNotFoundError (``missing_module_error``) when the payload needs a module
    this image lacks; otherwise RuntimeError naming both sides' Python and cloudpickle
    versions, since a mismatch between them is the usual cause of failure here.
    """
    try:
        f, args, kwargs = codec().loads(payload)
    except ModuleNotFoundError as exc:
        raise missing_module_error(exc) from exc
    except Exception as exc:
        client_python = os.environ.get("CLOUDPIPE_CLIENT_PYTHON", "unknown")
        client_cloudpickle = os.environ.get("CLOUDPIPE_CLIENT_CLOUDPICKLE", "unknown")
        raise RuntimeError(
            f"cannot unpickle the job payload ({qualified_name(type(exc))}: {exc}); "
            f"client: Python {client_python}, cloudpickle {client_cloudpickle}; "
            f"runner: Python {platform.python_version()}, cloudpickle {cloudpickle.__version__}, "
            f"serializer {os.environ.get('CLOUDPIPE_SERIALIZER') or 'cloudpickle'}"
        ) from exc
    return f, args, kwargs


def run(payload: bytes) -> dict[str, Any]:
    """Execute the pickled job and return its envelope."""
    try:
        f, args, kwargs = load_job(payload)
    except (RuntimeError, ModuleNotFoundError) as exc:
        return failure(exc, format_exc(exc))
    try:
        value = call_with_retries(f, args, kwargs)
    except BaseException as exc:  # the job's SystemExit etc. are job failures too
        return failure(exc, format_exc(exc, skip_frames=2))
    return {"ok": True, "value": value, "python": platform.python_version()}


def call_with_retries(f: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call ``f``; when it raises an Exception, call it again up to ``$CLOUDPIPE_RETRIES``
    more times, pausing 1, 2, 4... seconds (at most 30) in between."""
    retries = int(os.environ.get("CLOUDPIPE_RETRIES") or 0)
    attempt = 0
    while True:
        try:
            return f(*args, **kwargs)
        except Exception as exc:
            if attempt >= retries:
                raise
            delay = min(2**attempt, 30)
            attempt += 1
            print(
                f"cloudpipe: attempt {attempt} of {retries + 1} raised {qualified_name(type(exc))}: {exc};"
                f" retrying in {delay} s",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(delay)


def serialize(envelope: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """Pickle ``envelope``; if that fails, pickle a failure describing why.

    Returns the bytes and the envelope they actually contain.
    """
    try:
        return dumps(envelope), envelope
    except Exception as exc:
        what = "return value" if envelope["ok"] else "exception"
        error = RuntimeError(f"cannot pickle the job's {what}: {qualified_name(type(exc))}: {exc}")
        error.__cause__ = exc
        text = format_exc(error)
        if not envelope["ok"]:
            text = envelope["traceback"] + "\n" + text
        fallback = failure(error, text)
        return dumps(fallback), fallback


def write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename."""
    tmp_path = f"{path}.tmp.{os.getpid()}"
    with open(tmp_path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp_path, path)


def flush_std_streams() -> None:
    """Flush the job's stdout/stderr (and the originals, if it replaced them)."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass  # closed or broken by the job; nothing left to save


def main() -> int:
    """Run one job from stdin; return the process exit status."""
    result_path = os.path.abspath(os.environ.get("CLOUDPIPE_RESULT_PATH") or DEFAULT_RESULT_PATH)
    warn_on_version_mismatch()
    payload = sys.stdin.buffer.read()
    data, envelope = serialize(run(payload))
    write_atomically(result_path, data)
    flush_std_streams()
    if envelope["ok"]:
        return 0
    stderr = sys.__stderr__ or sys.stderr  # the process's stderr even if the job swapped it
    stderr.write(envelope["traceback"])
    stderr.flush()
    return 1


if __name__ == "__main__":
    sys.exit(main())
