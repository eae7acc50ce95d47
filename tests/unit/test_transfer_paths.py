"""Container paths of inputs and outputs, checked at submit: a path starting with "//"
(which posixpath.normpath keeps) is refused, so it cannot slip past the other rules."""

from __future__ import annotations

import pytest

from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.models import JobSpec
from cloudpipe_server.transfers.urls import check_transfers

URL = "https://example.org/f"
S3 = "s3://bucket/key"


@pytest.mark.parametrize(
    "spec",
    [
        JobSpec(cmd="true", inputs={"//proc/x": URL}),
        JobSpec(cmd="true", inputs={"//data/x": URL}, volumes=("vol:/data",)),
        JobSpec(cmd="true", inputs={"/in/a": URL, "//in/a": URL}),
        JobSpec(cmd="true", outputs={"//run/": "s3://bucket/out/"}, secrets=("TOKEN:/run/token",), storage_secret="S3"),
        JobSpec(cmd="true", outputs={"//out/f": S3}, storage_secret="S3"),
    ],
    ids=["reserved-dir", "volume", "duplicate-input", "secret-in-output-dir", "output-file"],
)
def test_a_path_starting_with_two_slashes_is_refused(spec: JobSpec) -> None:
    with pytest.raises(InvalidArgument, match="starts with one '/', not '//'"):
        check_transfers(spec, "jobs[0]")


def test_a_path_with_one_slash_still_passes() -> None:
    check_transfers(
        JobSpec(cmd="true", inputs={"/in/a": URL}, outputs={"/out/": "s3://bucket/o/"}, storage_secret="S3"), "jobs[0]"
    )
