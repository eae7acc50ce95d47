"""The import graph points one way: programs that talk over the wire never import each
other, and the shared plumbing imports none of them.

    cloudpipe_common   <- the server side; imports no other Cloudpipe package
    cloudpipe_proto    <- the SDK, the gateway, the server
    cloudpipe_sdk      <- the gateway; only the wire code (it is its own distribution,
                       sdk/pyproject.toml: nothing of the server's side)
    http_gateway       a gRPC client: protos, SDK, common
    cloudpipe_auth     the auth service: common only
    cloudpipe_server   never the auth service (it talks to it over HTTPS)

Every import counts, including ones inside functions and under TYPE_CHECKING."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import ROOT

OURS = ("cloudpipe_common", "cloudpipe_proto", "cloudpipe_sdk", "http_gateway", "cloudpipe_auth", "cloudpipe_server")
ALLOWED = {
    "cloudpipe_common": set(),
    "cloudpipe_sdk": {"cloudpipe_proto"},
    "http_gateway": {"cloudpipe_proto", "cloudpipe_sdk", "cloudpipe_common"},
    "cloudpipe_auth": {"cloudpipe_common"},
    "cloudpipe_server": {"cloudpipe_proto", "cloudpipe_common"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_packages_below_it(package: str) -> None:
    crossings = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        wrong = (imported_packages(path) & set(OURS)) - ALLOWED[package] - {package}
        if wrong:
            crossings[str(path.relative_to(ROOT))] = sorted(wrong)
    assert not crossings, f"{package} may import only {sorted(ALLOWED[package])}: {crossings}"


def test_the_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from cloudpipe_server.app import start_server\n    import cloudpipe_auth.pki\n")
    assert imported_packages(module) == {"cloudpipe_server", "cloudpipe_auth"}
