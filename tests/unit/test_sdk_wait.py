"""applications.wait: the pure verdict (``ccs.deploy_verdict.assess``) as a table, then the list + watch
loop against the in-process fake API, which stands in for the reconciler and agents by having
the test write container records and service statuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import ccs
from ccs.deploy_verdict import Progress, Snapshot, assess, format_duration, track_unplaced
from ccs.errors import DeployFailed, NotFound, WaitTimeout
from ccs.testing import FakeApi, serve_in_thread, start_server
from ccs.v1 import resources_pb2 as pb

pytestmark = pytest.mark.timeout(60)
TEMPLATE = "services:\n  web: {image: nginx, deploy: {replicas: 2}}\n  db: {image: postgres}\n"
RUNNING, HEALTHY, FAILED = pb.CONTAINER_STATE_RUNNING, pb.CONTAINER_STATE_HEALTHY, pb.CONTAINER_STATE_FAILED
NOT_FOUND, NETWORK = pb.FAILURE_REASON_IMAGE_NOT_FOUND, pb.FAILURE_REASON_NETWORK
POOLS = "create network ccs-c-shop: could not find an available, non-overlapping IPv4 address pool"
PENDING, EXITED = pb.CONTAINER_STATE_PENDING, pb.CONTAINER_STATE_EXITED
CRASH = "crash loop: died 4 times within 1m, last exited with code 1 (restart_policy.max_attempts=3 reached)"
NO_CPU = "no node has 2 CPUs free (3 nodes: n1 has 1, n2 has 1, n3 has 0.5)"


# ------------------------------------------------------------------ the pure verdict


def svc(
    name: str = "web", desired: int = 2, running: int = 0, healthy: int = 0, gen: int = 1,
    message: str = "", mode: int = pb.SERVICE_MODE_REPLICATED, healthcheck: bool = False,
) -> pb.Service:
    s = pb.Service(meta=pb.Meta(name=name), application="shop", generation=gen,
                   spec=pb.ServiceSpec(image="img", replicas=desired, mode=mode),  # type: ignore[arg-type]
                   status=pb.ServiceStatus(desired=desired, running=running, healthy=healthy, message=message))
    if healthcheck:
        s.spec.healthcheck.test.extend(["CMD", "true"])
    return s


def ctr(
    slot: int, state: int = RUNNING, gen: int = 1, node: str = "n1", message: str = "",
    desired: int = pb.DESIRED_STATE_RUNNING, service: str = "web", reason: int = 0, **labels: str,
) -> pb.Container:
    return pb.Container(
        meta=pb.Meta(id=f"{service}{slot}g{gen}", name=f"{service}-{slot}-g{gen}",
                     labels={k.replace("_", "."): v for k, v in labels.items()}),
        application="shop", service=service, slot=slot, node=node, spec_generation=gen,
        desired_state=desired,  # type: ignore[arg-type]
        status=pb.ContainerStatus(state=state, message=message, exit_code=1 if state == EXITED else 0,  # type: ignore[arg-type]
                                  failure_reason=reason),  # type: ignore[arg-type]
    )


def snap(services: list[pb.Service], containers: list[pb.Container], nodes: int = 1,
         stopped: bool = False) -> Snapshot:
    app = pb.Application(meta=pb.Meta(name="shop"), status=pb.ApplicationStatus(phase="Deploying"))
    app.spec.desired_state = pb.DESIRED_STATE_STOPPED if stopped else pb.DESIRED_STATE_RUNNING
    node_map = {f"n{i}": pb.Node(meta=pb.Meta(name=f"n{i}"), spec=pb.NodeSpec(
        availability=pb.NODE_AVAILABILITY_ACTIVE), status=pb.NodeStatus(state=pb.NODE_STATE_READY))
        for i in range(nodes)}
    return Snapshot(app, {s.meta.name: s for s in services},
                    {(c.service, c.meta.name): c for c in containers}, node_map)


TWO = [ctr(1), ctr(2)]
CASES: list[tuple[str, Snapshot, float, bool, str | None]] = [
    # (case, snapshot, unplaced since, ready, failure message)
    ("ready", snap([svc(running=2, healthy=2)], TWO), 0, True, None),
    ("no status yet", snap([svc()], []), 0, False, None),
    ("half healthy", snap([svc(running=2, healthy=1)], TWO), 0, False, None),
    ("scaling down", snap([svc(running=3, healthy=3)], [*TWO, ctr(3)]), 0, False, None),
    ("status stale after an update: old generation still live",
     snap([svc(running=2, healthy=2, gen=2)], TWO), 0, False, None),
    ("new generation ready, old ones being removed",
     snap([svc(running=2, healthy=2, gen=2)],
          [ctr(1, gen=2), ctr(2, gen=2), *(ctr(i, desired=pb.DESIRED_STATE_REMOVED) for i in (1, 2))]),
     0, True, None),
    ("running but health check not passed yet",
     snap([svc(running=2, healthy=2, healthcheck=True)], TWO), 0, False, None),
    ("healthy with a health check",
     snap([svc(running=2, healthy=2, healthcheck=True)], [ctr(1, HEALTHY), ctr(2, HEALTHY)]), 0, True, None),
    ("image not found", snap([svc()], [ctr(1, FAILED, message="image not found: local/nope:1", reason=NOT_FOUND)]),
     0, False, "service web: image not found: local/nope:1"),
    ("image not found in the old generation does not fail the update",
     snap([svc(gen=2)], [ctr(1, FAILED, message="image not found: local/nope:1", reason=NOT_FOUND)]), 0, False, None),
    ("the engine refused the app network: the reason field decides, the wording does not",
     snap([svc()], [ctr(1, FAILED, message=POOLS, reason=NETWORK)]), 0, False, f"service web: {POOLS}"),
    ("a permanent-sounding message without a reason code is not a final failure",
     snap([svc()], [ctr(1, FAILED, message="image not found: local/nope:1")]), 0, False, None),
    ("out of memory is left to the restart policy",
     snap([svc()], [ctr(1, FAILED, message="out of memory: killed by the kernel (exit code 137)")]),
     0, False, None),
    ("crash loop", snap([svc(running=1, message=f"1/2 running; slot 2: {CRASH}")],
                        [ctr(1), ctr(2, EXITED, desired=pb.DESIRED_STATE_STOPPED, ccs_outcome="failed")]),
     0, False, f"service web: slot 2: {CRASH}"),
    ("unplaced within the grace", snap([svc()], [ctr(1, PENDING, node="", message=NO_CPU)]), 8, False, None),
    ("unplaced past the grace", snap([svc()], [ctr(1, PENDING, node="", message=NO_CPU)]), 5, False,
     f"service web: no node fits: {NO_CPU}"),
    ("pending on a node is the agent preparing, not the scheduler",
     snap([svc()], [ctr(1, PENDING, message="preparing")]), 0, False, None),
    ("global, no eligible node", snap([svc(desired=0, mode=pb.SERVICE_MODE_GLOBAL)], [], nodes=0), 0, True, None),
    ("global, nodes not counted yet", snap([svc(desired=0, mode=pb.SERVICE_MODE_GLOBAL)], []), 0, False, None),
    ("stopped application", snap([svc()], [], stopped=True), 0, False, "application shop is stopped"),
]


@pytest.mark.parametrize(("case", "state", "since", "ready", "failure"), CASES, ids=[c[0] for c in CASES])
def test_assess(case: str, state: Snapshot, since: float, ready: bool, failure: str | None) -> None:
    unplaced = {c.meta.id: since for c in state.containers.values()}
    verdict = assess(state, now=10.0, unplaced_since=unplaced, grace=5.0)
    assert verdict.progress.done is ready, case
    if failure is None:
        assert verdict.failure is None, verdict.failure
    else:
        assert verdict.failure is not None and verdict.failure.message.startswith(failure)


def test_assess_reports_counts_and_when_to_look_again() -> None:
    state = snap([svc(running=1, healthy=1, gen=2, message="1/2 running; 1 starting or pending placement"),
                  svc("db", desired=1)],
                 [ctr(1, gen=2), ctr(2), ctr(3, PENDING, gen=2, node="", message=NO_CPU)])
    verdict = assess(state, now=10.0, unplaced_since={"web3g2": 8.0}, grace=5.0)
    assert verdict.failure is None and verdict.recheck_at == 13.0
    db, web = verdict.progress.services
    assert (web.desired, web.running, web.healthy, web.updated, web.outdated) == (2, 1, 1, 1, 1)
    assert web.line() == "web 1/2 running 1/2 healthy, 1/2 updated: 1 starting or pending placement"
    assert db.line() == "db 0/1 running 0/1 healthy" and not db.ready


def test_crash_loop_carries_the_exit_code_and_falls_back_to_the_label() -> None:
    dead = ctr(2, EXITED, desired=pb.DESIRED_STATE_STOPPED, ccs_outcome="failed")
    dead.meta.labels["ccs.outcome.message"] = CRASH
    failure = assess(snap([svc(running=1)], [ctr(1), dead]), 0.0, {}).failure
    assert failure is not None and failure.service == "web" and failure.exit_code == 1
    assert failure.reason == f"slot 2: {CRASH}"


def test_track_unplaced_keeps_the_first_sighting_and_forgets_placed_ones() -> None:
    pending = [ctr(1, PENDING, node="", message=NO_CPU), ctr(2, PENDING, node="", message=NO_CPU)]
    since = track_unplaced(pending, 1.0, {})
    assert since == {"web1g1": 1.0, "web2g1": 1.0}
    assert track_unplaced([pending[0], ctr(2)], 4.0, since) == {"web1g1": 1.0}


@pytest.mark.parametrize(("seconds", "text"), [(0.5, "0.5s"), (45, "45s"), (90, "1m30s"), (3600, "1h")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# ------------------------------------------------------------------ list + watch, against the fake


@pytest.fixture
def fake() -> FakeApi:
    api = FakeApi(token=None)
    api.commit([(("cluster", "c"), pb.Cluster(meta=pb.Meta(name="c")))])
    api.add_node("c", "n1")
    return api


@pytest.fixture
async def client(fake: FakeApi) -> AsyncIterator[ccs.AsyncClient]:
    server, address = await start_server(fake)
    async with ccs.AsyncClient(address, tls=False) as c:
        yield c
    await server.stop(None)


def run_service(fake: FakeApi, service: str, n: int, gen: int = 1) -> None:
    """What the reconciler and agents would write once ``n`` containers run."""
    for slot in range(1, n + 1):
        fake.add_container("c", "shop", service, slot, "n1", RUNNING, generation=gen)
    fake.set_service_status("c", "shop", service, n, n)


class Watcher:
    """Runs a wait in a task and hands its progress reports to the test, one at a time."""

    def __init__(self, client: ccs.AsyncClient, **kwargs: Any) -> None:
        self.reports: asyncio.Queue[Progress] = asyncio.Queue()
        kwargs.setdefault("timeout", 30.0)
        self.task = asyncio.create_task(
            client.applications.wait("c", "shop", on_progress=self.reports.put_nowait, **kwargs))

    async def next(self) -> Progress:
        return await self.reports.get()


async def test_waits_through_the_watch_until_every_service_is_ready(
    client: ccs.AsyncClient, fake: FakeApi
) -> None:
    await client.applications.create("c", "shop", TEMPLATE)
    w = Watcher(client)
    first = await w.next()
    assert not first.done and [s.name for s in first.services] == ["db", "web"]
    run_service(fake, "web", 2)
    run_service(fake, "db", 1)
    final = await w.task
    assert final.done and [(s.name, s.healthy) for s in final.services] == [("db", 1), ("web", 2)]
    assert fake.watch_requests, "progress came from the watch, not from re-listing"


async def test_survives_watch_reconnects(client: ccs.AsyncClient, fake: FakeApi) -> None:
    await client.applications.create("c", "shop", TEMPLATE)
    fake.watch_faults = [0, 1]  # the first stream fails at once, the second after one response
    w = Watcher(client)
    await w.next()
    run_service(fake, "web", 2)
    run_service(fake, "db", 1)
    assert (await w.task).done
    assert len(fake.watch_requests) >= 3


async def test_update_waits_for_the_new_generation(client: ccs.AsyncClient, fake: FakeApi) -> None:
    await client.applications.create("c", "shop", TEMPLATE)
    run_service(fake, "web", 2)
    run_service(fake, "db", 1)
    assert (await client.applications.wait("c", "shop", timeout=10)).done
    await client.applications.update("c", "shop", template=TEMPLATE.replace("nginx", "nginx:2"))
    w = Watcher(client)
    web = (await w.next()).services[1]
    assert (web.name, web.running, web.healthy, web.outdated, web.ready) == ("web", 2, 2, 2, False)
    assert not w.task.done()  # the old generation is running and healthy, but it is the old one
    for slot in (1, 2):  # the rolling update: new containers up, old ones retired
        fake.add_container("c", "shop", "web", slot, "n1", RUNNING, generation=2)
        fake.add_container("c", "shop", "web", slot, "n1", RUNNING, desired=pb.DESIRED_STATE_REMOVED)
    fake.set_service_status("c", "shop", "web", 2, 2)
    final = await w.task
    assert final.done and final.services[1].updated == 2


async def test_image_not_found_fails_at_once(client: ccs.AsyncClient, fake: FakeApi) -> None:
    await client.applications.create("c", "shop", TEMPLATE)
    w = Watcher(client)
    await w.next()
    fake.add_container("c", "shop", "web", 1, "n1", FAILED, message="image not found: local/nope:1", reason=NOT_FOUND)
    with pytest.raises(DeployFailed) as info:
        await w.task
    assert (info.value.service, info.value.reason) == ("web", "image not found: local/nope:1")
    assert str(info.value) == "service web: image not found: local/nope:1"


async def test_crash_loop_fails_with_the_status_text(client: ccs.AsyncClient, fake: FakeApi) -> None:
    await client.applications.create("c", "shop", TEMPLATE)
    w = Watcher(client)
    await w.next()
    fake.add_container("c", "shop", "web", 2, "n1", EXITED, exit_code=1, desired=pb.DESIRED_STATE_STOPPED,
                       labels={"ccs.outcome": "failed", "ccs.outcome.message": CRASH})
    fake.set_service_status("c", "shop", "web", 1, 1, f"1/2 running; slot 2: {CRASH}")
    with pytest.raises(DeployFailed) as info:
        await w.task
    assert info.value.reason == f"slot 2: {CRASH}" and info.value.exit_code == 1


async def test_unschedulable_fails_after_the_grace(client: ccs.AsyncClient, fake: FakeApi) -> None:
    await client.applications.create("c", "shop", TEMPLATE)
    w = Watcher(client, unschedulable_grace=0.2)
    await w.next()
    fake.add_container("c", "shop", "web", 1, "", PENDING, message=NO_CPU)
    with pytest.raises(DeployFailed) as info:
        await w.task
    assert info.value.message == f"service web: no node fits: {NO_CPU}"


async def test_timeout_names_the_services_not_ready(client: ccs.AsyncClient, fake: FakeApi) -> None:
    await client.applications.create("c", "shop", TEMPLATE)
    run_service(fake, "db", 1)
    fake.set_service_status("c", "shop", "web", 0, 0, "0/2 running; waiting for db to be healthy (0/1 healthy)")
    with pytest.raises(WaitTimeout) as info:
        await client.applications.wait("c", "shop", timeout=0.3)
    assert info.value.pending == {"web": "0/2 running; waiting for db to be healthy (0/1 healthy)"}
    assert info.value.message.startswith("timed out after 0.3s waiting for web (0/2 running; waiting for db")


async def test_missing_or_deleted_application(client: ccs.AsyncClient, fake: FakeApi) -> None:
    with pytest.raises(NotFound, match="application 'shop' not found"):
        await client.applications.wait("c", "shop", timeout=5)
    await client.applications.create("c", "shop", TEMPLATE)
    w = Watcher(client)
    await w.next()
    await client.applications.delete("c", "shop")
    with pytest.raises(NotFound, match="deleted while waiting"):
        await w.task


async def test_bad_timeout_is_refused(client: ccs.AsyncClient) -> None:
    with pytest.raises(ValueError, match="timeout: must be a positive number of seconds, got -1"):
        await client.applications.wait("c", "shop", timeout=-1)


def test_blocking_client_waits_too(fake: FakeApi) -> None:
    def reconcile(api: FakeApi, cluster: str, app: str) -> None:
        run_service(api, "web", 2)
        run_service(api, "db", 1)

    fake.reconcile_hook = reconcile
    seen: list[Progress] = []
    with serve_in_thread(fake) as served, ccs.Client(served.address, tls=False) as blocking:
        blocking.applications.create("c", "shop", TEMPLATE)
        final = blocking.applications.wait("c", "shop", timeout=10, on_progress=seen.append)
    assert final.done and seen[-1] == final


@pytest.mark.parametrize(("restarts", "state", "fails"), [
    ("3", EXITED, True),   # the fourth instance of the slot died too: a crash loop
    ("2", EXITED, False),  # still within the tolerance
    ("5", RUNNING, False),  # restarted often, but running now
])
def test_unlimited_restarts_still_end_the_wait_as_a_crash_loop(restarts: str, state: int, fails: bool) -> None:
    dying = ctr(2, state, ccs_restart_count=restarts)
    failure = assess(snap([svc(running=1)], [ctr(1), dying]), 0.0, {}).failure
    if fails:
        assert failure is not None
        assert failure.reason == "crash loop: slot 2 restarted 3 times, last exited with code 1"
        assert failure.exit_code == 1
    else:
        assert failure is None
