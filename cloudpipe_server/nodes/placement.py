"""Where a job goes: the node, among those that answer and are not drained, with the
least of its capacity reserved by the jobs it runs (the larger of the cpu and memory
fractions, the job itself included), so load spreads and a node is not filled while
another idles. Reservations are each job's limits; a job over every node's whole
capacity fits none, ever (the executor fails it, as one engine refuses a container
larger than itself)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass
class NodeLoad:
    """One node as placement sees it."""

    name: str
    cpus: float
    memory_bytes: int
    up: bool = True
    draining: bool = False
    known: bool = True  # its capacity is known (False until its engine first answered)
    reserved_cpus: float = 0.0
    reserved_memory: int = 0
    running: int = 0

    def after(self, cpus: float, memory_bytes: int) -> float:
        """The fraction of this node reserved once a job of this size is added."""
        return max((self.reserved_cpus + cpus) / self.cpus, (self.reserved_memory + memory_bytes) / self.memory_bytes)


@dataclass(frozen=True)
class NoNode:
    """No node can take the job; `reason` says why, for the job's record. `ever`: no
    node could hold it even idle (the job is too big for every one of them), as opposed
    to none being available now."""

    reason: str
    ever: bool = False


def place(
    nodes: Sequence[NodeLoad], cpus: float, memory_bytes: int, exclude: Collection[str] = ()
) -> NodeLoad | NoNode:
    """The node for a job of this size, leaving out the nodes named in `exclude` (tried
    already); whether it fits no node ever is judged over every node."""
    usable = [node for node in nodes if node.up and not node.draining and node.name not in exclude]
    if not usable:
        down = sum(1 for node in nodes if not node.up)
        return NoNode(f"no node is available ({down} of {len(nodes)} down, the rest drained)")
    fitting = [node for node in usable if cpus <= node.cpus and memory_bytes <= node.memory_bytes]
    if not fitting:
        biggest = max(nodes, key=lambda node: (node.cpus, node.memory_bytes))
        too_big = all(node.known and (cpus > node.cpus or memory_bytes > node.memory_bytes) for node in nodes)
        return NoNode(
            f"no {'' if too_big else 'available '}node has {cpus:g} cpus and {memory_bytes} bytes of memory"
            f" (the largest, {biggest.name}: {biggest.cpus:g} cpus, {biggest.memory_bytes} bytes)",
            ever=too_big,
        )
    return min(fitting, key=lambda node: (node.after(cpus, memory_bytes), node.running, node.name))
