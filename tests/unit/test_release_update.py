"""``plan_update``: services, generations, strategy, canary defaults, numbering, supersede (tables)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from ccs import models as sdk_models
from ccs.release_phases import TERMINAL_PHASES, is_terminal
from ccs.v1 import resources_pb2 as pb
from controlplane.release import (
    DEFAULT_CANARY_ANALYSIS,
    DEFAULT_CANARY_STEPS,
    TERMINAL,
    ReleaseError,
    ReleaseOptions,
    UpdatePlan,
    plan_update,
)

NOW = Timestamp(seconds=1_700_000_000)
REVISION = 5


def spec(image: str = "web:1", strategy: str = "", glob: bool = False, replicas: int = 2) -> pb.ServiceSpec:
    return pb.ServiceSpec(image=image, strategy=strategy, replicas=replicas,
                          mode=pb.SERVICE_MODE_GLOBAL if glob else pb.SERVICE_MODE_REPLICATED)


def stored(name: str, s: pb.ServiceSpec, generation: int = 3, last_generation: int = 0) -> pb.Service:
    svc = pb.Service(application="shop", cluster="c1", spec=s, generation=generation,
                     last_generation=last_generation or generation, app_revision=REVISION - 1)
    svc.meta.name = name
    svc.meta.resource_version = 40 + generation
    return svc


def release(number: int, phase: pb.ReleasePhase) -> pb.Release:
    r = pb.Release(application="shop", number=number, status=pb.ReleaseStatus(phase=phase))
    r.meta.name = f"r{number:06d}"
    r.meta.resource_version = 77
    return r


def app() -> pb.Application:
    a = pb.Application(cluster="c1", revision=REVISION, spec=pb.ApplicationSpec(version="2"))
    a.meta.name = "shop"
    return a


def plan(parsed: dict[str, pb.ServiceSpec], current: list[pb.Service], latest: pb.Release | None = None,
         options: ReleaseOptions | None = None, revised: bool = True) -> UpdatePlan:
    return plan_update(app(), pb.ApplicationSpec(version="1"), parsed, current, latest,
                       options or ReleaseOptions(), revised=revised, now=NOW,
                       release_name=lambda n: f"r{n:06d}")


@dataclass
class Case:
    name: str
    parsed: dict[str, pb.ServiceSpec]
    current: list[pb.Service]
    summary: list[str]
    strategy: str | None  # the release's, None: no release
    options: ReleaseOptions = field(default_factory=ReleaseOptions)


SERVICE_CASES = [
    Case("nothing changed: no release", {"web": spec()}, [stored("web", spec())], [], None),
    Case("a new service is created, without a release", {"web": spec(), "db": spec("db:1")},
         [stored("web", spec())], ["+db"], None),
    Case("a service gone from the template is removed, without a release", {"web": spec()},
         [stored("web", spec()), stored("old", spec("old:1"))], ["-old"], None),
    Case("a changed service starts a release, rolling by default", {"web": spec("web:2")},
         [stored("web", spec())], ["~web"], "rolling"),
    Case("the template asks (x-ccs.strategy)", {"web": spec("web:2", "blue-green")},
         [stored("web", spec("web:1", "blue-green"))], ["~web"], "blue-green"),
    Case("the flag wins over the template", {"web": spec("web:2", "blue-green")},
         [stored("web", spec())], ["~web"], "canary", ReleaseOptions(strategy="canary")),
    Case("only changed services ask: an unchanged one asking otherwise does not count",
         {"web": spec("web:2", "blue-green"), "db": spec("db:1", "canary")},
         [stored("web", spec()), stored("db", spec("db:1", "canary"))], ["~web"], "blue-green"),
    Case("changed services asking alike agree", {"a": spec("a:2", "canary"), "b": spec("b:2", "canary")},
         [stored("a", spec("a:1")), stored("b", spec("b:1"))], ["~a", "~b"], "canary"),
    Case("all three at once, in template order then removals",
         {"new": spec("new:1"), "web": spec("web:2")},
         [stored("old", spec("old:1")), stored("web", spec())], ["+new", "~web", "-old"], "rolling"),
]


@pytest.mark.parametrize("case", SERVICE_CASES, ids=[c.name for c in SERVICE_CASES])
def test_services_and_strategy(case: Case) -> None:
    before = [pb.Service() for _ in case.current]
    for copy, s in zip(before, case.current, strict=True):
        copy.CopyFrom(s)
    p = plan(case.parsed, case.current, options=case.options)
    assert p.summary == case.summary
    assert case.current == before, "plan_update must not modify its input"
    assert set(p.created) == {s[1:] for s in case.summary if s[0] == "+"}
    assert [s.meta.name for s in p.removed] == [s[1:] for s in case.summary if s[0] == "-"]
    if case.strategy is None:
        assert p.release is None and p.superseded is None
    else:
        assert p.release is not None and p.release.spec.strategy == case.strategy
        assert list(p.release.spec.services) == [s.meta.name for s in p.changed]


@pytest.mark.parametrize(
    ("parsed", "current", "options", "error"),
    [
        ({"a": spec("a:2", "canary"), "b": spec("b:2", "blue-green")},
         [stored("a", spec("a:1")), stored("b", spec("b:1"))], ReleaseOptions(),
         r"^strategy: the changed services ask for different strategies \(blue-green, canary\); pass one"),
        ({"a": spec("a:2")}, [stored("a", spec("a:1"))], ReleaseOptions(strategy="sideways"),
         r"^strategy: 'sideways' is not one of rolling, blue-green, canary"),
    ],
    ids=["changed services disagree", "unknown flag"],
)
def test_no_strategy_can_be_chosen_and_the_error_names_the_field(
    parsed: dict[str, pb.ServiceSpec], current: list[pb.Service], options: ReleaseOptions, error: str
) -> None:
    with pytest.raises(ReleaseError, match=error):
        plan(parsed, current, options=options)


def test_passing_a_strategy_settles_a_disagreement() -> None:
    p = plan({"a": spec("a:2", "canary"), "b": spec("b:2", "blue-green")},
             [stored("a", spec("a:1")), stored("b", spec("b:1"))], options=ReleaseOptions(strategy="rolling"))
    assert p.release is not None and p.release.spec.strategy == "rolling"


@pytest.mark.parametrize(
    ("generation", "last_generation", "glob", "expect_generation", "expect_desired"),
    [(3, 3, False, 4, 2), (2, 5, False, 6, 2), (1, 1, True, 2, 0)],
    ids=["next generation", "after a rollback: past the newest ever", "global: desired is the scheduler's"],
)
def test_a_changed_service_moves_to_its_next_generation_and_the_release_records_the_previous(
    generation: int, last_generation: int, glob: bool, expect_generation: int, expect_desired: int
) -> None:
    old = stored("web", spec(glob=glob), generation, last_generation)
    p = plan({"web": spec("web:2", glob=glob)}, [old])
    [new] = p.changed
    assert (new.generation, new.last_generation) == (expect_generation, expect_generation)
    assert new.spec.image == "web:2" and new.app_revision == REVISION
    assert new.status.desired == expect_desired
    assert new.meta.resource_version == old.meta.resource_version  # the guard of the write
    assert p.release is not None
    assert p.release.spec.previous_specs["web"] == old.spec
    assert p.release.spec.previous_generations["web"] == generation


@pytest.mark.parametrize(
    ("options", "replicas", "steps", "analysis"),
    [
        (ReleaseOptions(strategy="canary"), 1, list(DEFAULT_CANARY_STEPS), DEFAULT_CANARY_ANALYSIS),
        (ReleaseOptions(strategy="canary", canary_replicas=3, canary_steps=[pb.CanaryStep(weight=100)],
                        canary_analysis=pb.CanaryAnalysis(max_5xx_ratio=0.5, min_requests=1)),
         3, [pb.CanaryStep(weight=100)], pb.CanaryAnalysis(max_5xx_ratio=0.5, min_requests=1)),
    ],
    ids=["defaults", "the request's"],
)
def test_canary_defaults_and_overrides(
    options: ReleaseOptions, replicas: int, steps: list[pb.CanaryStep], analysis: pb.CanaryAnalysis
) -> None:
    p = plan({"web": spec("web:2")}, [stored("web", spec())], options=options)
    assert p.release is not None
    s = p.release.spec
    assert (s.canary_replicas, list(s.steps), s.analysis) == (replicas, steps, analysis)


def test_a_b_matching_is_kept_for_a_canary_and_rolling_overrides_for_any_strategy() -> None:
    rolling = pb.UpdateConfig(parallelism=4)
    p = plan({"web": spec("web:2")}, [stored("web", spec())],
             options=ReleaseOptions(strategy="canary", match_header="X-Beta", match_value="yes", rolling=rolling))
    assert p.release is not None
    assert (p.release.spec.match_header, p.release.spec.match_value) == ("X-Beta", "yes")
    assert p.release.spec.rolling == rolling
    p = plan({"web": spec("web:2")}, [stored("web", spec())])
    assert p.release is not None and not p.release.spec.steps and not p.release.spec.canary_replicas


@pytest.mark.parametrize(("revised", "is_rollback", "from_revision"),
                         [(True, False, REVISION - 1), (False, False, REVISION), (True, True, REVISION - 1)])
def test_the_release_spec_names_the_revisions_and_the_previous_app_spec(
    revised: bool, is_rollback: bool, from_revision: int
) -> None:
    p = plan({"web": spec("web:2")}, [stored("web", spec())], revised=revised,
             options=ReleaseOptions(is_rollback=is_rollback))
    assert p.release is not None
    s = p.release.spec
    assert (s.from_revision, s.to_revision, s.is_rollback) == (from_revision, REVISION, is_rollback)
    assert s.previous_app_spec == pb.ApplicationSpec(version="1")


@pytest.mark.parametrize(
    ("latest", "number", "superseded"),
    [
        (None, 1, False),
        (release(4, pb.RELEASE_PHASE_PROGRESSING), 5, True),
        (release(4, pb.RELEASE_PHASE_PAUSED), 5, True),
        (release(4, pb.RELEASE_PHASE_AWAITING_SHIFT), 5, True),
        (release(4, pb.RELEASE_PHASE_ROLLING_BACK), 5, True),
        *[(release(9, phase), 10, False) for phase in sorted(TERMINAL)],
    ],
    ids=lambda v: pb.ReleasePhase.Name(v.status.phase) if isinstance(v, pb.Release) else None,
)
def test_numbering_and_supersede(latest: pb.Release | None, number: int, superseded: bool) -> None:
    p = plan({"web": spec("web:2")}, [stored("web", spec())], latest)
    assert p.release is not None
    r = p.release
    assert (r.number, r.meta.name, r.application, r.cluster) == (number, f"r{number:06d}", "shop", "c1")
    assert r.status.phase == pb.RELEASE_PHASE_PROGRESSING and r.status.phase_since == NOW
    assert list(r.status.history) == [f"rolling release of revision {REVISION} (web) started"]
    if not superseded:
        assert p.superseded is None
        return
    assert latest is not None and p.superseded is not None
    old = p.superseded
    assert old.status.phase == pb.RELEASE_PHASE_SUPERSEDED
    assert old.status.message == f"superseded by {r.meta.name}" and old.status.finished_at == NOW
    assert old.status.history[-1] == f"superseded by {r.meta.name}"
    assert (old.number, old.meta.resource_version) == (latest.number, latest.meta.resource_version)
    assert latest.status.phase != pb.RELEASE_PHASE_SUPERSEDED  # the input is left alone


@pytest.mark.parametrize("phase", list(pb.ReleasePhase.values()), ids=pb.ReleasePhase.Name)
def test_the_terminal_phases_are_defined_once(phase: pb.ReleasePhase) -> None:
    ended = phase in (pb.RELEASE_PHASE_SUCCEEDED, pb.RELEASE_PHASE_ROLLED_BACK, pb.RELEASE_PHASE_FAILED,
                      pb.RELEASE_PHASE_SUPERSEDED)
    assert is_terminal(phase) == ended
    # The server's name for it and the SDK's are the same object (grep finds no other definition).
    assert TERMINAL is TERMINAL_PHASES and sdk_models.TERMINAL_PHASES is TERMINAL_PHASES


def test_a_certificate_change_alone_updates_the_service_in_place_without_a_release() -> None:
    def with_tls(version: int | None, image: str = "web:1") -> pb.ServiceSpec:
        s = spec(image)
        route = s.routes.add(port=80, domain="shop.example")
        if version is not None:
            route.tls.CopyFrom(pb.RouteTLS(secret="crt", version=version))
        return s

    old = stored("web", with_tls(1))
    for new_spec in (with_tls(2), with_tls(None)):  # a new version, or back to HTTP only
        p = plan({"web": new_spec}, [old])
        assert p.changed == [] and p.release is None and p.summary == ["~web(certificates)"]
        [new] = p.recertified
        assert new.spec == new_spec and new.generation == old.generation
        assert new.meta.resource_version == old.meta.resource_version  # the guard of the write
    # Anything else changing with it: the usual new generation and release.
    p = plan({"web": with_tls(2, "web:2")}, [old])
    assert p.recertified == [] and [s.generation for s in p.changed] == [4] and p.release is not None


@pytest.mark.parametrize(("phase", "requests", "awaits"), [
    (pb.RELEASE_PHASE_AWAITING_SHIFT, [], True),            # blue-green, new side up: the operator's turn
    (pb.RELEASE_PHASE_AWAITING_SHIFT, ["shift:50"], False),  # a request is pending: not yet acted on
    (pb.RELEASE_PHASE_AWAITING_SHIFT, ["confirm"], False),
    (pb.RELEASE_PHASE_PROGRESSING, [], False),
    (pb.RELEASE_PHASE_PAUSED, [], False),                   # a rolling pause after failures is no success
    (pb.RELEASE_PHASE_SUCCEEDED, [], False),
])
def test_a_release_awaits_an_operator_only_when_up_and_nothing_is_pending(
    phase: int, requests: list[str], awaits: bool,
) -> None:
    from ccs.release_phases import awaits_operator

    assert awaits_operator(pb.ReleaseStatus(phase=phase, requests=requests)) is awaits  # type: ignore[arg-type]
