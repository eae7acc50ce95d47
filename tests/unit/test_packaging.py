"""The shape of what we ship: generated code is fresh, the SDK's public names are curated."""

from __future__ import annotations

import subprocess
import sys

import cloudpipe_sdk
from tests.support import ROOT


def test_generated_protobuf_code_is_not_stale() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_sdk_exports_exactly_its_public_api() -> None:
    # in a new interpreter: here, other tests' imports of submodules (cloudpipe_sdk.cli_*)
    # have added them to the package's names
    names = subprocess.run(
        [sys.executable, "-c", "import cloudpipe_sdk; print(' '.join(dir(cloudpipe_sdk)))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    public = {name for name in names if not name.startswith("_")}
    assert set(cloudpipe_sdk.__all__) == public - {"annotations"}
    assert sorted(cloudpipe_sdk.__all__) == cloudpipe_sdk.__all__


def test_the_sdk_and_the_server_agree_on_the_largest_message() -> None:
    from cloudpipe_common.limits import MAX_MESSAGE_BYTES as SERVER
    from cloudpipe_sdk._channel import MAX_MESSAGE_BYTES as SDK

    assert SDK == SERVER
