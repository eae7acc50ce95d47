"""Declared nodes (CLOUDPIPE_NODES_FILE) and placement: pure rules, no engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.nodes.placement import NodeLoad, NoNode, place
from cloudpipe_server.nodes.spec import NodeSpec, load_nodes, parse_nodes


def test_nodes_parse_with_optional_labels_and_capacity() -> None:
    text = (
        '[{"name": "n1", "url": "unix:///run/n1.sock"}, {"name": "n2", "url": "tcp://10.0.0.2:2376",'
        ' "labels": {"gpu": "1"}, "cpus": 8, "memory_bytes": 1073741824}]'
    )
    assert parse_nodes(text) == [
        NodeSpec("n1", "unix:///run/n1.sock"),
        NodeSpec("n2", "tcp://10.0.0.2:2376", {"gpu": "1"}, 8.0, 1 << 30),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ("[]", "non-empty JSON list"),
        ('[{"name": "n1"}]', r"nodes\[0\].url"),
        ('[{"name": "N 1", "url": "unix:///x"}]', r"nodes\[0\].name"),
        ('[{"name": "n1", "url": "http://x"}]', r"nodes\[0\].url"),
        ('[{"name": "n1", "url": "unix:///x", "cpus": -1}]', r"nodes\[0\].cpus"),
        ('[{"name": "n1", "url": "unix:///x", "cpus": NaN}]', r"nodes\[0\].cpus"),
        ('[{"name": "n1", "url": "unix:///x", "memory_bytes": true}]', r"nodes\[0\].memory_bytes"),
        ('[{"name": "n1", "url": "unix:///x", "labels": {"a": 1}}]', r"nodes\[0\].labels"),
        ('[{"name": "n1", "url": "unix:///x", "zone": "a"}]', "unknown field"),
        ('[{"name": "n1", "url": "unix:///x"}, {"name": "n1", "url": "unix:///y"}]', "used twice"),
    ],
)
def test_bad_node_lists_are_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_nodes(text)


def test_placement_spreads_by_the_reserved_fraction_and_skips_down_and_drained_nodes() -> None:
    nodes = [NodeLoad("a", 4, 8 << 30), NodeLoad("b", 2, 8 << 30), NodeLoad("c", 4, 8 << 30, up=False)]
    chosen = []
    for _ in range(5):
        node = place(nodes, 1.0, 1 << 30)
        assert isinstance(node, NodeLoad)
        node.reserved_cpus += 1
        node.reserved_memory += 1 << 30
        node.running += 1
        chosen.append(node.name)
    # a (4 cpus) takes two for each one b (2 cpus) takes; c is down
    assert chosen == ["a", "b", "a", "a", "b"]
    nodes[0].draining = True
    assert place(nodes, 1.0, 1 << 30) is nodes[1]


def test_a_job_too_big_for_every_node_or_for_those_available_is_not_placed_and_says_why() -> None:
    nodes = [NodeLoad("a", 2, 4 << 30)]
    assert place(nodes, 4.0, 1 << 30) == NoNode(
        "no node has 4 cpus and 1073741824 bytes of memory (the largest, a: 2 cpus, 4294967296 bytes)", ever=True
    )
    nodes.append(NodeLoad("b", 8, 4 << 30, draining=True))  # big enough, but drained: not now
    assert place(nodes, 4.0, 1 << 30) == NoNode(
        "no available node has 4 cpus and 1073741824 bytes of memory (the largest, b: 8 cpus, 4294967296 bytes)"
    )
    nodes[0].up = False
    nodes.pop()
    assert place(nodes, 1.0, 1 << 30) == NoNode("no node is available (1 of 1 down, the rest drained)")


def test_a_job_is_too_big_ever_only_by_every_node_known_not_only_those_left() -> None:
    big, small = NodeLoad("big", 8, 16 << 30), NodeLoad("small", 2, 16 << 30)
    # the big node was tried already (it did not answer): not now, but it is not too big
    assert place([big, small], 4.0, 1 << 30, exclude={"big"}) == NoNode(
        "no available node has 4 cpus and 1073741824 bytes of memory (the largest, big: 8 cpus, 17179869184 bytes)"
    )
    # a node whose engine never answered yet may be big enough: not "ever"
    unknown = NodeLoad("later", 1, 1 << 30, up=False, known=False)
    verdict = place([small, unknown], 4.0, 1 << 30)
    assert isinstance(verdict, NoNode) and not verdict.ever


def test_a_tcp_node_needs_the_engines_mutual_tls(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes.json"
    nodes.write_text('[{"name": "n1", "url": "unix:///run/n1.sock"}, {"name": "n2", "url": "tcp://10.0.0.2:2376"}]')
    with pytest.raises(InvalidArgument, match="node n2 is tcp://, which needs the engine's mutual TLS"):
        load_nodes(str(nodes), {})
    tls = {"DOCKER_CERT_PATH": "/etc/cloudpipe/docker", "DOCKER_TLS_VERIFY": "1"}
    assert [node.name for node in load_nodes(str(nodes), tls)] == ["n1", "n2"]
