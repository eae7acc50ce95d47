"""Which user a job's container runs as."""

from __future__ import annotations

import pytest

from cloudpipe_server.executors.container_config import job_user


@pytest.mark.parametrize("image_user", ["1000", "1000:1000", "42:0"])
def test_a_numeric_non_root_image_user_is_kept(image_user: str) -> None:
    assert job_user(image_user, "65534:65534") == image_user


@pytest.mark.parametrize(
    "image_user", ["", "0", "0:0", "00", "root", "toor", "cloudpipe", "1000:staff", " 1000", "\u0661\u0660\u0660\u0660"]
)
def test_root_or_a_name_runs_as_the_configured_user(image_user: str) -> None:
    assert job_user(image_user, "1234:1234") == "1234:1234"


def test_a_configured_user_that_is_not_a_numeric_non_root_uid_is_replaced_by_nobody() -> None:
    assert job_user("root", "nobody") == job_user("", "0:0") == "65534:65534"
