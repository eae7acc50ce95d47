"""Inputs and outputs of jobs on a real server, the real engine, a real S3-compatible
server (SeaweedFS) and a local HTTP server: inputs arrive before the job starts, owned
by its user; outputs land in the bucket (one file, a directory under a prefix) once the
job ended DONE; every failure (a missing key, bad credentials, an unreachable
endpoint, an input over the limit) ends the job ERROR with a reason naming the path and
the URL, and the server keeps running jobs; loopback is refused by default."""

from __future__ import annotations

import io
import json
import time

import grpc
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as jpb
from cloudpipe_proto.v1 import jobs_pb2_grpc as jpb_grpc
from cloudpipe_sdk import Client, JobStatus, NotFound
from tests.support import ServerProcess, free_port
from tests.transfers.conftest import (
    INPUT_MAX_BYTES,
    OUTPUT_MAX_BYTES,
    SLOW_SECONDS,
    TRANSFER_DEADLINE,
    TRICKLE_BYTES,
    HttpFiles,
)
from tests.transfers.seaweed import S3Server

pytestmark = pytest.mark.docker


def put(s3: S3Server, bucket: str, key: str, data: bytes) -> None:
    s3.client().put_object(bucket, key, io.BytesIO(data), len(data))


def objects(s3: S3Server, bucket: str, prefix: str = "") -> dict[str, bytes]:
    client = s3.client()
    found = {}
    for item in client.list_objects(bucket, prefix=prefix, recursive=True):
        response = client.get_object(bucket, item.object_name)
        try:
            found[str(item.object_name)] = response.read()
        finally:
            response.close()
            response.release_conn()
    return found


def test_inputs_arrive_owned_by_the_job_user(
    client: Client, s3_server: S3Server, bucket: str, http_files: HttpFiles
) -> None:
    put(s3_server, bucket, "data/in.csv", b"a,b\n1,2\n")
    (http_files.root / "page.html").write_bytes(b"<p>hello</p>\n")
    job = client.shell(
        "stat -c '%u %a' /in/data.csv /in/page.html && cat /in/data.csv /in/page.html && id -u",
        inputs={"/in/data.csv": f"s3://{bucket}/data/in.csv", "/in/page.html": f"{http_files.url}/page.html"},
        storage_secret="S3",
    )
    assert job.wait(timeout=120) is JobStatus.DONE, (job.reason, job.stderr)
    assert job.stdout == "1000 644\n1000 644\na,b\n1,2\n<p>hello</p>\n1000\n"
    spec = job.snapshot.spec
    assert spec.inputs["/in/data.csv"] == f"s3://{bucket}/data/in.csv" and spec.storage_secret == "S3"


def test_outputs_land_in_the_bucket(client: Client, s3_server: S3Server, bucket: str) -> None:
    job = client.shell(
        "mkdir -p /out/sub && echo a > /out/a.txt && echo b > /out/sub/b.txt && ln -s a.txt /out/link"
        " && echo one > /tmp/one.txt",
        outputs={"/out/": f"s3://{bucket}/run/1/", "/tmp/one.txt": f"s3://{bucket}/single.txt"},
        storage_secret="S3",
    )
    assert job.wait(timeout=120) is JobStatus.DONE, (job.reason, job.stderr)
    # the directory's regular files under the prefix (the symbolic link is not followed)
    assert objects(s3_server, bucket) == {"run/1/a.txt": b"a\n", "run/1/sub/b.txt": b"b\n", "single.txt": b"one\n"}


def test_inputs_and_outputs_together_and_a_failed_job_uploads_nothing(
    client: Client, s3_server: S3Server, bucket: str
) -> None:
    put(s3_server, bucket, "in.txt", b"banana\napple\n")
    sort = client.shell(
        "sort /work/in.txt > /work/out/sorted.txt",
        inputs={"/work/in.txt": f"s3://{bucket}/in.txt"},
        outputs={"/work/out/": f"s3://{bucket}/sorted/"},
        storage_secret="S3",
    )
    assert sort.wait(timeout=120) is JobStatus.DONE, (sort.reason, sort.stderr)
    assert objects(s3_server, bucket, "sorted/") == {"sorted/sorted.txt": b"apple\nbanana\n"}
    failed = client.shell(
        "echo partial > /out/x.txt; exit 3", outputs={"/out/": f"s3://{bucket}/failed/"}, storage_secret="S3"
    )
    assert failed.wait(timeout=120) is JobStatus.ERROR
    assert failed.snapshot.return_code == 3
    assert objects(s3_server, bucket, "failed/") == {}


def test_a_missing_key_fails_the_job_naming_it(client: Client, bucket: str) -> None:
    url = f"s3://{bucket}/no/such/key.csv"
    job = client.shell("cat /in/data.csv", inputs={"/in/data.csv": url}, storage_secret="S3")
    assert job.wait(timeout=120) is JobStatus.ERROR
    assert job.reason.startswith(f"input /in/data.csv: {url}: NoSuchKey"), job.reason
    assert job.snapshot.return_code is None  # it never started
    assert client.shell("echo still running jobs").result(timeout=120) == b"still running jobs\n"


def test_a_missing_output_file_fails_the_job(client: Client, bucket: str) -> None:
    job = client.shell("true", outputs={"/tmp/never.txt": f"s3://{bucket}/never.txt"}, storage_secret="S3")
    assert job.wait(timeout=120) is JobStatus.ERROR
    assert job.reason == f"output /tmp/never.txt: s3://{bucket}/never.txt: not found in the container", job.reason


def test_bad_credentials_and_an_unreachable_endpoint_fail_clearly(
    client: Client, s3_server: S3Server, bucket: str, http_files: HttpFiles
) -> None:
    put(s3_server, bucket, "k.txt", b"k")
    client.secrets.set("S3_WRONG", s3_server.credentials(secret_access_key="not-the-key"))
    client.secrets.set("S3_AWAY", s3_server.credentials(endpoint_url=f"http://127.0.0.1:{free_port()}"))
    client.secrets.set("S3_GARBLED", b"endpoint=nowhere")
    wrong = client.shell("true", inputs={"/in/k": f"s3://{bucket}/k.txt"}, storage_secret="S3_WRONG")
    away = client.shell("echo k > /tmp/k", outputs={"/tmp/k": f"s3://{bucket}/k.txt"}, storage_secret="S3_AWAY")
    garbled = client.shell("true", inputs={"/in/k": f"s3://{bucket}/k.txt"}, storage_secret="S3_GARBLED")
    missing = client.shell("true", inputs={"/in/k": f"{http_files.url}/not-there"})
    for job in (wrong, away, garbled, missing):
        assert job.wait(timeout=180) is JobStatus.ERROR
    assert wrong.reason.startswith(f"input /in/k: s3://{bucket}/k.txt: SignatureDoesNotMatch"), wrong.reason
    assert away.reason.startswith(f"output /tmp/k: s3://{bucket}/k.txt: cannot connect to 127.0.0.1:"), away.reason
    assert garbled.reason == f"input /in/k: s3://{bucket}/k.txt: storage secret 'S3_GARBLED' is not JSON; " + (
        'set it to {"endpoint_url": ..., "access_key_id": ..., "secret_access_key": ...}'
    )
    assert missing.reason == f"input /in/k: {http_files.url}/not-there: HTTP 404 File not found", missing.reason
    assert b"not-the-key" not in json.dumps(wrong.reason).encode()


def test_a_source_that_does_not_answer_fails_the_job_in_bounded_time(client: Client, http_files: HttpFiles) -> None:
    started = time.monotonic()
    job = client.shell("true", inputs={"/in/s": f"{http_files.url}/slow"})
    assert job.wait(timeout=120) is JobStatus.ERROR
    assert time.monotonic() - started < SLOW_SECONDS  # the read timeout (and one retry), not the source, ended it
    assert job.reason.startswith(f"input /in/s: {http_files.url}/slow: no answer from 127.0.0.1:"), job.reason
    assert "timed out" in job.reason


def test_a_source_trickling_bytes_fails_the_job_at_the_deadline(client: Client, http_files: HttpFiles) -> None:
    started = time.monotonic()
    job = client.shell("true", inputs={"/in/t": f"{http_files.url}/trickle"})
    assert job.wait(timeout=TRICKLE_BYTES * 0.6) is JobStatus.ERROR, job.status
    assert time.monotonic() - started < TRICKLE_BYTES / 2  # the deadline, not the source's end, ended it
    assert job.reason == (
        f"input /in/t: {http_files.url}/trickle: the job's inputs took over {TRANSFER_DEADLINE:g} s together"
        " (CLOUDPIPE_TRANSFER_DEADLINE)"
    ), job.reason


def test_a_job_killed_while_its_inputs_are_fetched_ends_killed(client: Client, http_files: HttpFiles) -> None:
    started = time.monotonic()
    job = client.shell("true", inputs={"/in/s": f"{http_files.url}/slow"})
    while job.refresh().status is not JobStatus.PROCESSING:
        assert time.monotonic() - started < 60, job.status
        time.sleep(0.1)
    job.kill()
    assert job.wait(timeout=120) is JobStatus.KILLED
    assert job.reason == "killed before it started" and job.snapshot.return_code is None
    assert time.monotonic() - started < SLOW_SECONDS


def test_a_job_killed_while_its_outputs_are_uploaded_ends_killed(
    client: Client, s3_server: S3Server, bucket: str
) -> None:
    files = 3000  # small files: the upload takes long enough to be killed in the middle
    job = client.shell(
        f"mkdir -p /out && cd /out && for i in $(seq {files}); do echo $i > $i.txt; done",
        outputs={"/out/": f"s3://{bucket}/many/"},
        storage_secret="S3",
    )
    started = time.monotonic()
    while not any(True for _ in s3_server.client().list_objects(bucket, prefix="many/", recursive=True)):
        assert job.refresh().status is JobStatus.PROCESSING, (job.status, job.reason)
        assert time.monotonic() - started < 60
        time.sleep(0.05)
    job.kill()
    killed = time.monotonic()
    assert job.wait(timeout=30) is JobStatus.KILLED, (job.status, job.reason)
    assert time.monotonic() - killed < 5
    time.sleep(1)
    uploaded = len(objects(s3_server, bucket, "many/"))
    time.sleep(2)  # the upload stopped: it does not run on in the background to its end or deadline
    assert len(objects(s3_server, bucket, "many/")) == uploaded < files


def test_an_input_over_the_limit_fails_the_job(client: Client, s3_server: S3Server, bucket: str) -> None:
    put(s3_server, bucket, "big.bin", b"x" * (INPUT_MAX_BYTES + 1))
    job = client.shell("true", inputs={"/in/big.bin": f"s3://{bucket}/big.bin"}, storage_secret="S3")
    assert job.wait(timeout=120) is JobStatus.ERROR
    assert job.reason == (
        f"input /in/big.bin: s3://{bucket}/big.bin: the job's inputs are over {INPUT_MAX_BYTES} bytes together"
        " (CLOUDPIPE_TRANSFER_INPUT_MAX_BYTES)"
    )


def test_outputs_over_the_limit_fail_the_job(client: Client, s3_server: S3Server, bucket: str) -> None:
    job = client.shell(
        f"head -c {OUTPUT_MAX_BYTES // 2} /dev/zero > /out/a && head -c {OUTPUT_MAX_BYTES} /dev/zero > /out/b",
        outputs={"/out/": f"s3://{bucket}/big/"},
        storage_secret="S3",
    )
    assert job.wait(timeout=120) is JobStatus.ERROR
    assert job.reason == (
        f"output /out/: s3://{bucket}/big/: the job's outputs are over {OUTPUT_MAX_BYTES} bytes together"
        " (CLOUDPIPE_TRANSFER_OUTPUT_MAX_BYTES)"
    )
    assert job.snapshot.return_code == 0  # the job itself succeeded
    assert set(objects(s3_server, bucket, "big/")) <= {"big/a"}  # what came before the limit may be there


def test_a_missing_storage_secret_is_refused_at_submit(client: Client, bucket: str) -> None:
    with pytest.raises(NotFound, match="storage_secret: secret 'NO_SUCH_SECRET' not found"):
        client.shell("true", inputs={"/in/a": f"s3://{bucket}/a"}, storage_secret="NO_SUCH_SECRET")


@pytest.mark.parametrize(
    ("inputs", "outputs", "storage_secret", "message"),
    [
        ({"in/a": "https://example.org/a"}, {}, "", "give an absolute file path"),
        ({"/in/../etc/a": "https://example.org/a"}, {}, "", "without '.' or '..'"),
        ({"/in/a/": "https://example.org/a"}, {}, "", "an input is one file"),
        ({"/proc/a": "https://example.org/a"}, {}, "", "nothing can be written under /proc/a"),
        ({"/in/a": "ftp://example.org/a"}, {}, "", "only s3://, http://, https:// URLs"),
        ({"/in/a": "https://user:pw@example.org/a"}, {}, "", "no credentials in a URL"),
        ({"/in/a": "s3://bucket/a"}, {}, "", "s3:// URLs need the name of a secret"),
        ({"/in/a": "s3://B_/a"}, {}, "S3", "is not a bucket name"),
        ({}, {"/out/": "s3://bucket/prefix"}, "S3", "a directory goes to a key prefix ending in '/'"),
        ({}, {"/out/a": "s3://bucket/"}, "S3", "a file goes to an object"),
        ({}, {"/out/a": "https://example.org/a"}, "", "only s3:// URLs"),
        ({}, {"/data/out/": "s3://bucket/p/"}, "S3", "overlaps the volume mounted at /data"),
        ({}, {"/out/": "s3://bucket/p/", "/out/a": "s3://bucket/a"}, "S3", "'/out/a' is inside '/out'"),
        ({f"/in/{i}": "https://example.org/a" for i in range(65)}, {}, "", "at most 64"),
    ],
)
def test_bad_transfers_are_refused_at_submit(
    transfer_server: ServerProcess, inputs: dict[str, str], outputs: dict[str, str], storage_secret: str, message: str
) -> None:
    spec = jpb.JobSpec(
        cmd="true", inputs=inputs, outputs=outputs, storage_secret=storage_secret, volumes=["somevol:/data"]
    )
    with grpc.insecure_channel(transfer_server.address) as channel:
        stub = jpb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        metadata = (("authorization", f"Bearer {transfer_server.api_key}"),)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Submit(jpb.SubmitRequest(jobs=[spec]), metadata=metadata, timeout=30)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert message in (raised.value.details() or ""), raised.value.details()


def test_loopback_is_refused_by_default(
    strict_server: ServerProcess, s3_server: S3Server, http_files: HttpFiles
) -> None:
    (http_files.root / "local.txt").write_bytes(b"local")
    with strict_server.client() as strict:
        strict.secrets.set("S3", s3_server.credentials())
        fetch = strict.shell("cat /in/local.txt", inputs={"/in/local.txt": f"{http_files.url}/local.txt"})
        upload = strict.shell("echo x > /tmp/x", outputs={"/tmp/x": "s3://anybucket/x"}, storage_secret="S3")
        for job in (fetch, upload):
            assert job.wait(timeout=120) is JobStatus.ERROR
    assert fetch.reason == (
        f"input /in/local.txt: {http_files.url}/local.txt: 127.0.0.1 resolves to 127.0.0.1, a loopback, private or"
        " link-local address the server does not reach (CLOUDPIPE_TRANSFER_ALLOW_PRIVATE_ADDRESSES)"
    )
    assert upload.reason.startswith("output /tmp/x: s3://anybucket/x: 127.0.0.1 resolves to 127.0.0.1"), upload.reason
