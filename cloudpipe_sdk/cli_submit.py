"""`cloudpipe submit`: a shell command or a Python `module:function` call, with a flag
for every SDK job option; `--wait` streams the job live and exits with its code.

Registered on the main group through `cli_jobs.register`; errors and exit codes are
the main group's (see cli.py).
"""

from __future__ import annotations

import ast
import importlib
import re
import shlex
import sys
from typing import Any

import click

from cloudpipe_sdk._client import Client
from cloudpipe_sdk.cli_live import attach_to, run_to_end
from cloudpipe_sdk.cli_output import emit, json_option
from cloudpipe_sdk.cli_tty import detach_keys_option

_FUNCTION = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


class CommandError(click.ClickException):
    """Bad usage found after parsing: exit code 2, like click's usage errors."""

    exit_code = 2


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"{what}: expected KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def _mounts(values: tuple[str, ...]) -> dict[str, str]:
    """`--volume NAME:/PATH[:ro]` options as the `volumes` job option (path -> name)."""
    mounts: dict[str, str] = {}
    for item in values:
        name, _, rest = item.partition(":")
        path, _, mode = rest.partition(":")
        if not name or not path or mode not in ("", "ro", "rw"):
            raise CommandError(f"--volume: expected NAME:/PATH or NAME:/PATH:ro, got {item!r}")
        if path in mounts:
            raise CommandError(f"--volume: two volumes at {path}")
        mounts[path] = f"{name}:{mode}" if mode else name
    return mounts


def _transfers(values: tuple[str, ...], flag: str) -> dict[str, str]:
    """`--input PATH=URL` / `--output PATH=URL` options as a path -> URL mapping."""
    found: dict[str, str] = {}
    for item in values:
        path, sep, url = item.partition("=")
        if not sep or not path or not url:
            raise CommandError(f"{flag}: expected /PATH=URL, got {item!r}")
        if path in found:
            raise CommandError(f"{flag}: {path} is given twice")
        found[path] = url
    return found


def _argument(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _load_function(target: str) -> Any:
    """`module:function` imported from the current directory."""
    module_name, _, attribute = target.partition(":")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandError(f"cannot import {module_name}: {exc}") from None
    fn: Any = module
    for part in attribute.split("."):
        fn = getattr(fn, part, None)
    if not callable(fn):
        raise CommandError(f"{target}: not a function")
    return fn  # its module and the project modules it uses travel by value (_shipping)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("command")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--image", help="Docker image (default: the server's)")
@click.option("--cpus", type=float, help="CPU cores (fractions allowed)")
@click.option("--memory", help="memory limit, bytes or like 512M, 2G")
@click.option("--timeout", type=float, help="longest run time in seconds")
@click.option("--env", "env_pairs", multiple=True, metavar="KEY=VALUE", help="environment variable (repeatable)")
@click.option("--tag", "tag_pairs", multiple=True, metavar="KEY=VALUE", help="tag (repeatable)")
@click.option("--name", help="a name to find the job by")
@click.option("--network", is_flag=True, help="give the job a network")
@click.option(
    "--retries", type=click.IntRange(min=0), help="module:function only: call it again up to N times when it raises"
)
@click.option("--restartable", is_flag=True, default=None, help="requeue the job if its runner is lost")
@click.option(
    "--fresh-container",
    is_flag=True,
    default=None,
    help="never run in a warm container (long jobs; re-adopted on restart)",
)
@click.option(
    "--volume",
    "volume_mounts",
    multiple=True,
    metavar="NAME:/PATH[:ro]",
    help="mount your volume NAME at /PATH, read-only with :ro (repeatable)",
)
@click.option(
    "--secret",
    "secret_uses",
    multiple=True,
    metavar="NAME[:/PATH]",
    help="give the job your secret NAME as the environment variable NAME, or as the file /PATH (repeatable)",
)
@click.option(
    "--input",
    "input_pairs",
    multiple=True,
    metavar="/PATH=URL",
    help="fetch URL (s3://bucket/key, https://...) into the container at /PATH before the job starts (repeatable)",
)
@click.option(
    "--output",
    "output_pairs",
    multiple=True,
    metavar="/PATH=URL",
    help="upload /PATH to s3://bucket/key after the job ended done; /DIR/=s3://bucket/prefix/ for a directory"
    " (repeatable)",
)
@click.option(
    "--storage-secret",
    metavar="NAME",
    help="your secret holding the object store's credentials (JSON), for s3:// inputs and outputs",
)
@click.option(
    "--interactive",
    is_flag=True,
    help="keep the job's stdin open for `cloudpipe attach` (with --wait: attach now)",
)
@click.option(
    "--tty",
    "-t",
    "with_tty",
    is_flag=True,
    help="give the job a terminal (implies --interactive; stdout and stderr as one stream); "
    "attached from a terminal, ours is raw, with its window size",
)
@detach_keys_option
@click.option(
    "--result-file",
    metavar="PATH",
    help="the result is this file in the container, not stdout (shell commands)",
)
@click.option("--idempotency-key", help="a retried submit with the same key makes no second job")
@click.option("--depends-on", "depends_on", multiple=True, type=int, help="run after this job ended done (repeatable)")
@click.option("--stdin", "stdin_file", type=click.File("rb"), help="file fed to the job's stdin ('-' for ours)")
@click.option("--serializer", type=click.Choice(["cloudpickle", "dill"]), help="for module:function calls")
@click.option(
    "--shell",
    "force_shell",
    is_flag=True,
    help="treat COMMAND as a shell command even if it looks like module:function",
)
@click.option(
    "--wait",
    is_flag=True,
    help="print the job's stdout and stderr as it runs, then its result; exit with the job's exit code",
)
@json_option
@click.pass_obj
def submit(
    client: Client,
    /,
    command: str,
    args: tuple[str, ...],
    env_pairs: tuple[str, ...],
    tag_pairs: tuple[str, ...],
    volume_mounts: tuple[str, ...],
    secret_uses: tuple[str, ...],
    input_pairs: tuple[str, ...],
    output_pairs: tuple[str, ...],
    depends_on: tuple[int, ...],
    stdin_file: Any,
    force_shell: bool,
    wait: bool,
    interactive: bool,
    with_tty: bool,
    detach_keys: bytes,
    result_file: str | None,
    idempotency_key: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Submit COMMAND (a shell command; extra ARGS are appended, quoted) or a Python
    call `module:function ARGS...` (ARGS as Python literals, else strings;
    `key=value` ones are keyword arguments). Prints the job id.

    With --wait, the job's stdout and stderr are printed live (to ours) while it runs,
    then a function's result; the exit code is the job's: 0 when it ended done, a shell
    command's own non-zero exit code, else 1 (a function that raised, a killed job).
    With --json: {"id": ...}, or with --wait JSON lines ({"stream", "text"} for
    output, then {"exit": {"status", "return_code", "result" or "error"...}}).
    With --interactive or --tty, --wait attaches at once (as `cloudpipe attach`; a
    --tty job from a terminal gets it raw, Ctrl-P Ctrl-Q or --detach-keys detach, exit
    130) and exits with the job's code.

    \b
    cloudpipe submit 'echo hello'
    cloudpipe submit --cpus 2 --memory 1G -- make -j2 test
    cloudpipe submit --volume mydata:/data --volume ref:/ref:ro 'cp /ref/in /data/'
    cloudpipe submit --secret API_TOKEN --secret DB_PASSWORD:/run/secrets/db 'deploy.sh'
    cloudpipe submit --storage-secret S3 --input /in/a=s3://data/a --output /out/=s3://data/run1/ 'sort /in/a >/out/s'
    cloudpipe submit --wait math:factorial 20
    cloudpipe submit --wait --retries 2 mytasks:flaky
    cloudpipe submit --interactive --wait 'python3 -i'
    cloudpipe submit --tty --wait bash          # a shell with a terminal; Ctrl-P Ctrl-Q detaches
    cloudpipe submit --wait --result-file /tmp/out.txt 'date > /tmp/out.txt'
    cloudpipe submit --json --wait 'echo hi'
    """
    job_options = {key: value for key, value in options.items() if value is not None}
    job_options.update(env=_pairs(env_pairs, "--env"), tags=_pairs(tag_pairs, "--tag"))
    job_options["volumes"] = _mounts(volume_mounts)
    job_options["secrets"] = list(secret_uses)  # "NAME" or "NAME:/path", checked by JobOptions
    job_options["inputs"] = _transfers(input_pairs, "--input")
    job_options["outputs"] = _transfers(output_pairs, "--output")
    if _FUNCTION.fullmatch(command) and not force_shell:
        shell_only = {
            "--stdin": stdin_file is not None,
            "--depends-on": bool(depends_on),
            "--interactive": interactive,
            "--tty": with_tty,
            "--result-file": result_file is not None,
            "--idempotency-key": idempotency_key is not None,
        }
        used = [flag for flag, given in shell_only.items() if given]
        if used:
            raise CommandError(f"{', '.join(used)}: for shell commands, not module:function calls")
        fn = _load_function(command)
        positional = [_argument(a) for a in args if not re.match(r"^[A-Za-z_]\w*=", a)]
        keywords = {k: _argument(v) for k, _, v in (a.partition("=") for a in args if re.match(r"^[A-Za-z_]\w*=", a))}
        job = client.with_options(**job_options).submit(fn, *positional, **keywords)
    else:
        if job_options.pop("serializer", None):
            raise CommandError("--serializer: for module:function calls, not shell commands")
        if job_options.get("retries"):
            raise CommandError(
                "--retries: only module:function calls are retried (the function is called again when it "
                "raises); a shell command that fails is not run again. Use --restartable to requeue it "
                "when its runner is lost, or retry inside the command"
            )
        cmd = " ".join([command, *(shlex.quote(a) for a in args)])
        stdin = stdin_file.read() if stdin_file is not None else None
        job = client.shell(
            cmd,
            stdin=stdin,
            depends_on=depends_on,
            interactive=interactive,
            tty=with_tty,
            result_source=f"file:{result_file}" if result_file else "stdout",
            idempotency_key=idempotency_key,
            **job_options,
        )
    if not wait:
        if as_json:
            emit({"id": job.id})
        else:
            click.echo(job.id)
        return
    if interactive or with_tty:
        sys.exit(attach_to(job, job_code=True, as_json=as_json, detach_keys=detach_keys))
    sys.exit(run_to_end(job, as_json=as_json))
