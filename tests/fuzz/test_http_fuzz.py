"""A bounded HTTP fuzzer against a real gateway in front of a real server (the fake
executor's: no container runs) (issue 16): malformed and out-of-range requests get a
4xx in the original error envelope, never a 5xx (503, "the server is unavailable", is
the one documented 5xx; none is expected here). Derandomized, bounded by
`max_examples`; every accepted job depends on a parent killed at the end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateway.support import GatewayProcess, start_gateway
from tests.support import ServerProcess

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DOCUMENTED_5XX = {503}

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([0, -1, 2**31, 2**63, 2**64, 1e308, -0.0, 5_000_000_001])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
FIELDS = ["cmd", "name", "core", "multicore", "restartable", "tags", "layer", "vol", "env", "result_source"]
FIELDS += ["result_type", "max_runtime", "stdin", "profile", "depends_on", "unknown"]


@st.composite
def jobs(draw: Any) -> dict[str, Any]:
    job = {"cmd": "true", "result_source": "stdout", "result_type": "binary"}
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        job[field] = draw(JSON_VALUES)
    return job


@pytest.fixture
def api(server: ServerProcess, tmp_path: Path) -> Iterator[tuple[httpx.Client, int]]:
    """A client of a gateway in front of `server`, and a parent job every fuzzed job
    depends on (killed at the end, so its dependents never run)."""
    gateway: GatewayProcess = start_gateway(server.address, tmp_path)
    try:
        with httpx.Client(base_url=gateway.url, auth=("admin", server.api_key), timeout=30) as client:
            response = client.post(
                "/v1/job", json={"jobs": [{"cmd": "sleep 600", "result_source": "stdout", "result_type": "binary"}]}
            )
            assert response.status_code == 200, response.text
            [parent] = response.json()["jids"]
            yield client, parent
            client.post("/v1/job/kill", data={"jid": str(parent)})
    finally:
        assert gateway.stop() == 0, gateway.log


def no_5xx(response: httpx.Response) -> None:
    assert response.status_code < 500 or response.status_code in DOCUMENTED_5XX, (
        response.status_code,
        response.text[:500],
    )


@FUZZ
@given(payload=st.lists(jobs(), max_size=3), wrap=st.sampled_from(["jobs", "other", "list"]))
def test_fuzzed_submits_never_answer_5xx(api: Any, payload: list[dict[str, Any]], wrap: str) -> None:
    client, parent = api
    for job in payload:
        job["depends_on"] = parent  # whatever else was drawn: accepted jobs wait, then fail with it
    body: Any = {"jobs": payload} if wrap == "jobs" else ({"other": payload} if wrap == "other" else payload)
    no_5xx(client.post("/v1/job", content=json.dumps(body), headers={"content-type": "application/json"}))


@FUZZ
@given(raw=st.binary(max_size=200))
def test_fuzzed_raw_bodies_never_answer_5xx(api: Any, raw: bytes) -> None:
    client, _ = api
    no_5xx(client.post("/v1/job", content=raw))
    no_5xx(client.post("/v1/job/kill", content=raw, headers={"content-type": "application/x-www-form-urlencoded"}))


QUERY_KEYS = st.sampled_from(["jid", "jids", "name", "status", "limit", "after", "before", "created_after", "x"])


@FUZZ
@given(
    query=st.lists(st.tuples(QUERY_KEYS, st.text(max_size=24) | st.sampled_from(["-1", "1e9", str(2**64)])), max_size=4)
)
def test_fuzzed_queries_never_answer_5xx(api: Any, query: list[tuple[str, str]]) -> None:
    client, _ = api
    no_5xx(client.get("/v1/job", params=query))
    no_5xx(client.get("/ui/api/job", params=query))
