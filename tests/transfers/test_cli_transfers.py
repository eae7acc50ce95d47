"""`cloudpipe submit --input/--output/--storage-secret` and `cloudpipe show`, as a user
types them, against a real server and S3-compatible store."""

from __future__ import annotations

import io
import json

import pytest

from cloudpipe_sdk import Client
from tests.cli.support import cloudpipe
from tests.support import ServerProcess
from tests.transfers.seaweed import S3Server

pytestmark = pytest.mark.docker


def test_submit_with_inputs_and_outputs_and_show_lists_them(
    transfer_server: ServerProcess, client: Client, s3_server: S3Server, bucket: str
) -> None:
    s3_server.client().put_object(bucket, "words.txt", io.BytesIO(b"pear\nfig\n"), 9)
    done = cloudpipe(
        transfer_server,
        "submit",
        "--wait",
        "--storage-secret",
        "S3",
        "--input",
        f"/in/words.txt=s3://{bucket}/words.txt",
        "--output",
        f"/out/=s3://{bucket}/cli/",
        "sort /in/words.txt | tee /out/sorted.txt",
    )
    assert (done.exit_code, done.stdout) == (0, "fig\npear\n"), done.stderr
    response = s3_server.client().get_object(bucket, "cli/sorted.txt")
    assert response.read() == b"fig\npear\n"
    response.close()
    job_id = str(client.list()[0].id)
    shown = cloudpipe(transfer_server, "show", job_id)
    assert shown.exit_code == 0, shown.stderr
    assert f"inputs:\n  /in/words.txt <- s3://{bucket}/words.txt\n" in shown.stdout
    assert f"outputs:\n  /out/ -> s3://{bucket}/cli/\n" in shown.stdout
    assert "storage_secret: S3\n" in shown.stdout
    as_json = json.loads(cloudpipe(transfer_server, "show", "--json", job_id).stdout)
    assert as_json["inputs"] == {"/in/words.txt": f"s3://{bucket}/words.txt"}
    assert as_json["outputs"] == {"/out/": f"s3://{bucket}/cli/"}


def test_bad_transfer_flags_are_usage_errors(transfer_server: ServerProcess) -> None:
    bad = cloudpipe(transfer_server, "submit", "--input", "/in/a", "true")
    assert bad.exit_code == 2 and "--input: expected /PATH=URL" in bad.stderr, bad.stderr
    no_secret = cloudpipe(transfer_server, "submit", "--input", "/in/a=s3://bucket/a", "true")
    assert no_secret.exit_code == 2 and "storage_secret: s3:// URLs need" in no_secret.stderr, no_secret.stderr
