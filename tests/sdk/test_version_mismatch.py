"""A client whose Python the runner image lacks is refused at submit time, with the fix."""

from __future__ import annotations

import pytest

from cloudpipe_sdk import Client, InvalidRequest
from cloudpipe_sdk import _options as options_module

pytestmark = pytest.mark.docker


def test_submit_from_another_python_is_refused_with_the_fix(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(options_module, "client_python", lambda: "3.99")
    with pytest.raises(InvalidRequest) as refused:
        client.submit(abs, -1)
    assert refused.value.code == "FAILED_PRECONDITION"
    message = str(refused.value)
    assert "pickled by Python 3.99" in message and "has Python 3.11" in message
    assert "runner_images/build.py --only python3 --base-python3 python:3.99-slim" in message
    with pytest.raises(InvalidRequest, match="Python version mismatch"):
        list(client.map(abs, [-1, -2]))


def test_shell_jobs_are_not_checked(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(options_module, "client_python", lambda: "3.99")
    assert client.shell("echo fine").result(timeout=60) == b"fine\n"
