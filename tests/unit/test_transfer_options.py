"""`inputs=`, `outputs=` and `storage_secret=` as job options: they reach every spec the
client builds (shell, submit, inline schedule jobs, `cloudpipe apply` tables) and the
wire unchanged; a wrong shape, a scheme the server does not take, or an s3:// URL
without a storage secret is refused here, before anything is sent."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from cloudpipe_sdk import Client, InvalidRequest, JobOptions
from cloudpipe_sdk._apply import _job_spec
from cloudpipe_sdk._convert import spec_from_pb, spec_to_pb
from cloudpipe_sdk._schedule_calls import inline_job

INPUTS = {"/in/a.csv": "s3://bucket/a.csv", "/in/page.html": "https://example.org/page.html"}
OUTPUTS = {"/out/": "s3://bucket/runs/1/"}


@pytest.fixture
def client() -> Iterator[Client]:
    with Client("127.0.0.1:1", retry_for=0.1) as made:  # never connects: specs only
        yield made


def test_inputs_and_outputs_reach_every_spec_and_the_wire(client: Client) -> None:
    options = JobOptions(inputs=INPUTS, outputs=OUTPUTS, storage_secret="S3")
    spec = options.shell_spec("true")
    assert (dict(spec.inputs), dict(spec.outputs), spec.storage_secret) == (INPUTS, OUTPUTS, "S3")
    assert spec_from_pb(spec_to_pb(spec)) == spec
    function = client.with_options(inputs=INPUTS, storage_secret="S3").options.function_spec(abs, (-1,), {})
    assert dict(function.inputs) == INPUTS
    scheduled = inline_job(client.options, {"cmd": "date", "outputs": OUTPUTS, "storage_secret": "S3"})
    assert dict(scheduled["job"].outputs) == OUTPUTS
    applied = _job_spec({"cmd": "true", "inputs": INPUTS, "storage_secret": "S3"}, "saved_jobs.x")
    assert dict(applied.inputs) == INPUTS and applied.storage_secret == "S3"
    http_only = JobOptions(inputs={"/in/p": "http://example.org/p"}).shell_spec("true")
    assert http_only.storage_secret == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"inputs": ["s3://bucket/a"]}, "a mapping of container path to URL"),
        ({"inputs": {"in/a": "https://example.org/a"}}, "is absolute"),
        ({"inputs": {"/in/a": "ftp://example.org/a"}}, "inputs are s3:// or http:// or https:// URLs"),
        ({"outputs": {"/out/a": "https://example.org/a"}}, "outputs are s3:// URLs"),
        ({"inputs": {"/in/a": "s3://bucket/a"}}, "storage_secret: s3:// URLs need"),
        ({"inputs": {"/in/a": "s3://bucket/a"}, "storage_secret": "bad-name"}, "not a secret name"),
    ],
)
def test_bad_transfer_options_are_refused_before_sending(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        JobOptions(**options)


def test_an_apply_table_of_non_strings_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=re.escape('saved_jobs.x.inputs: expected a table of "/path" = "URL"')):
        _job_spec({"cmd": "true", "inputs": {"/in/a": 7}}, "saved_jobs.x")
