"""The pure rules of trigger calls: signatures (GitHub's and ccs's), timestamps, bodies, retagging
and the per-trigger rate limit (controlplane/triggers/signature.py and rules.py)."""

from __future__ import annotations

import pytest

from controlplane.triggers.rules import BodyError, Params, RateLimiter, parse_body, retag
from controlplane.triggers.signature import MAX_AGE, SignatureError, ccs_signature, github_signature, verify

# GitHub's published example ("Validating webhook deliveries", docs.github.com).
GH_SECRET = b"It's a Secret to Everybody"
GH_PAYLOAD = b"Hello, World!"
GH_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
NOW = 1_800_000_000.0


def test_githubs_published_example_passes() -> None:
    assert github_signature(GH_SECRET, GH_PAYLOAD) == GH_SIGNATURE
    got = verify({"x-hub-signature-256": GH_SIGNATURE, "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
                 GH_PAYLOAD, GH_SECRET, NOW)
    assert (got.form, got.delivery) == ("github", "72d3162e-cc78-11e3-81ab-4c9367dc0958")


def test_a_changed_byte_or_secret_fails_githubs_form() -> None:
    headers = {"x-hub-signature-256": GH_SIGNATURE, "x-github-delivery": "d"}
    with pytest.raises(SignatureError, match="x-hub-signature-256: does not match"):
        verify(headers, b"Hello, World?", GH_SECRET, NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(headers, GH_PAYLOAD, b"another secret", NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify({**headers, "x-hub-signature-256": GH_SIGNATURE.removeprefix("sha256=")}, GH_PAYLOAD, GH_SECRET, NOW)


def ccs_headers(secret: bytes, body: bytes, at: float, delivery: str = "build-1") -> dict[str, str]:
    stamp = str(int(at))
    return {"x-ccs-signature": ccs_signature(secret, stamp, body), "x-ccs-timestamp": stamp,
            "x-ccs-delivery": delivery}


def test_ccs_form_signs_the_timestamp_and_the_body() -> None:
    body = b'{"tag": "v2"}'
    assert verify(ccs_headers(b"s", body, NOW), body, b"s", NOW).delivery == "build-1"
    headers = ccs_headers(b"s", body, NOW)
    headers["x-ccs-timestamp"] = str(int(NOW) + 1)  # the stamp is part of what is signed
    with pytest.raises(SignatureError, match="x-ccs-signature: does not match"):
        verify(headers, body, b"s", NOW)


@pytest.mark.parametrize("skew", [-MAX_AGE - 1, MAX_AGE + 1])
def test_ccs_form_refuses_a_timestamp_too_old_or_too_far_ahead(skew: float) -> None:
    body = b"{}"
    with pytest.raises(SignatureError, match="x-ccs-timestamp: more than 300 seconds"):
        verify(ccs_headers(b"s", body, NOW + skew), body, b"s", NOW)


@pytest.mark.parametrize("skew", [-MAX_AGE, MAX_AGE])
def test_ccs_form_accepts_the_edges_of_the_window(skew: float) -> None:
    body = b"{}"
    assert verify(ccs_headers(b"s", body, NOW + skew), body, b"s", NOW).form == "ccs"


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({}, "unsigned"),
        ({"x-ccs-signature": "sha256=00"}, "x-ccs-timestamp: missing"),
        ({"x-ccs-signature": "sha256=00", "x-ccs-timestamp": "yesterday"}, "is not Unix seconds"),
        ({"x-ccs-signature": "sha256=00", "x-ccs-timestamp": "nan"}, "x-ccs-timestamp: more than"),
    ],
)
def test_malformed_calls_say_which_header(headers: dict[str, str], says: str) -> None:
    with pytest.raises(SignatureError, match=says):
        verify(headers, b"", b"s", NOW)


def test_a_delivery_id_is_required_and_bounded() -> None:
    body = b""
    headers = ccs_headers(b"s", body, NOW)
    del headers["x-ccs-delivery"]
    with pytest.raises(SignatureError, match="x-ccs-delivery: missing"):
        verify(headers, body, b"s", NOW)
    with pytest.raises(SignatureError, match="x-ccs-delivery: must be 1-128"):
        verify(ccs_headers(b"s", body, NOW, delivery="a/b"), body, b"s", NOW)
    with pytest.raises(SignatureError, match="x-github-delivery: missing"):
        verify({"x-hub-signature-256": github_signature(b"s", body)}, body, b"s", NOW)


def test_refusals_never_hold_the_secret_or_the_expected_signature() -> None:
    secret, body = b"hunter2-hunter2", b"{}"
    expected = ccs_signature(secret, str(int(NOW)), body)
    for headers in ({"x-ccs-signature": "sha256=00", "x-ccs-timestamp": str(int(NOW)), "x-ccs-delivery": "d"},
                    {"x-hub-signature-256": "sha256=00", "x-github-delivery": "d"}):
        with pytest.raises(SignatureError) as e:
            verify(headers, body, secret, NOW)
        assert "hunter2" not in str(e.value) and expected.removeprefix("sha256=") not in str(e.value)


@pytest.mark.parametrize(
    ("body", "params"),
    [
        (b"", Params()),
        (b'{"tag": "v2.1_rc-3"}', Params(tag="v2.1_rc-3")),
        (b'{"replicas": 0}', Params(replicas=0)),
        (b'{"version": "1.2", "ref": "refs/heads/main", "commits": []}', Params(version="1.2")),  # GitHub's keys
    ],
)
def test_bodies(body: bytes, params: Params) -> None:
    assert parse_body(body) == params


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "body: not JSON"),
        (b"[1]", "body: must be a JSON object"),
        (b'{"tag": "has space"}', "tag: must be an image tag"),
        (b'{"tag": 2}', "tag: must be an image tag"),
        (b'{"replicas": -1}', "replicas: must be a whole number"),
        (b'{"replicas": true}', "replicas: must be a whole number"),
        (b'{"replicas": 2.5}', "replicas: must be a whole number"),
        (b'{"version": 3}', "version: must be a string"),
    ],
)
def test_bad_bodies_name_the_field(body: bytes, says: str) -> None:
    with pytest.raises(BodyError, match=says):
        parse_body(body)


def test_a_form_encoded_github_payload_is_refused_with_what_to_change() -> None:
    with pytest.raises(BodyError, match="application/json"):
        parse_body(b"payload=%7B%7D", "application/x-www-form-urlencoded")


@pytest.mark.parametrize(
    ("image", "tag", "out"),
    [
        ("local/webapp:v1", "v2", "local/webapp:v2"),
        ("local/webapp", "v2", "local/webapp:v2"),
        ("reg.example:5000/team/app:1", "2", "reg.example:5000/team/app:2"),
        ("reg.example:5000/team/app", "2", "reg.example:5000/team/app:2"),
        ("app:1@sha256:" + "a" * 64, "2", "app:2"),
    ],
)
def test_retag(image: str, tag: str, out: str) -> None:
    assert retag(image, tag) == out


def test_the_rate_limit_is_a_bucket_per_trigger() -> None:
    limiter = RateLimiter(rate=1.0, burst=3.0)
    assert [limiter.take("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.take("b", 0.0)  # another trigger has its own bucket
    assert limiter.retry_after("a") == pytest.approx(1.0)
    assert not limiter.take("a", 0.5) and limiter.take("a", 1.5)  # one more a second
    assert [limiter.take("a", 100.0) for _ in range(4)] == [True, True, True, False]  # saved up to the burst


def test_the_rate_limiter_keeps_a_bounded_number_of_buckets() -> None:
    limiter = RateLimiter(rate=1.0, burst=2.0, max_keys=3)
    for k in "abc":
        limiter.take(k, 0.0)
    limiter.take("d", 10.0)  # a, b and c are full again by then: forgotten
    assert len(limiter._buckets) == 1


def test_retagging_a_template_changes_one_tag_and_keeps_the_rest() -> None:
    from controlplane.grpc_errors import FailedPrecondition
    from controlplane.triggers.actions import retag_template

    template = ('# shop\nservices:\n  web:\n    image: "local/webapp:v1"  # moved by CI\n'
                "  db:\n    image: local/db:1\n  built:\n    build: .\n  env:\n    image: app:${TAG}\n")
    out = retag_template(template, "web", "v2")
    assert out == template.replace('"local/webapp:v1"', '"local/webapp:v2"')
    for service, says in (("nope", "not in the application's template"), ("built", "has no image"),
                          ("env", "interpolated")):
        with pytest.raises(FailedPrecondition, match=says):
            retag_template(template, service, "v2")


@pytest.mark.parametrize(("value", "parsed"), [
    (":7480", ("0.0.0.0", 7480)), ("127.0.0.1:0", ("127.0.0.1", 0)), ("[::1]:8443", ("::1", 8443)),
    ("off", None), ("OFF", None), ("none", None),
])
def test_http_listen_values(value: str, parsed: tuple[str, int] | None) -> None:
    from controlplane.http.server import parse_listen

    assert parse_listen(value) == parsed


def test_a_bad_http_listen_is_a_usage_error_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from controlplane.main import parse_args

    with pytest.raises(SystemExit) as e:
        parse_args(["--http-listen", "7480"])
    assert e.value.code == 2
    assert "--http-listen: '7480' is not HOST:PORT, :PORT or off" in capsys.readouterr().err
