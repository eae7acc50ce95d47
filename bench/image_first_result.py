"""Time to a first result on an image: a new `Image` (the server builds it, then the
job runs) and the same Image again (a cache hit), against `docker build` + `docker run`
of the same Dockerfile, new and cached, measured in the same run.

    python -m bench.image_first_result [--rounds 1]

The image adds a Debian package (apt in the build container) to the Python 3 runner;
every round starts with a step holding a fresh nonce, so neither path reuses the
engine's layer cache for its "new" build. Prints seconds per path and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from cloudpipe_sdk import Image
from tests.support import start_server

RUNNER = "cloudpipe/runner-python3:latest"
COMMAND = "figlet -v | head -1"
EXPECTED = b"FIGlet Copyright"


def image(nonce: str) -> Image:
    return Image.runner().run_commands(f"echo {nonce}").apt_install("figlet")


def dockerfile(nonce: str) -> str:
    return (
        f"FROM {RUNNER}\nUSER root\nRUN echo {nonce}\n"
        "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends figlet"
        " && rm -rf /var/lib/apt/lists/*\nUSER 1000:1000\n"
    )


def cloudpipe_round(address: str, key: str) -> tuple[float, float, str]:
    from cloudpipe_sdk import Client

    spec = image(uuid.uuid4().hex)
    times = []
    reference = ""
    for _ in range(2):  # new, then cached (a new client: nothing remembered SDK-side)
        with Client(address, api_key=key) as client:
            started = time.perf_counter()
            job = client.with_options(image=spec).shell(COMMAND)
            assert job.result(timeout=900).startswith(EXPECTED)
            times.append(time.perf_counter() - started)
            reference = job.snapshot.image
    return times[0], times[1], reference


def docker_round(folder: Path) -> tuple[float, float, str]:
    (folder / "Dockerfile").write_text(dockerfile(uuid.uuid4().hex))
    tag = f"cloudpipe-bench/image-first-result:{uuid.uuid4().hex[:8]}"
    times = []
    for _ in range(2):
        started = time.perf_counter()
        subprocess.run(["docker", "build", "-q", "-t", tag, str(folder)], check=True, capture_output=True)
        out = subprocess.run(["docker", "run", "--rm", tag, "bash", "-c", COMMAND], check=True, capture_output=True)
        assert out.stdout.startswith(EXPECTED)
        times.append(time.perf_counter() - started)
    return times[0], times[1], tag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    cp_new, cp_cached, dk_new, dk_cached = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "server", env={"CLOUDPIPE_LOG_LEVEL": "WARNING"})
        try:
            for _ in range(args.rounds):
                new, cached, reference = cloudpipe_round(server.address, server.api_key)
                cp_new.append(new)
                cp_cached.append(cached)
                subprocess.run(["docker", "rmi", "-f", reference], check=False, capture_output=True)
                (Path(tmp) / "ctx").mkdir(exist_ok=True)
                new, cached, tag = docker_round(Path(tmp) / "ctx")
                dk_new.append(new)
                dk_cached.append(cached)
                subprocess.run(["docker", "rmi", "-f", tag], check=False, capture_output=True)
        finally:
            server.stop()
    rows = [
        ("new image", statistics.median(cp_new), statistics.median(dk_new)),
        ("cached image", statistics.median(cp_cached), statistics.median(dk_cached)),
    ]
    print(f"time to first result, median of {args.rounds} round(s), seconds")
    print(f"{'':14} {'Cloudpipe':>10} {'docker build+run':>17} {'ratio':>7}")
    for name, ours, theirs in rows:
        print(f"{name:14} {ours:10.2f} {theirs:17.2f} {ours / theirs:6.2f}x")


if __name__ == "__main__":
    main()
