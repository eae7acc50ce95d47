"""A gateway with a setting that does not parse does not start: exit status 2 and a
message naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import ROOT


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--listen", "nowhere"], {}, "listen address 'nowhere' is not HOST:PORT"),
        (
            [],
            {"CLOUDPIPE_GATEWAY_MAX_BODY_BYTES": "lots"},
            "CLOUDPIPE_GATEWAY_MAX_BODY_BYTES: cannot parse 'lots' as int",
        ),
        ([], {"CLOUDPIPE_GATEWAY_ACCESS_LOG": "maybe"}, "CLOUDPIPE_GATEWAY_ACCESS_LOG: cannot parse 'maybe' as bool"),
        (["--max-concurrency", "0"], {}, "CLOUDPIPE_GATEWAY_MAX_CONCURRENCY must be positive"),
    ],
)
def test_a_bad_setting_stops_the_gateway_with_status_2(args: list[str], env: dict[str, str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "http_gateway", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr == f"cloudpipe-gateway: {message}\n"
