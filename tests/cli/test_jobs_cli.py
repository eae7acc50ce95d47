"""Every job command of `cloudpipe` against a real server, with the exit codes scripts
rely on (0 ok, 1 job failed, 2 usage/refused, 3 not found, 4 auth, 5 unavailable, 6 timeout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloudpipe_sdk import Client, JobStatus
from tests.cli.support import cloudpipe
from tests.support import ServerProcess, free_port, start_server

pytestmark = pytest.mark.docker


def test_submit_a_shell_command_then_read_it_back(server: ServerProcess, client: Client) -> None:
    submitted = cloudpipe(server, "submit", "--name", "cli-echo", "--env", "WHO=world", "echo", "hello $WHO")
    assert submitted.exit_code == 0, submitted.stderr
    job_id = int(submitted.stdout)
    assert client.get(job_id).result(timeout=60) == b"hello $WHO\n"  # extra args are quoted
    shown = json.loads(cloudpipe(server, "show", str(job_id), "--json").stdout)
    assert shown["status"] == "done" and shown["stdout"] == "hello $WHO\n" and shown["name"] == "cli-echo"
    assert cloudpipe(server, "result", str(job_id)).stdout == "hello $WHO\n"
    assert cloudpipe(server, "logs", str(job_id)).stdout == "hello $WHO\n"
    rows = json.loads(cloudpipe(server, "ls", "--name", "cli-echo", "--since", "1h", "--json").stdout)
    assert [row["id"] for row in rows] == [job_id]
    table = cloudpipe(server, "ls", "--name", "cli-echo", "--status", "done")
    assert str(job_id) in table.stdout and "cli-echo" in table.stdout


def test_submit_wait_prints_the_result_and_exits_with_the_jobs_code(server: ServerProcess) -> None:
    done = cloudpipe(server, "submit", "--wait", "--cpus", "0.5", "--memory", "64M", "echo $((6 * 7))")
    assert (done.exit_code, done.stdout) == (0, "42\n")
    failed = cloudpipe(server, "submit", "--wait", "echo oops >&2; exit 3")
    assert failed.exit_code == 3 and "oops" in failed.stderr and "ended error" in failed.stderr


def test_submit_a_python_function_with_arguments(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "mytasks.py").write_text("def greet(name, punctuation='!'):\n    return f'hello {name}{punctuation}'\n")
    called = cloudpipe(server, "submit", "--wait", "mytasks:greet", "ada", "punctuation='?'", cwd=tmp_path)
    assert (called.exit_code, called.stdout) == (0, "hello ada?\n"), called.stderr
    stdlib = cloudpipe(server, "submit", "--wait", "--serializer", "dill", "math:factorial", "10", cwd=tmp_path)
    assert stdlib.stdout == "3628800\n", stdlib.stderr
    job_id = int(cloudpipe(server, "submit", "mytasks:greet", "[1, 2]", cwd=tmp_path).stdout)
    assert cloudpipe(server, "result", str(job_id)).stdout == "hello [1, 2]!\n"
    raised = cloudpipe(server, "submit", "--wait", "math:sqrt", "-1", cwd=tmp_path)
    assert raised.exit_code == 1 and "ValueError: math domain error" in raised.stderr


def test_logs_follow_streams_until_the_end(server: ServerProcess) -> None:
    job_id = cloudpipe(server, "submit", "echo one; sleep 1; echo two >&2; exit 2").stdout.strip()
    followed = cloudpipe(server, "logs", "-f", job_id)
    assert followed.stdout == "one\n" and "two\n" in followed.stderr
    assert followed.exit_code == 1 and "ended error" in followed.stderr


def test_attach_pipes_stdin_to_an_interactive_job(server: ServerProcess, client: Client) -> None:
    job = client.shell("tr a-z A-Z", interactive=True)
    attached = cloudpipe(server, "attach", str(job.id), stdin="hello\n")
    assert (attached.exit_code, attached.stdout) == (0, "HELLO\n"), attached.stderr


def test_wait_for_many_jobs_and_its_exit_codes(server: ServerProcess, client: Client) -> None:
    good = [str(client.shell("true").id) for _ in range(3)]
    waited = cloudpipe(server, "wait", *good)
    assert waited.exit_code == 0
    assert sorted(waited.stdout.splitlines()) == sorted(f"job {i}: done" for i in good)
    bad = str(client.shell("exit 5").id)
    failed = cloudpipe(server, "wait", good[0], bad)
    assert failed.exit_code == 1 and f"job {bad}: error (exited with code 5)" in failed.stdout
    slow = client.shell("sleep 60")
    timed_out = cloudpipe(server, "wait", "--timeout", "0.5", str(slow.id))
    assert timed_out.exit_code == 6 and "did not finish" in timed_out.stderr
    killed = cloudpipe(server, "kill", str(slow.id))
    assert killed.exit_code == 0 and f"job {slow.id}:" in killed.stdout
    assert slow.wait(timeout=30) is JobStatus.KILLED
    assert cloudpipe(server, "result", str(slow.id)).exit_code == 1


def test_kill_all_kills_only_unfinished_jobs(tmp_path: Path, docker_engine: object) -> None:
    own = start_server(tmp_path)
    try:
        with own.client() as client:
            running = [client.shell("sleep 60") for _ in range(2)]
            finished = client.shell("true")
            finished.wait(timeout=60)
            result = cloudpipe(own, "kill-all", "--yes")
            assert result.exit_code == 0 and result.stdout.startswith("killed 2 job(s)")
            assert all(job.wait(timeout=30) is JobStatus.KILLED for job in running)
            assert finished.status is JobStatus.DONE
    finally:
        own.stop()


def test_error_exit_codes(server: ServerProcess, tmp_path: Path) -> None:
    assert cloudpipe(server, "show", str(1 << 40)).exit_code == 3
    wrong_key = cloudpipe(None, "--address", server.address, "--api-key", "wrong", "ls")
    assert wrong_key.exit_code == 4 and "wrong API key" in wrong_key.stderr
    impatient = tmp_path / "config.toml"
    impatient.write_text("[profiles.default]\nretry_for = 0.5\n")
    nobody = cloudpipe(None, "--address", f"127.0.0.1:{free_port()}", "ls", env={"CLOUDPIPE_CONFIG": str(impatient)})
    assert nobody.exit_code == 5
    assert cloudpipe(server, "submit", "--image", "not a valid image", "true").exit_code == 2
    assert cloudpipe(server, "ls", "--status", "sleeping").exit_code == 2
    assert cloudpipe(server, "submit", "--env", "NOEQUALS", "true").exit_code == 2
