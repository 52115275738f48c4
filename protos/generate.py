"""Regenerate the Python code for the ccs.v1 protos, or check that it is current.

    python protos/generate.py          # write ccs/v1/*_pb2*.py and .pyi
    python protos/generate.py --check  # exit 1 if the checked-in code is stale
    python protos/generate.py --previous REF  # snapshot the schema of release REF for the tests

``--previous`` writes the descriptors of the protos as they were at git commit REF (the last
release that landed) to ``tests/data/protos-previous/``: a serialized ``FileDescriptorSet``
built by the same protoc, and ``SOURCE`` naming REF. The compatibility tests
(``tests/unit/test_proto_compat.py``) check the current schema against it, so an agent one
release older keeps working against a newer server. Refresh it at each release, never by hand.

The generated modules live in the ``ccs.v1`` package (the proto package), are never
edited by hand, and are regenerated whole: protoc output is deterministic for a given
grpcio-tools version, so ``--check`` compares bytes.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_PKG = Path("ccs") / "v1"
PREVIOUS_DIR = ROOT / "tests" / "data" / "protos-previous"
PREVIOUS_SET = PREVIOUS_DIR / "ccs-v1.binpb"


def _protoc(proto_root: Path, outputs: list[str]) -> list[Path]:
    """Run grpcio-tools' protoc over the ccs.v1 protos under proto_root; return the .proto files."""
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted((proto_root / "ccs" / "v1").glob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{proto_root}", f"-I{include}", *outputs,
            *[str(p.relative_to(proto_root)) for p in protos]]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return protos


def generate(out_root: Path) -> list[Path]:
    _protoc(PROTO_ROOT, [f"--python_out={out_root}", f"--pyi_out={out_root}",
                         f"--grpc_python_out={out_root}"])
    return sorted((out_root / OUT_PKG).glob("*_pb2*"))


def snapshot_previous(ref: str, out_dir: Path = PREVIOUS_DIR) -> None:
    """Write the FileDescriptorSet of the protos at git commit ``ref`` (imports included, so the
    set builds a descriptor pool on its own; no source info, so the bytes depend only on the
    schema and the protoc version)."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                            check=True, capture_output=True, text=True).stdout.strip()
    listing = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", commit, "protos/ccs/v1/"],
                             check=True, capture_output=True, text=True).stdout.split()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in listing:
            if not name.endswith(".proto"):
                continue
            text = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{name}"],
                                  check=True, capture_output=True).stdout
            dest = root / Path(name).relative_to("protos")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(text)
        out_dir.mkdir(parents=True, exist_ok=True)
        _protoc(root, [f"--descriptor_set_out={out_dir / PREVIOUS_SET.name}", "--include_imports"])
    (out_dir / "SOURCE").write_text(
        f"{commit}\n"
        "The ccs.v1 protos of the previous release, compiled by protos/generate.py --previous REF.\n"
        "Refresh at each release; never edit by hand.\n")
    print(f"wrote {out_dir / PREVIOUS_SET.name} from {commit}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if checked-in code is stale")
    parser.add_argument("--previous", metavar="REF",
                        help="snapshot the descriptors of the protos at git commit REF for the compatibility tests")
    parser.add_argument("--out", type=Path, default=PREVIOUS_DIR, help="where --previous writes (default: %(default)s)")
    opts = parser.parse_args()
    if opts.previous:
        snapshot_previous(opts.previous, opts.out)
        return 0
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
