"""Generate the Python code for protos/ into cloudpipe_proto/ (the only writer of it).

    python scripts/gen_protos.py           # regenerate
    python scripts/gen_protos.py --check   # exit 1 when the committed code is stale

The proto tree mirrors the package path (protos/cloudpipe_proto/v1/x.proto), so protoc
writes `from cloudpipe_proto.v1 import x_pb2` imports that work as they are.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE = "cloudpipe_proto"


def generate(out_dir: Path) -> None:
    """Run protoc over every .proto under protos/ into out_dir."""
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for folder in (out_dir / PACKAGE).rglob("*"):
        if folder.is_dir():
            (folder / "__init__.py").touch()
    (out_dir / PACKAGE / "__init__.py").write_text('"""Generated gRPC code; see scripts/gen_protos.py."""\n')


def _written(root: Path) -> set[Path]:
    """The files of root that the generator writes (or would have written): its `.py` and
    `.pyi` files, never what Python or a tool leaves beside them (`__pycache__/*.pyc`)."""
    return {
        path.relative_to(root)
        for path in root.rglob("*")
        if path.suffix in {".py", ".pyi"} and "__pycache__" not in path.relative_to(root).parts and path.is_file()
    }


def _differences(a: Path, b: Path) -> list[str]:
    diffs: list[str] = []
    names = _written(a) | _written(b)
    for name in sorted(names):
        left, right = a / name, b / name
        if not (left.exists() and right.exists() and filecmp.cmp(left, right, shallow=False)):
            diffs.append(str(name))
    return diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when cloudpipe_proto/ is stale")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = Path(tmp) / PACKAGE
        if options.check:
            diffs = _differences(fresh, ROOT / PACKAGE)
            if diffs:
                print("generated code is stale; run: python scripts/gen_protos.py", file=sys.stderr)
                for name in diffs:
                    print(f"  {name}", file=sys.stderr)
                return 1
            return 0
        shutil.rmtree(ROOT / PACKAGE, ignore_errors=True)
        shutil.copytree(fresh, ROOT / PACKAGE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
