"""client.releases / client.routes and the canary step syntax, over real gRPC to the
in-process fake (ccs.testing), whose toy release state machine tests move by hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import ccs
from ccs.errors import FailedPrecondition, InvalidArgument, NotFound, ReleaseFailed, WaitTimeout
from ccs.models import CanaryOptions, StepsError, parse_steps
from ccs.testing import FakeApi, start_server
from ccs.v1 import resources_pb2 as pb

pytestmark = pytest.mark.timeout(30)
V1 = "services: {web: {image: 'web:1', deploy: {replicas: 2}}}\n"
V2 = "services: {web: {image: 'web:2', deploy: {replicas: 2}}}\n"


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi(token=None)


@pytest.fixture
async def client(fake: FakeApi) -> AsyncIterator[ccs.AsyncClient]:
    server, address = await start_server(fake)
    async with ccs.AsyncClient(address, tls=False) as c:
        await c.clusters.create("c")
        await c.applications.create("c", "shop", V1)
        yield c
    await server.stop(None)


# ------------------------------------------------------------------ parse_steps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100%", [(100, 0)]),
        ("10%,pause 30s,50%,pause 2m,100%", [(10, 30_000), (50, 120_000), (100, 0)]),
        ("10%, pause , 100%", [(10, 0), (100, 0)]),  # bare pause: manual promote
        (" 5% ,PAUSE 500ms, 20%, pause 1h ", [(5, 500), (20, 3_600_000)]),
        ("0%,pause,100%", [(0, 0), (100, 0)]),
        ("10%,pause 1m30s,100%", [(10, 90_000), (100, 0)]),  # the one duration syntax
        ("10%,pause 1d,100%", [(10, 86_400_000), (100, 0)]),
    ],
)
def test_parse_steps_accepts(text: str, expected: list[tuple[int, int]]) -> None:
    assert [(s.weight, s.pause_ms) for s in parse_steps(text)] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one step"),
        ("10%,,100%", "token 2 is empty"),
        ("pause 30s,10%", "token 1 'pause 30s': a pause needs a weight step before it"),
        ("10%,pause 3x", "token 2 'pause 3x': must be a duration like 1m30s"),
        ("10%,pause 0s", "token 2 'pause 0s': must be more than 0ms"),
        ("10%,pause 100us", "token 2 'pause 100us': must be more than 0ms"),
        ("10%,pause 1 s", "expected 'pause' or 'pause DURATION'"),
        ("10%,pause,pause", "token 3 'pause': step 1 already has a pause"),
        ("10", "token 1 '10': expected a weight like 10%"),
        ("ten%", "token 1 'ten%': expected a weight"),
        ("150%", "token 1 '150%': weight must be 0..100"),
        ("10%,50%", "token 2 '50%': step 1 (10%) needs a pause"),
        ("50%,pause,10%", "token 3 '10%': weights must increase (previous 50%)"),
    ],
)
def test_parse_steps_rejects_naming_the_token(text: str, message: str) -> None:
    with pytest.raises(StepsError) as info:
        parse_steps(text)
    assert message in str(info.value) and str(info.value).startswith("steps: ")


# ------------------------------------------------------------------ verbs


async def test_blue_green_shift_then_confirm(client: ccs.AsyncClient) -> None:
    app = await client.applications.update("c", "shop", template=V2, strategy="blue-green")
    rel = await client.releases.get("c", "shop")
    assert (rel.meta.name, rel.spec.to_revision) == ("r000001", app.revision)
    assert rel.status.phase == pb.RELEASE_PHASE_AWAITING_SHIFT
    assert list((await client.releases.shift("c", "shop", 30)).status.requests) == ["shift:30"]
    assert (await client.releases.get("c", "shop")).status.weight == 30  # the toy planner acted
    with pytest.raises(InvalidArgument, match=r"weight: 101 is not a percentage \(0-100\)"):
        await client.releases.shift("c", "shop", 101)
    await client.releases.confirm("c", "shop")
    done = await client.releases.get("c", "shop")
    assert (done.status.phase, done.status.weight) == (pb.RELEASE_PHASE_SUCCEEDED, 100)
    with pytest.raises(FailedPrecondition, match="release r000001 of shop is succeeded; nothing to rollback"):
        await client.releases.rollback("c", "shop")
    assert [r.meta.name for r in await client.releases.list("c", "shop")] == ["r000001"]


async def test_canary_options_of_applications_update_reach_the_release_and_promote_walks_the_steps(
    client: ccs.AsyncClient,
) -> None:
    opts = CanaryOptions(replicas=1, steps=parse_steps("10%,pause,50%,pause 30s,100%"),
                         max_5xx_ratio=0.05, min_requests=20)
    await client.applications.update("c", "shop", template=V2, strategy="canary", canary=opts)
    rel = await client.releases.get("c", "shop")
    assert [s.weight for s in rel.spec.steps] == [10, 50, 100]
    assert (rel.spec.analysis.max_5xx_ratio, rel.status.weight) == (0.05, 10)
    await client.releases.promote("c", "shop")
    assert (await client.releases.get("c", "shop")).status.weight == 50
    with pytest.raises(FailedPrecondition, match="confirm applies to blue-green releases; r000001 is canary"):
        await client.releases.confirm("c", "shop")
    await client.releases.abort("c", "shop")
    aborted = await client.releases.get("c", "shop")
    assert aborted.status.phase == pb.RELEASE_PHASE_ROLLED_BACK


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (CanaryOptions(max_5xx_ratio=1.5), r"canary_analysis.max_5xx_ratio: 1.5 is not a ratio between 0 and 1"),
        (CanaryOptions(match_header="X-Beta"), "match_value: A/B routing by header or cookie needs the value"),
        (CanaryOptions(match_header="a", match_cookie="b", match_value="1"),
         "match_cookie: choose a header or a cookie, not both"),
        (CanaryOptions(match_value="1"), "match_value: only meaningful with match_header or match_cookie"),
    ],
)
async def test_bad_canary_options_name_the_field(
    client: ccs.AsyncClient, opts: CanaryOptions, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await client.applications.update("c", "shop", template=V2, strategy="canary", canary=opts)
    with pytest.raises(ValueError, match="strategy: canary options need strategy canary"):
        await client.applications.update("c", "shop", strategy="rolling", canary=CanaryOptions())


async def test_get_without_any_release_is_not_found(client: ccs.AsyncClient) -> None:
    with pytest.raises(NotFound, match=r"release 'shop \(the application has had no release yet\)' not found"):
        await client.releases.get("c", "shop")


# ------------------------------------------------------------------ wait


async def _wait_started(fake: FakeApi, n: int = 1) -> None:
    """Until the wait's watch is open (the fake's request log has no event to await)."""
    while len(fake.watch_requests) < n:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def test_wait_follows_the_watch_until_succeeded(client: ccs.AsyncClient, fake: FakeApi) -> None:
    await client.applications.update("c", "shop", template=V2)  # rolling
    seen: list[tuple[int, int]] = []
    task = asyncio.create_task(client.releases.wait(
        "c", "shop", on_progress=lambda r: seen.append((r.status.phase, r.status.updated))))
    await _wait_started(fake)
    fake.set_release("c", "shop", updated=1)
    fake.set_release("c", "shop", updated=2, phase=pb.RELEASE_PHASE_SUCCEEDED)
    rel = await task
    assert rel.status.phase == pb.RELEASE_PHASE_SUCCEEDED
    assert seen[0] == (pb.RELEASE_PHASE_PROGRESSING, 0) and seen[-1] == (pb.RELEASE_PHASE_SUCCEEDED, 2)
    assert list(fake.watch_requests[0].kinds) == ["release"]


async def test_wait_raises_release_failed_with_phase_and_reason(
    client: ccs.AsyncClient, fake: FakeApi
) -> None:
    await client.applications.update("c", "shop", template=V2, strategy="canary")
    task = asyncio.create_task(client.releases.wait("c", "shop", "r000001"))
    await _wait_started(fake)
    fake.set_release("c", "shop", phase=pb.RELEASE_PHASE_ROLLED_BACK,
                     message="5xx ratio 0.31 above 0.05")
    with pytest.raises(ReleaseFailed) as info:
        await task
    assert (info.value.phase, info.value.message) == ("rolled-back", "5xx ratio 0.31 above 0.05")
    assert isinstance(info.value.release, pb.Release)


async def test_wait_polls_when_the_server_rejects_the_release_kind(
    client: ccs.AsyncClient, fake: FakeApi
) -> None:
    fake.watch_kinds = frozenset({"application", "service", "container"})
    await client.applications.update("c", "shop", template=V2)
    task = asyncio.create_task(client.releases.wait("c", "shop", poll_interval=0.01))
    await _wait_started(fake)
    fake.set_release("c", "shop", phase=pb.RELEASE_PHASE_SUCCEEDED)
    assert (await task).status.phase == pb.RELEASE_PHASE_SUCCEEDED


async def test_wait_pins_the_release_it_started_with(client: ccs.AsyncClient, fake: FakeApi) -> None:
    await client.applications.update("c", "shop", template=V2)
    task = asyncio.create_task(client.releases.wait("c", "shop"))
    await _wait_started(fake)
    await client.applications.update("c", "shop", template=V1)  # r2 supersedes r1
    with pytest.raises(ReleaseFailed, match="superseded"):
        await task


async def test_wait_timeout_names_the_state(client: ccs.AsyncClient) -> None:
    await client.applications.update("c", "shop", template=V2, strategy="blue-green")
    with pytest.raises(WaitTimeout, match=r"release r000001 still awaiting-shift after 0\.05s"):
        await client.releases.wait("c", "shop", timeout=0.05)


async def test_wait_returns_at_once_for_a_finished_release(client: ccs.AsyncClient, fake: FakeApi) -> None:
    await client.applications.update("c", "shop", template=V2, strategy="blue-green")
    await client.releases.confirm("c", "shop")
    assert (await client.releases.wait("c", "shop", timeout=5)).status.weight == 100


# ------------------------------------------------------------------ app rollback, routes


async def test_rollback_application_and_revisions(client: ccs.AsyncClient) -> None:
    await client.applications.update("c", "shop", template=V2)
    app = await client.applications.rollback("c", "shop", strategy="blue-green")
    assert (app.revision, app.spec.template) == (3, V1)
    revs = await client.applications.revisions("c", "shop")
    assert [(r.revision, r.note) for r in revs] == [
        (1, "deploy"), (2, "update"), (3, "rollback")]
    rel = await client.releases.get("c", "shop")
    assert (rel.spec.is_rollback, rel.spec.strategy, rel.spec.to_revision) == (True, "blue-green", 3)
    with pytest.raises(InvalidArgument, match=r"to_revision: must be an earlier revision, 1\.\.2 \(current is 3\)"):
        await client.applications.rollback("c", "shop", to_revision=3)
    with pytest.raises(InvalidArgument, match="to_revision: must be >= 0"):
        await client.applications.rollback("c", "shop", to_revision=-1)


async def test_routes_list(client: ccs.AsyncClient, fake: FakeApi) -> None:
    assert len((await client.routes.list("c")).routes) == 0
    fake.set_routes("c", pb.RoutingTable(cluster="c", version=7, routes=[pb.RouteEntry(
        application="shop", service="web", domain="shop.example", path="/",
        backends=[pb.RouteBackend(container="shop-web-1", node="n1", address="10.0.0.1",
                                  port=32768, weight=128, group="stable")])]))
    table = await client.routes.list("c")
    assert table.version == 7 and table.routes[0].backends[0].weight == 128
    with pytest.raises(NotFound):
        await client.routes.list("nope")


def test_blocking_client_has_the_namespaces(fake: FakeApi) -> None:
    from ccs.testing import serve_in_thread

    with serve_in_thread(fake) as served, ccs.Client(served.address, tls=False) as c:
        c.clusters.create("c")
        c.applications.create("c", "shop", V1)
        c.applications.update("c", "shop", template=V2, strategy="blue-green")
        assert list(c.releases.shift("c", "shop", 40).status.requests) == ["shift:40"]
        assert c.releases.get("c", "shop").status.weight == 40
        assert c.routes.list("c").cluster == "c"
