"""POST /v1/job: payload decoding, validation order, atomicity (spec 2.4.2, 3.1, 3.6, 7.1, 7.9)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import MAX_BODY
from tests.gateway.support import assert_api_error, get_job, job_payload, submit

NO_IMAGE = "cloudpipe/no-such-image:never"  # fails at once, without a container
JPRS_PREFIX = "Unable to parse job payload as JSON: "


def quick(cmd: str = "true", **fields: Any) -> dict[str, Any]:
    """A job whose run does not matter: its image does not exist."""
    return job_payload(cmd, layer=[{"name": NO_IMAGE}], **fields)


def count(http: httpx.Client, name: str) -> int:
    return len(http.get("/v1/job", params={"name": name}).json()["jobs"])


def test_submit_answers_the_new_jids_as_json(http: httpx.Client) -> None:
    """7.1 #2: one positive integer per job, increasing across submissions; `application/json` + newline."""
    response = http.post("/v1/job", json={"jobs": [quick("id", name="wat")]})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content.endswith(b"]}\n")
    (first,) = response.json()["jids"]
    second, third = submit(http, quick(), quick())
    assert 0 < first < second < third


def test_a_submitted_job_belongs_to_the_caller_only(as_account: Any) -> None:
    alice, bob = as_account("alice"), as_account("bob")
    (jid,) = submit(alice, quick(name="private"))
    assert get_job(alice, jid)["jid"] == jid
    assert bob.get("/v1/job", params={"jid": jid}).json() == {"jobs": []}
    assert bob.get("/v1/job", params={"name": "private"}).json() == {"jobs": []}


@pytest.mark.parametrize(
    ("job", "status", "code", "message"),
    [
        (job_payload("", result_source="magic"), 400, "JCMD", "All jobs must specify a command to execute."),
        ({"result_source": "stdout", "result_type": "binary"}, 400, "JCMD", None),
        (job_payload(result_source="magic"), 400, "JRSRC", "Invalid result source [magic]"),
        (job_payload(result_source="magic", result_type="elsewhere"), 400, "JRSRC", None),
        ({"cmd": "id"}, 400, "JRSRC", "Invalid result source []"),
        (job_payload(result_source="STDOUT"), 400, "JRSRC", "Invalid result source [STDOUT]"),
        (job_payload(result_type="elsewhere"), 400, "JRTYPE", "Invalid result type [elsewhere]"),
        ({"cmd": "id", "result_source": "stdout"}, 400, "JRTYPE", "Invalid result type []"),
    ],
)
def test_validation_runs_jcmd_then_jrsrc_then_jrtype(
    http: httpx.Client, job: dict[str, Any], status: int, code: str, message: str | None
) -> None:
    error = assert_api_error(http.post("/v1/job", json={"jobs": [job]}), status, code, message)
    hints = {
        "JCMD": 'Specify a command to execute as a "cmd" element in your job.',
        "JRSRC": 'The "result_source" must be either "stdout" or "file:{path}".',
        "JRTYPE": 'The "result_type" must be one of the following: binary, pickle',
    }
    assert error["hint"] == hints[code]


def test_file_result_sources_pass_validation(http: httpx.Client) -> None:
    submit(http, quick(result_source="file:/tmp/out", result_type="pickle"))


def test_a_failing_job_inserts_nothing_not_even_the_jobs_before_it(http: httpx.Client) -> None:
    """DECISION: the submit is atomic (Go kept the jobs before the bad one)."""
    jobs = [quick(name="atomic-check"), quick(name="atomic-check", result_type="elsewhere")]
    assert_api_error(http.post("/v1/job", json={"jobs": jobs}), 400, "JRTYPE")
    assert count(http, "atomic-check") == 0


def test_a_job_the_server_rejects_inserts_nothing(http: httpx.Client) -> None:
    jobs = [quick(name="server-check"), quick(name="server-check", result_source="file:relative/path")]
    error = assert_api_error(http.post("/v1/job", json={"jobs": jobs}), 400, "JPRS")
    assert error["message"].startswith("Unable to accept job payload: ")
    assert "absolute" in error["message"]
    assert count(http, "server-check") == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "EOF"),
        (b"  \n", "EOF"),
        (b'{"jobs":[', "unexpected EOF"),
        (b'{"jobs": [{"cmd": "id"', "unexpected EOF"),
        (b'{"jobs": [}', "invalid character '}' looking for beginning of value"),
        (b"jobs=1", "invalid character 'j' looking for beginning of value"),
        (b"{'jobs': []}", "invalid character '\\'' looking for beginning of object key string"),
        (b'{"jobs": NaN}', "invalid character 'N' looking for beginning of value"),
        (b"[]", "json: cannot unmarshal array into Go value of type main.JobSubmission"),
        (b'{"jobs": {}}', "json: cannot unmarshal object into Go value of type []main.Job"),
        (b'{"jobs": ["id"]}', "json: cannot unmarshal string into Go value of type main.Job"),
    ],
)
def test_malformed_json_is_jprs(http: httpx.Client, body: bytes, message: str) -> None:
    error = assert_api_error(http.post("/v1/job", content=body), 400, "JPRS", JPRS_PREFIX + message)
    assert error["hint"] == "Please supply valid JSON in your request."


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("multicore", "1", "json: cannot unmarshal string into Go value of type int"),
        ("multicore", 1.5, "json: cannot unmarshal number 1.5 into Go value of type int"),
        ("max_runtime", True, "json: cannot unmarshal bool into Go value of type int"),
        ("restartable", "yes", "json: cannot unmarshal string into Go value of type bool"),
        ("cmd", 7, "json: cannot unmarshal number into Go value of type string"),
        ("tags", {"n": 1}, "json: cannot unmarshal number into Go value of type string"),
        ("tags", ["a"], "json: cannot unmarshal array into Go value of type map[string]string"),
        ("env", "PATH=/bin", "json: cannot unmarshal string into Go value of type map[string]string"),
        ("layer", "ubuntu", "json: cannot unmarshal string into Go value of type []main.Layer"),
        ("vol", ["data"], "json: cannot unmarshal string into Go value of type main.Volume"),
        ("stdin", 5, "json: cannot unmarshal number into Go value of type []uint8"),
        ("stdin", "abc", "illegal base64 data at input byte 0"),
        ("stdin", "ab!d", "illegal base64 data at input byte 2"),
        ("stdin", "c3VjY2Vzcw", "illegal base64 data at input byte 8"),
        ("stdin", "c3VjY2Vzcw=", "illegal base64 data at input byte 11"),
        ("stdin", "c3VjY2Vzcw==x", "illegal base64 data at input byte 12"),
    ],
)
def test_wrong_types_are_jprs_before_any_validation(
    http: httpx.Client, field: str, value: object, message: str
) -> None:
    job = {**quick(), field: value, "cmd": "" if field != "cmd" else value}  # the JCMD failure must not win
    assert_api_error(http.post("/v1/job", json={"jobs": [job]}), 400, "JPRS", JPRS_PREFIX + message)


def test_a_body_over_the_limit_is_413_jprs(http: httpx.Client) -> None:
    body = b'{"jobs":[{"cmd":"' + b"x" * MAX_BODY + b'"}]}'
    error = assert_api_error(
        http.post("/v1/job", content=body), 413, "JPRS", JPRS_PREFIX + "http: request body too large"
    )
    assert str(MAX_BODY) in error["hint"]
    chunks = (b" " * 65536 for _ in range(MAX_BODY // 65536 + 2))  # no Content-Length: counted as it streams
    assert_api_error(http.post("/v1/job", content=chunks), 413, "JPRS")


def test_json_nested_deeper_than_the_parser_goes_is_jprs(http: httpx.Client) -> None:
    for opener in (b"[", b'{"a":'):
        response = http.post("/v1/job", content=b'{"jobs":' + opener * 60_000)
        assert_api_error(response, 400, "JPRS", JPRS_PREFIX + "exceeded max depth")


def test_a_lone_surrogate_escape_becomes_the_replacement_character_as_in_go(http: httpx.Client) -> None:
    body = b'{"jobs":[{"cmd":"echo \\ud800 \\ud83d\\ude00","tags":{"\\udc00":"x"},'
    rest = f'"layer":[{{"name":"{NO_IMAGE}"}}],"result_source":"stdout","result_type":"binary"}}]}}'
    (jid,) = http.post("/v1/job", content=body + rest.encode()).json()["jids"]
    job = get_job(http, jid)
    assert job["cmd"] == "echo \ufffd \U0001f600"
    assert job["tags"] == {"\ufffd": "x"}
    rejected = http.post("/v1/job", content=b'{"jobs":[{"cmd":"x","result_source":"\\udfff"}]}')
    assert_api_error(rejected, 400, "JRSRC", "Invalid result source [\ufffd]")


def test_empty_submissions_give_an_empty_jid_list(http: httpx.Client) -> None:
    for body in (b"{}", b'{"jobs":null}', b'{"jobs":[]}', b"null"):
        response = http.post("/v1/job", content=body)
        assert response.status_code == 200
        assert response.content == b'{"jids":[]}\n'


def test_go_decoding_quirks_are_kept(http: httpx.Client) -> None:
    """Case-insensitive keys, unknown keys ignored, only the first JSON value read, nulls ignored."""
    body = json.dumps(
        {"JOBS": [{"CMD": "id", "Result_Source": "stdout", "result_type": "binary", "colour": "red", "name": None}]}
    )
    response = http.post("/v1/job", content=body.encode() + b' {"trailing": garbage')
    assert response.status_code == 200, response.text
    job = get_job(http, response.json()["jids"][0])
    assert job["cmd"] == "id"
    assert "name" not in job


def test_a_submitted_job_reads_back_with_every_field(http: httpx.Client) -> None:
    stdin = base64.b64encode(b"\x00\x01binary\xff").decode()
    fields = {
        "name": "roundtrip",
        "core": "c1",
        "multicore": 2,
        "restartable": True,
        "tags": {"b": "2", "a": "1"},
        "vol": [{"name": "data"}, {"name": "more", "mount_rw": True}],
        "env": {"PYTHONPATH": "/pymodules"},
        "max_runtime": 5,
        "stdin": stdin,
        "profile": False,
    }
    (jid,) = submit(http, quick("cat", **fields))
    job = get_job(http, jid)
    for key, value in fields.items():
        expected = [{"name": "data"}, {"name": "more"}] if key == "vol" else value
        assert job[key] == expected, key
    assert list(job["tags"]) == ["a", "b"]  # Go sorts map keys
    assert job["layer"] == [{"name": NO_IMAGE}]
    assert job["result_source"] == "stdout" and job["result_type"] == "binary"


def test_depends_on_takes_a_jid_or_a_list_of_jids(http: httpx.Client) -> None:
    (first,) = submit(http, quick())
    (second,) = submit(http, quick(depends_on=str(first)))
    (third,) = submit(http, quick(depends_on=[first, second]))
    assert get_job(http, third)["depends_on"] == f"{first},{second}"
    assert "depends_on" not in get_job(http, first)
    assert_api_error(http.post("/v1/job", json={"jobs": [quick(depends_on="soon")]}), 400, "JPRS")
    missing = http.post("/v1/job", json={"jobs": [quick(depends_on=first + 10_000_000)]})
    assert_api_error(missing, 400, "JPRS")


def test_jobs_without_a_layer_run_on_the_default_image_and_show_no_layer(http: httpx.Client) -> None:
    (jid,) = submit(http, job_payload("true", name="default-image"))
    assert get_job(http, jid)["layer"] == []


def test_too_many_jobs_are_refused_before_any_is_parsed(http: httpx.Client) -> None:
    """Issue 16 item 10: the count is checked first. Every job here is a type error
    (JPRS for job 0 if parsed); 10,001 of them are refused for their number instead."""
    body = json.dumps({"jobs": [{"cmd": 5}] * 10_001})
    assert len(body) < MAX_BODY
    response = http.post("/v1/job", content=body)
    error = assert_api_error(response, 413, "JPRS")
    assert "at most 10000 jobs" in error["message"]
