"""Servers removed at runtime: in maintenance at once, `del server` retried until HAProxy lets go.

A fake runtime API stands in for HAProxy's socket (the real one is exercised in
tests/integration/test_router_haproxy.py); what is tested is the supervisor's bookkeeping.
"""

from __future__ import annotations

from pathlib import Path

from nodeagent.router import Router, RouterSettings, ServerChanges


class FakeAPI:
    def __init__(self) -> None:
        self.applied: list[ServerChanges] = []
        self.deletable: set[tuple[str, str]] = set()
        self.deleted: list[tuple[str, str]] = []

    async def apply_servers(self, changes: ServerChanges, check_interval: str) -> None:
        self.applied.append(changes)

    async def delete_server(self, backend: str, server: str) -> bool:
        if (backend, server) not in self.deletable:
            return False  # "Server still has connections attached to it"
        self.deleted.append((backend, server))
        return True

    async def show_stat(self) -> list[dict[str, str]]:
        return []


def router_with(api: FakeAPI, tmp_path: Path) -> Router:
    router = Router(RouterSettings(state_dir=tmp_path, bind_address="127.0.0.1", port=19080))
    router.api = api  # type: ignore[assignment]
    return router


async def test_a_removed_server_is_deleted_once_haproxy_lets_go(tmp_path: Path) -> None:
    api = FakeAPI()
    router = router_with(api, tmp_path)
    assert await router._change_at_runtime(ServerChanges(removed=(("be", "old"),)))
    assert api.deleted == [] and router._retired == {("be", "old")}  # left to the reaper
    await router._reap()
    assert router._retired == {("be", "old")}
    api.deletable.add(("be", "old"))  # the pooled connections are gone
    await router._reap()
    assert api.deleted == [("be", "old")] and router._retired == set()


async def test_a_retired_name_coming_back_takes_a_reload(tmp_path: Path) -> None:
    api = FakeAPI()
    router = router_with(api, tmp_path)
    assert await router._change_at_runtime(ServerChanges(removed=(("be", "web-1"),)))
    again = ServerChanges(added={("be", "web-1"): ("10.0.0.7:32768", 100)})
    assert not await router._change_at_runtime(again)  # `add server` would fail: reload instead
    assert len(api.applied) == 1
