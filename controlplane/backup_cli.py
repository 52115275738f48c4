"""``ccs-server backup FILE`` and ``ccs-server restore FILE``: the commands around
``controlplane.backup``.

They take the server's options that locate etcd and the keys (``--state-dir``, ``--etcd``,
``--embedded-etcd-port``, the etcd TLS files, the key files), by the same rule as the server
(flag > ``CCS_SERVER_<OPTION>`` > ``--config`` file > default, ``ccs.option_sources``), so a host set up
with ``/etc/ccs/server.env`` or a config file backs up the etcd its server uses without
repeating them. Keys of the server's config file that these commands do not use are accepted
(the file is the server's); keys the server does not know are refused.

Exit codes: 0 done, 1 the backup or restore failed (the reason printed), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from ccs import option_sources
from controlplane import backup
from controlplane.embedded_etcd import PEER_PORT_OFFSET
from controlplane.store.errors import StoreUnavailable
from controlplane.store.etcd import Etcd

COMMANDS = ("backup", "restore")


def _common(p: argparse.ArgumentParser, state_dir: Path) -> None:
    option_sources.add_config_option(p, option_sources.SERVER_PREFIX)
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--state-dir", type=Path, default=state_dir,
                   help=f"the server's state directory (default {state_dir})")
    p.add_argument("--embedded-etcd-port", type=int, default=23790,
                   help="the embedded etcd's client port (default 23790; its peer port is this + 10)")
    p.add_argument("--master-key-file", type=Path, default=None, metavar="PATH",
                   help="the server's master key (default STATE/master.key): named in the output, never copied")
    p.add_argument("--secrets-key-file", type=Path, default=None, metavar="PATH",
                   help="the server's secrets key (default STATE/secrets.key): named in the output, never copied")


def build_parser(command: str, state_dir: Path) -> argparse.ArgumentParser:
    if command == "backup":
        p = argparse.ArgumentParser(
            prog="ccs-server backup",
            description="Write an etcd snapshot of the control plane's state to FILE (0600), while the server "
            "runs. The master and secrets keys are not in it: keep copies of them apart.")
        _common(p, state_dir)
        p.add_argument("--etcd", default="", help="etcd client URLs, comma-separated (default: the embedded etcd)")
        p.add_argument("--etcd-cacert", type=Path, default=None, metavar="PEM", help="CA of etcd's certificates")
        p.add_argument("--etcd-cert", type=Path, default=None, metavar="PEM", help="client certificate for etcd")
        p.add_argument("--etcd-key", type=Path, default=None, metavar="PEM", help="its private key")
    else:
        p = argparse.ArgumentParser(
            prog="ccs-server restore",
            description="Restore a backup onto an empty data dir of the embedded etcd (STATE/etcd), with "
            "ccs-server stopped; then start ccs-server with the same master and secrets keys.")
        _common(p, state_dir)
        p.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                       help="the etcd data dir to create (default STATE/etcd, the embedded etcd's)")
    return p


def _keys(a: argparse.Namespace) -> tuple[Path, Path]:
    return (a.master_key_file or a.state_dir / "master.key", a.secrets_key_file or a.state_dir / "secrets.key")


def _backup(a: argparse.Namespace) -> int:
    endpoints = [e for e in a.etcd.split(",") if e.strip()] or [f"http://127.0.0.1:{a.embedded_etcd_port}"]

    async def run(out: Path) -> backup.Snapshot:
        etcd = Etcd(endpoints, timeout=backup.SNAPSHOT_TIMEOUT, cacert=a.etcd_cacert, cert=a.etcd_cert,
                    key=a.etcd_key)
        try:
            return await backup.save(etcd, out)
        finally:
            await etcd.close()

    try:
        snap = asyncio.run(run(backup.target(a.file)))
    except (backup.BackupError, StoreUnavailable) as exc:
        print(f"ccs-server backup: {exc}", file=sys.stderr)
        if not a.etcd:
            print("ccs-server backup: the embedded etcd runs only while ccs-server runs: start it first",
                  file=sys.stderr)
        return 1
    master, secrets = _keys(a)
    print(f"backup written: {snap.path} ({snap.size} bytes, sha256 {snap.sha256})")
    print(f"not in the backup: the master key ({master}) and the secrets key ({secrets}). Keep copies of "
          "them apart from the backup: a restore needs both, and the backup alone opens neither the "
          "cluster CA nor any secret.")
    return 0


def _restore(a: argparse.Namespace) -> int:
    data_dir = a.data_dir or a.state_dir / "etcd"
    peer = f"http://127.0.0.1:{a.embedded_etcd_port + PEER_PORT_OFFSET}"
    try:
        backup.restore(a.file, data_dir, peer)
    except backup.BackupError as exc:
        print(f"ccs-server restore: {exc}", file=sys.stderr)
        return 1
    print(f"restored {a.file} into {data_dir}")
    master, secrets = _keys(a)
    missing = [str(p) for p in (master, secrets) if not p.exists()]
    print(f"start ccs-server with the master key ({master}) and the secrets key ({secrets}) it used when the "
          "backup was made: they are not in the backup.")
    if missing:
        print(f"warning: not found: {', '.join(missing)}; put the kept copies there before starting "
              "ccs-server", file=sys.stderr)
    return 0


def main(command: str, argv: list[str], *, state_dir: Path, server_keys: Iterable[str],
         env: Mapping[str, str] | None = None) -> int:
    p = build_parser(command, state_dir)
    a = option_sources.parse(p, argv, env, prefix=option_sources.SERVER_PREFIX, program=f"ccs-server {command}",
                             extra_keys=server_keys).namespace
    return _backup(a) if command == "backup" else _restore(a)
