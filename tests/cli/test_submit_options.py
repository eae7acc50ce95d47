"""Every job option of the SDK has a flag on `cloudpipe submit`, and each does what the
SDK option does, against a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudpipe_sdk import Client, InvalidRequest
from tests.cli.support import cloudpipe
from tests.support import ServerProcess

pytestmark = pytest.mark.docker


def test_an_interactive_job_from_the_cli_takes_input_from_attach(server: ServerProcess, client: Client) -> None:
    submitted = cloudpipe(server, "submit", "--interactive", "tr a-z A-Z")
    assert submitted.exit_code == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert client.get(int(job_id)).snapshot.spec.interactive
    attached = cloudpipe(server, "attach", job_id, stdin="typed later\n")
    assert (attached.exit_code, attached.stdout) == (0, "TYPED LATER\n"), attached.stderr


def test_submit_interactive_wait_attaches_at_once(server: ServerProcess) -> None:
    done = cloudpipe(server, "submit", "--interactive", "--wait", "tr a-z A-Z; exit 4", stdin="hello\n")
    assert (done.exit_code, done.stdout) == (4, "HELLO\n"), done.stderr


def test_flags_reach_the_spec(server: ServerProcess, client: Client) -> None:
    submitted = cloudpipe(
        server, "submit", "--restartable", "--fresh-container", "--result-file", "/tmp/answer", "echo 42 > /tmp/answer"
    )
    assert submitted.exit_code == 0, submitted.stderr
    job = client.get(int(submitted.stdout))
    spec = job.snapshot.spec
    assert spec.restartable and spec.fresh_container and spec.result_source == "file:/tmp/answer"
    assert job.result(timeout=60) == b"42\n"
    waited = cloudpipe(server, "submit", "--wait", "--result-file", "/tmp/r", "echo noise; echo value > /tmp/r")
    assert (waited.exit_code, waited.stdout) == (0, "noise\nvalue\n"), waited.stderr  # live output, then the result


def test_an_idempotency_key_makes_one_job(server: ServerProcess) -> None:
    first = cloudpipe(server, "submit", "--idempotency-key", "cli-key-1", "true")
    again = cloudpipe(server, "submit", "--idempotency-key", "cli-key-1", "true")
    assert first.exit_code == again.exit_code == 0
    assert first.stdout == again.stdout


def test_retries_call_a_failing_function_again(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "flaky.py").write_text(
        "calls = 0\n"
        "def twice_then_ok():\n"
        "    global calls\n"
        "    calls += 1\n"
        "    if calls < 3:\n"
        "        raise RuntimeError(f'call {calls} failed')\n"
        "    return f'ok after {calls} calls'\n"
    )
    without = cloudpipe(server, "submit", "--wait", "flaky:twice_then_ok", cwd=tmp_path)
    assert without.exit_code == 1 and "call 1 failed" in without.stderr
    retried = cloudpipe(server, "submit", "--wait", "--retries", "2", "flaky:twice_then_ok", cwd=tmp_path)
    assert (retried.exit_code, retried.stdout) == (0, "ok after 3 calls\n"), retried.stderr


def test_retries_on_a_shell_job_are_refused_not_ignored(server: ServerProcess, client: Client) -> None:
    refused = cloudpipe(server, "submit", "--retries", "2", "exit 1")
    assert refused.exit_code == 2 and "only module:function calls are retried" in refused.stderr
    assert "Traceback" not in refused.stderr
    with pytest.raises(InvalidRequest, match="only function jobs are retried"):
        client.shell("exit 1", retries=2)
    with pytest.raises(InvalidRequest, match="only function jobs are retried"):
        client.with_options(retries=1).saved_jobs.save_shell("never-saved", "exit 1")
    assert client.with_options(retries=1).shell("true", retries=0).result(timeout=60) == b""


def test_function_only_and_shell_only_flags_are_refused_on_the_other(server: ServerProcess) -> None:
    wrong = cloudpipe(server, "submit", "--interactive", "math:factorial", "3")
    assert wrong.exit_code == 2 and "--interactive: for shell commands" in wrong.stderr
    wrong = cloudpipe(server, "submit", "--serializer", "dill", "true")
    assert wrong.exit_code == 2 and "--serializer: for module:function calls" in wrong.stderr
