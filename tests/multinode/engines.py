"""Real Docker engines, each a host of its own, on this one machine: every node is a
network namespace with its own dockerd (own data root, hostname, engine ID, bridge
subnet and cgroup parent), joined to the others by a switch namespace on a private
subnet that exists only inside these namespaces. Tests reach each engine through its
API socket, a file on this machine's filesystem, so no traffic leaves the namespaces.
The recipe and its measurements: ../shared/notes/multi-node-docker.md.

    with EngineCluster(3) as cluster:
        cluster.nodes[0].socket       # unix socket path of node 1's engine
        cluster.stop(cluster.nodes[1])  # kill its dockerd (a node that dies)
        cluster.start(cluster.nodes[1])  # the same engine back, its containers re-adopted

Everything is torn down on exit, whatever happened: each dockerd and its containerd
shims, their cgroups, the namespaces and the work directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

# cgroup v1 controllers a node's dockerd needs mounted (`ip netns exec` remounts /sys,
# which hides the machine's), plus the named systemd hierarchy and cgroup2's unified
CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
SUBNET = "10.231.0"  # the nodes' private /24: 10.231.0.<10 + n>
START_TIMEOUT = 30.0


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@dataclass
class Node:
    """One engine: `name` (node1, node2, ...), its address on the private subnet, its
    API socket and its directory (data root, exec root, pid file, log)."""

    name: str
    index: int
    directory: Path

    @property
    def address(self) -> str:
        return f"{SUBNET}.{10 + self.index}"

    @property
    def socket(self) -> Path:
        return self.directory / "docker.sock"

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid_file(self) -> Path:
        return self.directory / "docker.pid"

    @property
    def log(self) -> Path:
        return self.directory / "dockerd.log"

    @property
    def exec_root(self) -> Path:
        return self.directory / "exec"

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None


class EngineCluster:
    """`count` engines in network namespaces (see the module docstring)."""

    def __init__(self, count: int, *, prefix: str = "cpnode") -> None:
        self._prefix = prefix
        self._switch = f"{prefix}-sw"
        self._directory = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
        self.nodes = [Node(f"node{n}", n, self._directory / f"node{n}") for n in range(1, count + 1)]
        self._processes: dict[str, subprocess.Popen[bytes]] = {}  # the dockerd of each node (exec'd: same pid)

    # -- life -------------------------------------------------------------------------

    def __enter__(self) -> EngineCluster:
        try:
            self._make_network()
            for node in self.nodes:
                self.start(node, wait=False)
            for node in self.nodes:
                self.wait_ready(node)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop every engine and remove everything the cluster made (never raises)."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                self.stop(node)
            with contextlib.suppress(Exception):
                self._remove_cgroups(node)
        for namespace in [self._namespace(node) for node in self.nodes] + [self._switch]:
            subprocess.run(["ip", "netns", "delete", namespace], capture_output=True, timeout=30)
        for node in self.nodes:
            with contextlib.suppress(OSError):
                subprocess.run(["umount", "-l", str(node.directory / "run")], capture_output=True, timeout=30)
        shutil.rmtree(self._directory, ignore_errors=True)

    def _namespace(self, node: Node) -> str:
        return f"{self._prefix}{node.index}"

    # -- the network ------------------------------------------------------------------

    def _make_network(self) -> None:
        _run("ip", "netns", "add", self._switch)
        _run("ip", "netns", "exec", self._switch, "ip", "link", "add", "br0", "type", "bridge")
        _run("ip", "netns", "exec", self._switch, "ip", "link", "set", "br0", "up")
        _run("ip", "netns", "exec", self._switch, "ip", "link", "set", "lo", "up")
        for node in self.nodes:
            namespace = self._namespace(node)
            outside, inside = f"{namespace}-sw", f"{namespace}-in"
            _run("ip", "netns", "add", namespace)
            _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
            _run("ip", "link", "set", outside, "netns", self._switch)
            _run("ip", "link", "set", inside, "netns", namespace)
            _run("ip", "netns", "exec", self._switch, "ip", "link", "set", outside, "master", "br0", "up")
            _run("ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up")
            _run("ip", "netns", "exec", namespace, "ip", "link", "set", inside, "name", "eth0")
            _run("ip", "netns", "exec", namespace, "ip", "addr", "add", f"{node.address}/24", "dev", "eth0")
            _run("ip", "netns", "exec", namespace, "ip", "link", "set", "eth0", "up")

    # -- engines ----------------------------------------------------------------------

    def start(self, node: Node, *, wait: bool = True) -> None:
        """Start (or restart) the node's dockerd inside its namespace."""
        for sub in ("root", "exec", "run", "etc-docker"):
            (node.directory / sub).mkdir(parents=True, exist_ok=True)
        mounts = "; ".join(
            [
                "mount -t tmpfs cgroup /sys/fs/cgroup",
                *(
                    f"mkdir -p /sys/fs/cgroup/{c} && mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}"
                    for c in CONTROLLERS
                ),
                "mkdir -p /sys/fs/cgroup/systemd && mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd",
                "mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 none /sys/fs/cgroup/unified",
                f"mount --bind {node.directory / 'run'} /run",
                f"mount --bind {node.directory / 'etc-docker'} /etc/docker",
            ]
        )
        third = 100 + node.index  # each engine's own bridge and address pool
        dockerd = " ".join(
            [
                "exec dockerd",
                f"--data-root {node.directory / 'root'}",
                f"--exec-root {node.exec_root}",
                f"-H {node.base_url}",
                f"--pidfile {node.pid_file}",
                f"--cgroup-parent /{self._namespace(node)}",
                f"--bip 172.{third}.0.1/24",
                f"--default-address-pool base=172.{third}.0.0/16,size=24",
                "--userland-proxy=false",
            ]
        )
        script = f"set -e; hostname {node.name}; mkdir -p /etc/docker; {mounts}; {dockerd}"
        with open(node.log, "ab") as log:
            self._processes[node.name] = subprocess.Popen(
                ["ip", "netns", "exec", self._namespace(node), "unshare", "--uts", "--mount", "sh", "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        if wait:
            self.wait_ready(node)

    def wait_ready(self, node: Node) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            info = subprocess.run(
                ["docker", "-H", node.base_url, "info", "--format", "{{.Name}}"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            if info.returncode == 0 and info.stdout.strip() == node.name:
                return
            time.sleep(0.2)
        tail = node.log.read_text(errors="replace")[-2000:] if node.log.exists() else ""
        raise RuntimeError(f"{node.name}'s dockerd did not answer in {START_TIMEOUT} s; its log ends:\n{tail}")

    def stop(self, node: Node, *, sig: int = signal.SIGKILL) -> None:
        """Kill the node's dockerd and its containerd shims (a node that dies)."""
        process = self._processes.pop(node.name, None)
        pid = node.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)  # reaped here, or it would linger as a zombie
        for shim in _processes_mentioning(str(node.exec_root)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(shim, signal.SIGKILL)
        node.pid_file.unlink(missing_ok=True)
        node.socket.unlink(missing_ok=True)

    def _remove_cgroups(self, node: Node) -> None:
        for controller in (*CONTROLLERS, "systemd"):
            root = Path("/sys/fs/cgroup") / controller / self._namespace(node)
            if root.exists():
                for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                    if path.is_dir():
                        with contextlib.suppress(OSError):
                            path.rmdir()
                with contextlib.suppress(OSError):
                    root.rmdir()


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
    return found
