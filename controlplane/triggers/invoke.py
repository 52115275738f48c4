"""One trigger call, checked and acted on: the HTTPS endpoint and ``InvokeTrigger`` share it.

Order of the checks, and why:

1. the rate limit (per trigger, before any etcd read: a flood costs the server nothing but
   the refusal; 429 with ``Retry-After``);
2. the trigger exists and belongs to the application that exists now (404);
3. the signature (401), against the secret decrypted from the secrets store;
4. the body's parameters (400, naming the field);
5. the action, with the delivery id's claim riding on its own etcd transaction (the store's
   rider, :data:`controlplane.store.txn.RIDER`): a compare that the delivery key is absent and
   that the trigger record and secret version of steps 2-3 are unchanged, the put of the key
   on a TTL lease, the call's audit record, and the action's own writes, all in one
   transaction. An accepted call is one etcd write; a replay (401) or a stale copy fails the
   whole transaction, so the action's write never lands without its claim, nor the claim
   without the write (a refused action leaves no claim, and a redelivery may try again). An
   action that writes nothing (an unchanged redeploy) claims right after, with its record.
   The action's refusals answer the status the API's gRPC code maps to
   (``controlplane.grpc_errors.HTTP_STATUS``).

Steps 2-3 read no etcd when the watch-fed cache (:mod:`.cache`) and the informer hold the
trigger, its secret and the application; the guard of step 5 is what makes that safe: a copy
older than a rotation or a removal fails it (and the action's write with it), and the call is
checked again against etcd. A signature the cached secret does not match is checked against
etcd's too (a rotation the copy has not seen yet), so a new secret works at once.
``InvokeTrigger`` checks no secret and reads the record from etcd.

A refused call writes nothing but its audit record. Every call gets one (accepted or not). An
accepted call's rides on the action's transaction, batched into its one write rather than
left to an asynchronous writer: a change that landed never lacks its record, a crash cannot
lose one, and it costs no round trip of its own. Refusals of unknown triggers and bad
signatures go through a token bucket per server, as unauthenticated gRPC calls do
(``controlplane.access.audit``), so a flood of forged calls cannot fill etcd; what is skipped
is counted in a warning. No answer, record or log line holds the secret or a signature.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import structlog

from ccs.v1 import resources_pb2 as pb
from ccs.v1 import triggers_pb2 as tpb
from controlplane.access.audit import ANONYMOUS_BURST, ANONYMOUS_RATE, MAX_MESSAGE, MAX_TARGET, TokenBucket
from controlplane.grpc_errors import HTTP_STATUS, bounded, status_of
from controlplane.informer import Informer
from controlplane.secrets.keyring import Keyring
from controlplane.secrets.store import Version
from controlplane.store import NotFound, keys
from controlplane.store.codec import encode
from controlplane.store.events import event_id
from controlplane.store.meta import now
from controlplane.store.txn import RIDER, Rider, RiderRefused, Txn
from controlplane.triggers import callback
from controlplane.triggers.actions import ACTION_NAMES, Actions, Outcome
from controlplane.triggers.cache import TriggerCache
from controlplane.triggers.callback_target import CallbackRefused
from controlplane.triggers.records import CCS_TTL, GITHUB_TTL, Replay, Stale, TriggerStore, refusal
from controlplane.triggers.rules import BodyError, Params, RateLimiter, parse_body
from controlplane.triggers.signature import SignatureError, Verified, verify

log = structlog.get_logger("ccs.triggers")

METHOD = "Trigger/POST"


class Refused(Exception):
    """A call answered with ``status`` (HTTP) and ``message``; nothing changed. ``code``: the
    gRPC code the refusal came from, when it came from the API's write paths (``InvokeTrigger``
    answers with it, and the audit record names it)."""

    def __init__(self, status: int, message: str, retry_after: float = 0.0,
                 code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after, self.code = status, message, retry_after, code


@dataclass(frozen=True)
class Accepted:
    trigger: tpb.Trigger
    outcome: Outcome
    delivery: str
    status_url: str


def status_token(digest_key: bytes, cluster: str, app: str, release: str) -> str:
    """The unguessable part of a release's status URL: an HMAC under a key only the servers
    hold, so the URL shows that one release's phase to whoever has it, and nothing else."""
    msg = f"trigger-status\n{cluster}\n{app}\n{release}".encode()
    return hmac.new(digest_key, msg, hashlib.sha256).hexdigest()[:40]


class Invoker:
    def __init__(self, store: TriggerStore, actions: Actions, keyring: Keyring, *,
                 base_url: str = "", limiter: RateLimiter | None = None, cache: TriggerCache | None = None,
                 informer: Informer | None = None, allow_private_callbacks: bool = False) -> None:
        self.store, self.actions, self.keyring = store, actions, keyring
        self.allow_private_callbacks = allow_private_callbacks
        self.cache, self.informer = cache, informer
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter or RateLimiter()
        self.refusals = TokenBucket(ANONYMOUS_RATE, ANONYMOUS_BURST)
        self._dropped_logged = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ URLs

    def trigger_url(self, cluster: str, app: str, name: str) -> str:
        return f"{self.base_url}/v1/triggers/{cluster}/{app}/{name}" if self.base_url else ""

    def status_url(self, cluster: str, app: str, release: str) -> str:
        if not self.base_url or not release:
            return ""
        token = status_token(self.keyring.digest_key(), cluster, app, release)
        return f"{self.base_url}/v1/status/{cluster}/{app}/{release}/{token}"

    def check_status_token(self, cluster: str, app: str, release: str, token: str) -> bool:
        expected = status_token(self.keyring.digest_key(), cluster, app, release)
        return hmac.compare_digest(token.encode(), expected.encode())

    # ------------------------------------------------------------------ calls

    async def trigger_of(self, cluster: str, app: str, name: str) -> tpb.Trigger:
        """The trigger, read from etcd, if it and the application it was made for both exist (else 404)."""
        try:
            trigger = await self.store.get(cluster, app, name)
        except NotFound:
            raise Refused(404, f"no trigger {app}/{name} in cluster {cluster}") from None
        await self._check_application(trigger)
        return trigger

    async def _read(self, cluster: str, app: str, name: str) -> tuple[tpb.Trigger, Version]:
        """The record and its secret version from etcd (404 if either it or its application is gone)."""
        try:
            trigger, secret = await self.store.read(cluster, app, name)
        except NotFound:
            raise Refused(404, f"no trigger {app}/{name} in cluster {cluster}") from None
        except Stale:
            raise Refused(409, f"trigger {app}/{name} is being rotated or removed; try again") from None
        await self._check_application(trigger)
        return trigger, secret

    async def _check_application(self, trigger: tpb.Trigger) -> None:
        """404 unless the application the trigger was made for is the one of that name now.
        The informer's copy answers when it agrees (no etcd read); etcd decides otherwise."""
        cluster, app, name = trigger.cluster, trigger.application, trigger.meta.name
        state = self.informer.clusters.get(cluster) if self.informer is not None else None
        seen = state.apps.get(app) if state is not None else None
        if seen is not None and seen.meta.id == trigger.application_id:
            return
        try:
            current = await self.actions.application(cluster, app)
        except NotFound:
            raise Refused(404, f"no trigger {app}/{name} in cluster {cluster}") from None
        if current.meta.id != trigger.application_id:
            raise Refused(404, f"trigger {app}/{name} was made for an earlier application of that name "
                               "(remove it and make a new one)")

    async def _checked(self, cluster: str, app: str, name: str, headers: dict[str, str], body: bytes
                       ) -> tuple[tpb.Trigger, Version, Verified, bool]:
        """The trigger, the secret version the call's signature matches and what it says; from the
        cache when it has them (``True`` last), else from etcd. A signature that does not match
        the cached secret is checked again against etcd's (a rotation the cache has not seen)."""
        cached = self.cache.lookup(cluster, app, name) if self.cache is not None else None
        if cached is not None:
            await self._check_application(cached.trigger)
            try:
                verified = verify(headers, body, await self.store.secrets.value(cached.secret), time.time())
                return cached.trigger, cached.secret, verified, True
            except SignatureError:
                pass
        trigger, secret = await self._read(cluster, app, name)
        try:
            verified = verify(headers, body, await self.store.secrets.value(secret), time.time())
        except SignatureError as e:
            raise Refused(401, str(e)) from None
        return trigger, secret, verified, False

    def _rate(self, cluster: str, app: str, name: str) -> None:
        k = f"{cluster}/{app}/{name}"
        if not self.limiter.take(k, time.monotonic()):
            retry = self.limiter.retry_after(k)
            raise Refused(429, f"trigger {app}/{name}: more than {self.limiter.rate:g} calls a second "
                               f"(bursts of {self.limiter.burst:g}); retry in {retry:.1f}s", retry)

    async def _act_claimed(self, trigger: tpb.Trigger, secret: Version, verified: Verified, cached: bool,
                           params: Params, headers: dict[str, str], body: bytes, audit: _Record
                           ) -> tuple[tpb.Trigger, Outcome, bool]:
        """Run the action with the delivery's claim and the call's audit record riding on its
        transaction (:data:`controlplane.store.txn.RIDER`): an accepted call is one etcd write,
        and a refused action leaves no claim behind, so a redelivery may try again. An action
        that wrote nothing (unchanged) claims afterwards, its record with it. A claim guard the
        cached copy fails (rotated or removed since) has the copy replaced by etcd's and the
        signature checked again before trying once more. The trigger acted on, the outcome, and
        whether the call's final audit record is written."""
        ttl = GITHUB_TTL if verified.form == "github" else CCS_TTL
        while True:
            claim, claim_key = await self.store.claim_txn(trigger, secret, verified.delivery, ttl)
            rider = Rider(claim.put(*audit.encoded(200, f"accepted: {_asked(trigger, params)}", wrote=True)))
            reset = RIDER.set(rider)
            refused: Exception | None = None
            try:
                outcome = await self.act(trigger, params)
            except RiderRefused as e:  # the action's transaction failed on the claim: nothing written
                refused = refusal(e.error, trigger, verified.delivery)
            except Refused:
                if rider.landed and not rider.revision:  # claimed on its own; the action wrote nothing
                    await self.store.release_claim(claim_key)
                raise
            finally:
                RIDER.reset(reset)
                rider.closed = True
                audit.revision = rider.revision
            if refused is None:
                if rider.landed:
                    return trigger, outcome, rider.attached
                try:  # nothing written (unchanged): claim now, so a replay of it is still refused
                    await self.store.claim(trigger, secret, verified.delivery, ttl,
                                           also=audit.encoded(200, outcome.message, wrote=False))
                    return trigger, outcome, True
                except (Replay, Stale) as e:
                    refused = e
            if isinstance(refused, Replay):
                raise Refused(401, f"delivery {verified.delivery!r} was accepted before: a replay")
            if not isinstance(refused, Stale):
                raise refused
            if not cached:
                raise Refused(409, f"trigger {trigger.application}/{trigger.meta.name} was rotated or removed "
                                   "while called; try again")
            trigger, secret = await self._read(trigger.cluster, trigger.application, trigger.meta.name)
            try:
                verify(headers, body, await self.store.secrets.value(secret), time.time())
            except SignatureError as e:
                raise Refused(401, str(e)) from None
            cached = False

    async def signed_call(self, cluster: str, app: str, name: str, headers: dict[str, str], body: bytes,
                          peer: str) -> Accepted:
        """The HTTPS endpoint's call; :class:`Refused` says why not (and nothing changed)."""
        delivery = headers.get("x-ccs-delivery") or headers.get("x-github-delivery") or ""
        audit = _Record(cluster, app, name, peer, delivery)
        try:
            self._rate(cluster, app, name)
            trigger, secret, verified, cached = await self._checked(cluster, app, name, headers, body)
            if verified.form == "github" and headers.get("x-github-event") == "ping":
                # GitHub's first delivery to a new webhook: answered, acted on by nothing.
                outcome = Outcome("pong", message="GitHub ping: the webhook reaches this trigger")
                await self._audit(audit, 200, outcome.message)
                return Accepted(trigger, outcome, verified.delivery, "")
            try:
                params = parse_body(body, headers.get("content-type", ""))
            except BodyError as e:
                raise Refused(400, str(e)) from None
            trigger, outcome, recorded = await self._act_claimed(trigger, secret, verified, cached, params,
                                                                 headers, body, audit)
        except Refused as r:
            await self._audit(audit, r.status, r.message, r.code)
            raise
        except Exception as e:
            await self._audit(audit, 500, type(e).__name__)
            raise
        accepted = self._accepted(trigger, outcome, verified.delivery)
        if not recorded:  # the record did not fit the action's transaction: written now
            await self._audit(audit, 200, outcome.message)
        return accepted

    async def act(self, trigger: tpb.Trigger, params: Params) -> Outcome:
        """Run the action; an error the caller caused becomes :class:`Refused`."""
        try:
            return await self.actions.run(trigger, params)
        except RiderRefused:  # the call's own claim failed (the caller says what it means)
            raise
        except Exception as e:
            # The API's one mapping (controlplane.grpc_errors) decides, so a trigger's refusal is
            # the one `ccs app update` gets for the same change, in HTTP's words.
            mapped = status_of(e)
            if mapped is None:
                log.exception("trigger action failed", trigger=trigger.meta.name, app=trigger.application)
                raise Refused(500, f"internal error: {type(e).__name__}") from None
            code, message = mapped
            raise Refused(HTTP_STATUS.get(code, 500), bounded(message), code=code) from None

    async def token_call(self, cluster: str, app: str, name: str, params: Params) -> Accepted:
        """``InvokeTrigger`` (a token with the trigger role; the gate audits it): the rate limit
        first, then the trigger as etcd has it (no secret is checked, so no cache is needed)."""
        self._rate(cluster, app, name)
        trigger = await self.trigger_of(cluster, app, name)
        outcome = await self.act(trigger, params)
        return self._accepted(trigger, outcome, "")

    def _accepted(self, trigger: tpb.Trigger, outcome: Outcome, delivery: str) -> Accepted:
        url = self.status_url(trigger.cluster, trigger.application, outcome.release)
        if trigger.callback_url:
            task = asyncio.create_task(self._callback(trigger, outcome, delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return Accepted(trigger, outcome, delivery, url)

    async def _callback(self, trigger: tpb.Trigger, outcome: Outcome, delivery: str) -> None:
        try:
            phase = outcome.result
            if outcome.release:
                phase = await callback.final_phase(self.actions.etcd, trigger.cluster, trigger.application,
                                                   outcome.release)
            doc: dict[str, Any] = {"trigger": trigger.meta.name, "cluster": trigger.cluster,
                                   "application": trigger.application, "delivery": delivery,
                                   "result": outcome.result, "release": outcome.release, "phase": phase}
            await callback.send(trigger.callback_url, doc, await self.store.secret(trigger),
                                allow_private=self.allow_private_callbacks)
        except CallbackRefused as e:  # its address changed since the trigger was made
            log.warning("trigger callback refused", trigger=trigger.meta.name, app=trigger.application,
                        field="callback_url", reason=str(e))
        except Exception as e:  # the call was answered long ago: say it in the log
            log.warning("trigger callback not delivered", trigger=trigger.meta.name, app=trigger.application,
                        error=type(e).__name__)

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()

    # ------------------------------------------------------------------ audit

    async def _audit(self, audit: _Record, status: int, message: str, code: grpc.StatusCode | None = None) -> None:
        if status in (401, 404, 429) and not self.refusals.take():
            if self.refusals.dropped - self._dropped_logged >= 100 or not self._dropped_logged:
                log.warning("refused trigger calls not audited (rate limit)", dropped=self.refusals.dropped)
                self._dropped_logged = self.refusals.dropped
            return
        key, value = audit.encoded(status, message, wrote=bool(audit.revision), code=code)
        try:
            await Txn().put(key, value).commit(self.store.etcd)
        except Exception as e:
            log.error("audit record not written", error=str(e), method=METHOD, target=audit.target,
                      result=code.name if code else _RESULTS.get(status, "UNKNOWN"))


@dataclass
class _Record:
    """One call's audit record: made once (its id and key), written at most twice (riding on the
    action's transaction, then with the answer)."""

    cluster: str
    app: str
    name: str
    peer: str
    delivery: str
    revision: int = 0
    rid: str = field(default_factory=event_id)

    @property
    def target(self) -> str:
        return f"trigger {self.cluster}/{self.app}/{self.name}"[:MAX_TARGET]

    def encoded(self, status: int, message: str, *, wrote: bool, code: grpc.StatusCode | None = None
                ) -> tuple[str, bytes]:
        text = f"delivery {self.delivery}: {message}" if self.delivery else message
        rec = pb.AuditRecord(
            meta=pb.Meta(id=self.rid, name=self.rid, created_at=now()), method=METHOD, target=self.target,
            peer=self.peer[:MAX_TARGET], token_name=f"trigger {self.name}"[:MAX_TARGET], role="trigger",
            result=code.name if code else _RESULTS.get(status, "UNKNOWN"), message=text[:MAX_MESSAGE], wrote=wrote,
            revision=self.revision)
        return keys.audit(self.rid), encode(rec)


_RESULTS = {200: "OK", 400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
            409: "FAILED_PRECONDITION",
            429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def _asked(trigger: tpb.Trigger, params: Params) -> str:
    """What the call asked, for its audit record (written before the answer is known)."""
    what = ACTION_NAMES.get(trigger.action, "?") + (f" {trigger.service}" if trigger.service else "")
    if params.tag:
        what += f" tag {params.tag}"
    if params.replicas is not None:
        what += f" replicas {params.replicas}"
    if params.version:
        what += f" version {params.version}"
    return what


def action_name(trigger: tpb.Trigger) -> str:
    return ACTION_NAMES.get(trigger.action, "?")
