"""`/metrics` of a real server (CLOUDPIPE_METRICS_LISTEN) and of a real gateway: each
named metric moves when its event happens."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from cloudpipe_proto.v1 import jobs_pb2 as pb
from cloudpipe_proto.v1 import jobs_pb2_grpc as pb_grpc
from cloudpipe_proto.v1 import schedules_pb2 as spb
from cloudpipe_proto.v1 import schedules_pb2_grpc as spb_grpc
from tests.gateway.support import GatewayProcess, start_gateway
from tests.support import ServerProcess, free_port, start_server

pytestmark = pytest.mark.docker
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def scrape(url: str) -> dict[str, float]:
    """`name{labels}` -> value of every sample at `url`."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in response.text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            samples[match[1] + (match[2] or "")] = float(match[3])
    return samples


def moved(before: dict[str, float], after: dict[str, float], key: str) -> bool:
    return after.get(key, 0.0) > before.get(key, 0.0)


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory, docker_engine: object) -> Iterator[tuple[ServerProcess, str]]:
    port = free_port()
    server = start_server(
        tmp_path_factory.mktemp("metrics-server"), env={"CLOUDPIPE_METRICS_LISTEN": f"127.0.0.1:{port}"}
    )
    yield server, f"http://127.0.0.1:{port}/metrics"
    assert server.stop() == 0, server.log


def _wait_done(stub: pb_grpc.JobServiceStub, md: tuple[tuple[str, str], ...], job_id: int) -> pb.Job:
    deadline = time.monotonic() + 60
    while (job := stub.Get(pb.GetJobRequest(id=job_id), timeout=5, metadata=md)).status < pb.JOB_STATUS_DONE:
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    return job


def test_server_metrics_move_with_their_events(metered: tuple[ServerProcess, str]) -> None:
    server, url = metered
    md = (("authorization", f"Bearer {server.api_key}"),)
    before = scrape(url)
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.JobServiceStub(channel)
        (done,) = stub.Submit(pb.SubmitRequest(jobs=[pb.JobSpec(cmd="echo hi")]), timeout=5, metadata=md).ids
        _wait_done(stub, md, done)
        (again,) = stub.Submit(pb.SubmitRequest(jobs=[pb.JobSpec(cmd="echo again")]), timeout=5, metadata=md).ids
        _wait_done(stub, md, again)  # in the warm container the first one left
        done = again
        schedules = spb_grpc.ScheduleServiceStub(channel)
        spec = spb.ScheduleSpec(name="metrics-probe", cron="* * * * * *", job=pb.JobSpec(cmd="true"))
        schedule = schedules.Create(spb.CreateScheduleRequest(spec=spec), timeout=5, metadata=md)
        deadline = time.monotonic() + 20
        while scrape(url).get('cloudpipe_scheduler_fires_total{outcome="pending"}', 0) < 1:
            assert time.monotonic() < deadline, "no schedule fire counted"
            time.sleep(0.3)
        schedules.Delete(spb.DeleteScheduleRequest(name=schedule.spec.name), timeout=5, metadata=md)
        (sleeper,) = stub.Submit(pb.SubmitRequest(jobs=[pb.JobSpec(cmd="sleep 30")]), timeout=5, metadata=md).ids
        after_it = pb.JobSpec(cmd="true", depends_on=[sleeper])
        (dependent,) = stub.Submit(pb.SubmitRequest(jobs=[after_it]), timeout=5, metadata=md).ids
        waiting = [sleeper, dependent]
        deadline = time.monotonic() + 20  # the queue-depth gauge is refreshed every 5 s
        while scrape(url).get('cloudpipe_queue_depth{status="waiting"}', 0) < 1:
            assert time.monotonic() < deadline, "queue depth never showed the waiting job"
            time.sleep(0.5)
        while scrape(url).get("cloudpipe_running_jobs", 0) < 1:
            assert time.monotonic() < deadline, "running jobs never showed the sleeping job"
            time.sleep(0.5)
        stub.Kill(pb.KillJobRequest(id=waiting[1]), timeout=5, metadata=md)
        stub.Kill(pb.KillJobRequest(id=waiting[0]), timeout=5, metadata=md)
        _wait_done(stub, md, waiting[0])
        with pytest.raises(grpc.RpcError):
            stub.List(pb.ListJobsRequest(), timeout=5, metadata=(("authorization", "Bearer wrong"),))
    after = scrape(url)
    for key in (
        "cloudpipe_jobs_submitted_total",
        'cloudpipe_jobs_finished_total{status="done"}',
        'cloudpipe_jobs_finished_total{status="killed"}',
        "cloudpipe_claim_latency_seconds_count",
        "cloudpipe_job_duration_seconds_count",
        "cloudpipe_job_overhead_seconds_count",
        'cloudpipe_store_operation_seconds_count{operation="submit"}',
        'cloudpipe_store_operation_seconds_count{operation="claim"}',
        'cloudpipe_store_operation_seconds_count{operation="finish"}',
        'cloudpipe_grpc_requests_total{code="OK",method="cloudpipe.v1.JobService/Submit"}',
        'cloudpipe_grpc_requests_total{code="UNAUTHENTICATED",method="cloudpipe.v1.JobService/List"}',
        'cloudpipe_grpc_request_seconds_count{method="cloudpipe.v1.JobService/Get"}',
        'cloudpipe_auth_failures_total{reason="failed"}',
        'cloudpipe_warm_pool_acquires_total{result="miss"}',
        'cloudpipe_warm_pool_acquires_total{result="hit"}',
        'cloudpipe_scheduler_fires_total{outcome="pending"}',
        "cloudpipe_scheduler_lag_seconds_count",
    ):
        assert moved(before, after, key), (key, before.get(key), after.get(key))
    assert after["cloudpipe_warm_pool_size"] >= 1
    # two jobs, then the waiting pair, then at least one fire of the schedule
    assert after["cloudpipe_jobs_submitted_total"] - before.get("cloudpipe_jobs_submitted_total", 0) >= 5


def test_server_metrics_are_off_unless_configured(server: ServerProcess) -> None:
    assert "metrics on http" not in server.log


def test_gateway_metrics_move_with_requests(metered: tuple[ServerProcess, str], tmp_path: Path) -> None:
    server, _url = metered
    gateway: GatewayProcess = start_gateway(server.address, tmp_path)
    try:
        url = f"{gateway.url}/metrics"
        before = scrape(url)
        with httpx.Client(base_url=gateway.url, auth=("admin", server.api_key), timeout=30) as client:
            assert client.get("/v1/job/queue_stats").status_code == 200
            assert client.get("/ui/api/jobs").status_code == 200
            assert httpx.get(f"{gateway.url}/v1/job", auth=("admin", "wrong"), timeout=10).status_code == 401
            with client.stream("GET", "/ui/api/jobs/live") as feed:
                assert feed.status_code == 200
                assert scrape(url)["cloudpipe_gateway_live_feeds"] == 1
        after = scrape(url)
        for key in (
            'cloudpipe_gateway_http_requests_total{code="200",method="GET",route="/v1/job/queue_stats"}',
            'cloudpipe_gateway_http_requests_total{code="200",method="GET",route="/ui/api/jobs"}',
            'cloudpipe_gateway_http_request_seconds_count{route="/ui/api/jobs"}',
            'cloudpipe_gateway_grpc_calls_total{code="OK",method="QueueStats"}',
            'cloudpipe_gateway_grpc_calls_total{code="UNAUTHENTICATED",method="List"}',
            'cloudpipe_gateway_grpc_call_seconds_count{method="List"}',
            "cloudpipe_gateway_auth_failures_total",
        ):
            assert moved(before, after, key), (key, before.get(key), after.get(key))
        deadline = time.monotonic() + 10
        while scrape(url)["cloudpipe_gateway_live_feeds"] != 0:
            assert time.monotonic() < deadline, "the closed feed is still counted"
            time.sleep(0.2)
    finally:
        assert gateway.stop() == 0, gateway.log
