"""Every `cloudpipe` command of the SDK takes --json and prints JSON with it; every
`--help` shows examples; shell completion works as docs/cli.md says."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from cloudpipe_sdk import Client
from cloudpipe_sdk.cli import main
from tests.cli.support import cloudpipe
from tests.support import ROOT, ServerProcess


def sdk_commands() -> Iterator[tuple[str, click.Command]]:
    """(path, command) of every command the SDK defines (plugins of the server and the
    auth service, `server` and `pki`, are theirs)."""

    def walk(command: click.Command, path: list[str]) -> Iterator[tuple[str, click.Command]]:
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and (sub.callback is None or sub.callback.__module__.startswith("cloudpipe_sdk")):
                    yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), command

    yield from walk(main, [])


def test_every_command_has_json_and_help_examples() -> None:
    commands = dict(sdk_commands())
    assert {"submit", "attach", "schedules create", "apply", "config set", "kill-all"} <= set(commands)
    for path, command in commands.items():
        assert any("--json" in param.opts for param in command.params), f"{path}: no --json"
        examples = [line.strip() for line in (command.help or "").split("\b", 1)[-1].splitlines() if line.strip()]
        assert "\b" in (command.help or "") and examples, f"{path}: no examples in --help"
        assert all(line.startswith(("cloudpipe ", "job=", "echo ", "eval ")) for line in examples), (path, examples)
        assert any(path in line for line in examples), f"{path}: no example of it"


def test_help_shows_the_examples(tmp_path: Path) -> None:
    shown = cloudpipe(None, "schedules", "create", "--help")
    assert shown.exit_code == 0
    assert "cloudpipe schedules create nightly '30 2 * * *' --saved-job report" in shown.stdout
    top = cloudpipe(None, "--help")
    assert "_CLOUDPIPE_COMPLETE=bash_source cloudpipe" in top.stdout


def test_shell_completion(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "cloudpipe"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "_CLOUDPIPE_COMPLETE": "bash_source"}
    source = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert source.returncode == 0 and "complete -o nosort -F _cloudpipe_completion cloudpipe" in source.stdout
    completing = {"_CLOUDPIPE_COMPLETE": "bash_complete", "COMP_WORDS": "cloudpipe sched", "COMP_CWORD": "1"}
    words = subprocess.run([str(script)], env={**env, **completing}, capture_output=True, text=True, timeout=60)
    assert "plain,schedules" in words.stdout.splitlines()
    options = {"COMP_WORDS": "cloudpipe submit --fre", "COMP_CWORD": "2"}
    flags = subprocess.run([str(script)], env={**env, **completing, **options}, capture_output=True, text=True)
    assert "plain,--fresh-container" in flags.stdout.splitlines()
    # the bash script itself loads and completes in a real bash
    bash = f'eval "$(_CLOUDPIPE_COMPLETE=bash_source {script})"; complete -p cloudpipe'
    loaded = subprocess.run(["bash", "-c", bash], env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True)
    assert loaded.returncode == 0 and b"_cloudpipe_completion" in loaded.stdout


def lines(text: str) -> list[object]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_job_commands_print_json(server: ServerProcess, client: Client, tmp_path: Path) -> None:
    submitted = cloudpipe(server, "submit", "--json", "echo hi")
    job_id = json.loads(submitted.stdout)["id"]
    streamed = lines(cloudpipe(server, "submit", "--json", "--wait", "echo out; echo err >&2; exit 3").stdout)
    assert {"stream": "stdout", "text": "out\n"} in streamed and {"stream": "stderr", "text": "err\n"} in streamed
    assert isinstance(streamed[-1], dict) and streamed[-1]["exit"]["return_code"] == 3
    assert json.loads(cloudpipe(server, "result", "--json", str(job_id)).stdout)["result"] == "hi\n"
    assert json.loads(cloudpipe(server, "show", "--json", str(job_id)).stdout)["stdout"] == "hi\n"
    assert json.loads(cloudpipe(server, "logs", "--json", str(job_id)).stdout)["stdout"] == "hi\n"
    followed = lines(cloudpipe(server, "logs", "-f", "--json", str(job_id)).stdout)
    assert followed[0] == {"stream": "stdout", "text": "hi\n"} and "exit" in followed[-1]  # type: ignore[operator]
    assert lines(cloudpipe(server, "wait", "--json", str(job_id)).stdout)[0] == {
        "id": job_id,
        "status": "done",
        "reason": "",
    }
    assert json.loads(cloudpipe(server, "kill", "--json", str(job_id)).stdout)[0]["killed"] is False
    assert json.loads(cloudpipe(server, "rm", "--json", str(job_id)).stdout) == {"deleted": [job_id]}
    assert isinstance(json.loads(cloudpipe(server, "ls", "--json").stdout), list)
    typed = client.shell("cat", interactive=True)
    attached = lines(cloudpipe(server, "attach", "--json", str(typed.id), stdin="typed\n").stdout)
    assert attached[0] == {"stream": "stdout", "text": "typed\n"} and "exit" in attached[-1]  # type: ignore[operator]
    assert "killed" in json.loads(cloudpipe(server, "kill-all", "--yes", "--json").stdout)
    config = {"CLOUDPIPE_CONFIG": str(tmp_path / "c.toml")}
    assert "settings" in json.loads(cloudpipe(server, "config", "show", "--json", env=config).stdout)
    assert json.loads(cloudpipe(None, "config", "path", "--json", env=config).stdout)["exists"] is False
    written = json.loads(cloudpipe(None, "config", "set", "api_key", "s3cret", "--json", env=config).stdout)
    assert written["setting"] == "api_key" and "s3cret" not in json.dumps(written)


def test_saved_job_and_schedule_commands_print_json(server: ServerProcess, tmp_path: Path) -> None:
    saved, name = f"j-{secrets.token_hex(3)}", f"s-{secrets.token_hex(3)}"
    assert json.loads(cloudpipe(server, "saved", "save", saved, "echo saved", "--json").stdout)["version"] == 1
    assert saved in [row["name"] for row in json.loads(cloudpipe(server, "saved", "ls", "--json").stdout)]
    assert json.loads(cloudpipe(server, "saved", "show", saved, "--json").stdout)["cmd"] == "echo saved"
    ran = json.loads(cloudpipe(server, "saved", "run", "--wait", "--json", saved).stdout)
    assert ran["status"] == "done" and ran["result"] == "saved\n"
    created = cloudpipe(server, "schedules", "create", name, "@daily", "--saved-job", saved, "--json")
    assert json.loads(created.stdout)["name"] == name
    assert json.loads(cloudpipe(server, "schedules", "show", name, "--json").stdout)["runs"] == saved
    assert json.loads(cloudpipe(server, "schedules", "pause", name, "--json").stdout)["paused"] is True
    assert json.loads(cloudpipe(server, "schedules", "resume", name, "--json").stdout)["paused"] is False
    assert len(json.loads(cloudpipe(server, "schedules", "preview", name, "-n", "2", "--json").stdout)) == 2
    fired = json.loads(cloudpipe(server, "schedules", "trigger", "--wait", "--json", name).stdout)
    assert fired["status"] == "done"
    assert json.loads(cloudpipe(server, "schedules", "history", name, "--json").stdout)[0]["manual"] is True
    assert any(r["name"] == name for r in json.loads(cloudpipe(server, "schedules", "ls", "--json").stdout))
    assert json.loads(cloudpipe(server, "schedules", "rm", name, "--json").stdout) == {"deleted": name}
    assert json.loads(cloudpipe(server, "saved", "rm", saved, "--json").stdout) == {"deleted": saved}
    path = tmp_path / "a.toml"
    path.write_text(f'[saved_jobs.{saved}]\ncmd = "true"\n')
    applied = json.loads(cloudpipe(server, "apply", "--json", str(path)).stdout)
    assert applied["counts"]["create"] == 1 and applied["changes"][0]["name"] == saved


@pytest.mark.parametrize("path", [path for path, _ in sdk_commands()])
def test_help_of_every_command_runs(path: str) -> None:
    shown = cloudpipe(None, *path.split(), "--help")
    assert shown.exit_code == 0, shown.stderr
    assert any(line.strip().startswith("cloudpipe") and path in line for line in shown.stdout.splitlines())
