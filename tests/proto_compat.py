"""Wire and JSON compatibility of the ccs.v1 protos with the previous release's schema.

An agent one release older must keep working against a newer server, and the reverse: a
message either side serializes must mean the same to the other. So, from one release to the
next, the protos only grow (new fields, enum values, messages, methods) and what was there
keeps its meaning: a field keeps its number, type, cardinality, oneof and name (``-o json``
prints names); a removed field or enum value leaves its number and its name ``reserved``; a
reservation stays; an rpc keeps its request and response types and streaming; no message,
enum, service or rpc is deleted. ``protos/buf.yaml`` lists these as Buf's rule IDs.

Why ``buf breaking``: it is the reference checker for exactly this (Buf's CLI, maintained,
~50 rules with their edge cases: oneofs, maps, proto3 ``optional``, reserved ranges, JSON
names), and the ``buf-bin`` package on PyPI ships its static binary into the virtualenv, so
nothing outside the project's registries is needed (``buf`` itself is not in Debian). The
alternatives were worse: the Python package ``protokit`` (alpha) pins ``protobuf<6`` while
ccs runs protobuf 7, and rules written here would be a second, less tested copy of Buf's.
Buf reads both sides as images, i.e. serialized ``FileDescriptorSet``s, so it checks the
snapshot from ``protoc --descriptor_set_out`` against the generated modules' ``DESCRIPTOR``s.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "ccs.v1"
PREVIOUS_SET = ROOT / "tests" / "data" / "protos-previous" / "ccs-v1.binpb"
BUF_CONFIG = ROOT / "protos" / "buf.yaml"


@dataclass(frozen=True)
class Incompatibility:
    """One break as Buf reports it: its rule ID, the file, and a sentence naming the element."""

    rule: str
    where: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}: {self.why} [{self.rule}]"


def buf_binary() -> str:
    """The ``buf`` of this virtualenv (the ``buf-bin`` dev dependency), else one on PATH."""
    beside = Path(sys.executable).parent / "buf"
    found = str(beside) if beside.exists() else shutil.which("buf")
    if found is None:
        raise RuntimeError("buf is not installed: pip install -e '.[dev]' (it brings buf-bin)")
    return found


def check(old: Iterable[descriptor_pb2.FileDescriptorProto], new: Iterable[descriptor_pb2.FileDescriptorProto],
          config: Path = BUF_CONFIG) -> list[Incompatibility]:
    """Every way ``new`` breaks a peer built from ``old`` under ``config``'s rules; empty when
    compatible. Both sides must hold their imports, as ``--include_imports`` sets do."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, files in (("old", old), ("new", new)):
            paths[name] = Path(tmp) / f"{name}.binpb"
            paths[name].write_bytes(descriptor_pb2.FileDescriptorSet(file=list(files)).SerializeToString())
        run = subprocess.run(
            [buf_binary(), "breaking", str(paths["new"]), "--against", str(paths["old"]),
             "--config", str(config), "--error-format", "json"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "BUF_CACHE_DIR": str(Path(tmp) / "cache")})
    if run.returncode == 0:
        return []
    if run.returncode != 100:  # buf's exit code for "breaking changes found"
        raise RuntimeError(f"buf breaking failed ({run.returncode}): {run.stderr.strip() or run.stdout.strip()}")
    found = []
    for line in run.stdout.splitlines():
        if line.strip():
            item = json.loads(line)
            found.append(Incompatibility(item["type"], item.get("path", ""), item["message"]))
    return found


def with_json_names(files: list[descriptor_pb2.FileDescriptorProto]) -> list[descriptor_pb2.FileDescriptorProto]:
    """Fill each field's ``json_name`` as protoc does in a descriptor set. Generated modules
    leave out the default ones, and Buf compares the option as written; the names come from
    protobuf's own descriptors, so an explicit ``json_name`` is kept."""
    pool = descriptor_pool.DescriptorPool()
    for f in files:
        pool.Add(f)

    def walk(prefix: str, messages: Iterable[descriptor_pb2.DescriptorProto]) -> Iterator[
            tuple[str, descriptor_pb2.DescriptorProto]]:
        for m in messages:
            name = f"{prefix}{m.name}"
            yield name, m
            yield from walk(f"{name}.", m.nested_type)

    out = []
    for f in files:
        copy = descriptor_pb2.FileDescriptorProto()
        copy.CopyFrom(f)
        for name, msg in walk(f"{copy.package}." if copy.package else "", copy.message_type):
            runtime = pool.FindMessageTypeByName(name)
            for field in msg.field:
                field.json_name = runtime.fields_by_number[field.number].json_name
        out.append(copy)
    return out


def previous_files() -> list[descriptor_pb2.FileDescriptorProto]:
    """The previous release's schema, as ``protos/generate.py --previous REF`` wrote it
    (the ccs.v1 files and what they import)."""
    return list(descriptor_pb2.FileDescriptorSet.FromString(PREVIOUS_SET.read_bytes()).file)


def current_files() -> list[descriptor_pb2.FileDescriptorProto]:
    """The schema this tree ships: the DESCRIPTOR of every generated ``ccs.v1.*_pb2`` module,
    with its imports, dependencies first (as protoc orders a set)."""
    import ccs.v1

    ordered: list[FileDescriptor] = []

    def visit(fd: FileDescriptor) -> None:
        if fd in ordered:
            return
        for dep in fd.dependencies:
            visit(dep)
        ordered.append(fd)

    for mod in sorted(pkgutil.iter_modules(ccs.v1.__path__), key=lambda m: m.name):
        if mod.name.endswith("_pb2"):
            visit(importlib.import_module(f"ccs.v1.{mod.name}").DESCRIPTOR)
    files = []
    for fd in ordered:
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        files.append(proto)
    return with_json_names(files)
