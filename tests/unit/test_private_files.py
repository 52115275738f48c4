"""Private files (ccs.private_files): written 0600 and atomically by one writer, which the agent's
server list and the control plane's backups use too (they each had a hand-written copy)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ccs.private_files import private_writer, write_private
from ccs.v1 import agent_pb2


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_streamed_file_is_private_and_replaces_the_old_one_only_when_whole(tmp_path: Path) -> None:
    target = tmp_path / "snapshot.db"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), private_writer(target) as out:
        out.write(b"half")
        raise RuntimeError("the stream broke")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["snapshot.db"]
    with private_writer(target) as out:
        out.write(b"new ")
        out.write(b"content")
    assert target.read_bytes() == b"new content" and mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["snapshot.db"]
    write_private(target, b"again")
    assert target.read_bytes() == b"again" and mode(target) == 0o600


def test_the_agents_server_list_is_written_by_the_one_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nodeagent import servers
    from nodeagent.servers import ServerList

    written: list[Path] = []

    def spy(path: Path, data: bytes) -> None:
        written.append(path)
        write_private(path, data)

    monkeypatch.setattr(servers, "write_private", spy)
    ServerList(["a:1"], tmp_path).learn([agent_pb2.Replica(api_address="b:1", node_address="b:2")])
    assert written == [tmp_path / servers.SERVERS_FILE] and mode(written[0]) == 0o600


def test_a_backup_is_written_by_the_one_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty snapshot is refused and leaves nothing behind (the writer removes its temporary file)."""
    import asyncio
    import contextlib
    from collections.abc import Iterator
    from typing import BinaryIO

    from controlplane import backup

    used: list[Path] = []

    @contextlib.contextmanager
    def spy(path: Path) -> Iterator[BinaryIO]:
        used.append(path)
        with private_writer(path) as out:
            yield out

    monkeypatch.setattr(backup, "private_writer", spy)

    class Client:
        async def snapshot(self, sink: object) -> None:
            return None  # etcd sent nothing

    class Etcd:
        client = Client()

        async def connect(self) -> None:
            return None

    out = tmp_path / "backup.db"
    with pytest.raises(backup.BackupError, match="empty snapshot"):
        asyncio.run(backup.save(Etcd(), out))  # type: ignore[arg-type]
    assert used == [out] and list(tmp_path.iterdir()) == []
