"""Regenerate the Python code for the ccs.v1 protos, or check that it is current.

    python protos/generate.py          # write ccs/v1/*_pb2*.py and .pyi
    python protos/generate.py --check  # exit 1 if the checked-in code is stale

The generated modules live in the ``ccs.v1`` package (the proto package), are never
edited by hand, and are regenerated whole: protoc output is deterministic for a given
grpcio-tools version, so ``--check`` compares bytes.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_PKG = Path("ccs") / "v1"


def generate(out_root: Path) -> list[Path]:
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted((PROTO_ROOT / "ccs" / "v1").glob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *[str(p.relative_to(PROTO_ROOT)) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted((out_root / OUT_PKG).glob("*_pb2*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if checked-in code is stale")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        produced = generate(Path(tmp))
        target = ROOT / OUT_PKG
        stale = []
        for path in produced:
            dest = target / path.name
            if opts.check:
                if not dest.exists() or not filecmp.cmp(path, dest, shallow=False):
                    stale.append(dest.name)
            else:
                shutil.copyfile(path, dest)
        if opts.check:
            wanted = {p.name for p in produced}
            stale += [p.name for p in target.glob("*_pb2*") if p.name not in wanted]
            if stale:
                print(f"generated code is stale: {', '.join(sorted(stale))}; "
                      "run: python protos/generate.py", file=sys.stderr)
                return 1
            print("generated code is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
