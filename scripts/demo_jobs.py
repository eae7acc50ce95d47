"""The demo of scripts/demo.sh: one shell job and one Python function job."""

from __future__ import annotations

import statistics

from cloudpipe_sdk import Client


def summarize(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "stdev": statistics.stdev(values)}


def main() -> None:
    with Client() as client:
        shell = client.shell("echo hello from $(hostname) as $(id -un)")
        print(f"shell job {shell.id}: {shell.result(timeout=120).decode().strip()}")
        function = client.submit(summarize, [1.0, 2.0, 4.0, 8.0])
        print(f"function job {function.id}: summarize([1, 2, 4, 8]) = {function.result(timeout=120)}")


if __name__ == "__main__":
    main()
