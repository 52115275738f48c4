"""Router config rendering: structure of the HAProxy config, runtime-only vs structural diff."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ccs.v1 import resources_pb2 as pb
from nodeagent.router.config import (
    RouterSettings,
    ServerRef,
    backend_name,
    certificate_changes,
    check_entry,
    render,
    routed_containers,
    server_changes,
)

SETTINGS = RouterSettings(state_dir=Path("/var/lib/ccs/router"), bind_address="10.0.0.5", port=9080)


def be(container: str, port: int = 32768, weight: int = 100, group: str = "stable") -> pb.RouteBackend:
    return pb.RouteBackend(container=container, node="n1", address="10.0.0.7", port=port, weight=weight, group=group)


def route(service: str = "web", domain: str = "shop.example", path: str = "/", *backends: pb.RouteBackend,
          **kw: Any) -> pb.RouteEntry:
    return pb.RouteEntry(application="shop", service=service, domain=domain, path=path,
                         backends=backends or (be("web-1"),), **kw)


def table(*entries: pb.RouteEntry, version: int = 1) -> pb.RoutingTable:
    return pb.RoutingTable(cluster="c", version=version, routes=entries)


def section(text: str, header: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(header)
    out = []
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        out.append(line.strip())
    return out


def test_global_frontend_and_catch_all() -> None:
    text = render(table(), SETTINGS).text
    assert "    stats socket /var/lib/ccs/router/haproxy.sock mode 600 level admin expose-fd listeners" in text
    fe = section(text, "frontend ccs_http")
    assert fe[0] == "bind 10.0.0.5:9080"
    assert fe[-1] == "default_backend be_no_route"
    assert "http-request return status 404" in "\n".join(section(text, "backend be_no_route"))
    for option in ("http-reuse safe", "retries 3", "retry-on conn-failure empty-response response-timeout",
                   "option redispatch 1", "option idle-close-on-response", "timeout connect 3s"):
        assert f"    {option}\n" in text


def test_host_and_path_acls_longest_path_first_specific_host_first() -> None:
    entries = (
        route("any", "", "/"),
        route("web", "shop.example", "/"),
        route("api", "shop.example", "/api"),
        route("v2", "shop.example", "/api/v2/"),
        route("wild", "*.example", "/"),
    )
    rendered = render(table(*entries), SETTINGS)
    fe = section(rendered.text, "frontend ccs_http")
    order = [line.split()[1] for line in fe if line.startswith("use_backend")]
    assert order == [backend_name(entries[i]) for i in (3, 2, 1, 4, 0)]
    tag = backend_name(entries[2]).removeprefix("be_")
    assert f"acl host_{tag} req.hdr(host),field(1,:),lower -m str shop.example" in fe
    assert f"acl path_{tag} path -m str /api" in fe and f"acl path_{tag} path_beg /api/" in fe
    assert f"use_backend be_{tag} if host_{tag} path_{tag}" in fe
    wild = backend_name(entries[4]).removeprefix("be_")
    assert f"acl host_{wild} req.hdr(host),field(1,:),lower -m end .example" in fe
    assert fe[-2] == f"use_backend {backend_name(entries[0])}"  # any host, any path: last, unconditional


def test_backend_servers_weights_and_names() -> None:
    entry = route("web", "shop.example", "/", be("web-2", 32770, 0), be("web/1", 32769, 256))
    rendered = render(table(entry), SETTINGS)
    name = backend_name(entry)
    assert re.fullmatch(r"be_shop_web_[0-9a-f]{8}", name)
    assert section(rendered.text, f"backend {name}") == [
        "balance roundrobin",
        "server web-2 10.0.0.7:32770 weight 0 check inter 2s disabled",
        "server web_1 10.0.0.7:32769 weight 256 check inter 2s",
    ]
    assert rendered.weights == {(name, "web-2"): 0, (name, "web_1"): 256}
    assert rendered.servers[(name, "web_1")] == ServerRef("shop", "web", "web/1")


def test_backend_name_is_stable_and_distinct() -> None:
    a, b = route("web", "a.example", "/x"), route("web", "a.example", "/x/")
    assert backend_name(a) == backend_name(b)  # a trailing slash is the same route
    assert backend_name(a) != backend_name(route("web", "a.example", "/y"))


def test_sticky_sessions_insert_a_cookie_per_server() -> None:
    entry = route("web", "shop.example", "/", be("web-1"), be("web-2"), session_sticky=True)
    lines = section(render(table(entry), SETTINGS).text, f"backend {backend_name(entry)}")
    assert "cookie CCSSRV insert indirect nocache" in lines
    assert [line.split()[-1] for line in lines if line.startswith("server")] == ["web-1", "web-2"]


@pytest.mark.parametrize(
    ("kw", "acl"),
    [
        ({"match_header": "X-Variant", "match_value": "beta"}, "req.hdr(X-Variant) -m str beta"),
        ({"match_cookie": "variant", "match_value": "b"}, "req.cook(variant) -m str b"),
    ],
)
def test_ab_routes_matching_requests_to_the_canary_group_only(kw: dict[str, str], acl: str) -> None:
    entry = route("web", "shop.example", "/", be("web-1"), be("web-9", group="canary"), **kw)
    rendered = render(table(entry), SETTINGS)
    name = backend_name(entry)
    tag = name.removeprefix("be_")
    fe = section(rendered.text, "frontend ccs_http")
    assert f"acl ab_{tag} {acl}" in fe
    uses = [line for line in fe if line.startswith("use_backend")]
    assert uses == [f"use_backend {name}_ab if host_{tag} ab_{tag}", f"use_backend {name} if host_{tag}"]
    assert [k[1] for k in rendered.weights if k[0] == f"{name}_ab"] == ["web-9"]
    assert [k[1] for k in rendered.weights if k[0] == name] == ["web-1"]


def test_ab_without_canary_servers_is_a_plain_route() -> None:
    entry = route("web", "shop.example", "/", be("web-1"), match_header="X-Variant", match_value="beta")
    rendered = render(table(entry), SETTINGS)
    assert "_ab" not in rendered.text and "ab_" not in rendered.text


def test_weights_only_change_needs_no_reload() -> None:
    old = render(table(route("web", "s.example", "/", be("a", weight=256), be("b", weight=0))), SETTINGS)
    new = render(table(route("web", "s.example", "/", be("a", weight=128), be("b", weight=128)), version=2), SETTINGS)
    name = backend_name(route("web", "s.example", "/"))
    changes = server_changes(old, new)
    assert changes is not None and not changes.added and not changes.removed
    assert changes.weights == {(name, "a"): 128, (name, "b"): 128}
    unchanged = server_changes(new, new)
    assert unchanged is not None and not unchanged


def test_servers_coming_and_going_need_no_reload() -> None:
    old = render(table(route("web", "s.example", "/", be("a", weight=256), be("b", weight=0))), SETTINGS)
    new = render(table(route("web", "s.example", "/", be("a", weight=128), be("c", weight=100),
                             be("d", weight=0))), SETTINGS)
    name = backend_name(route("web", "s.example", "/"))
    changes = server_changes(old, new)
    assert changes is not None
    assert changes.added == {(name, "c"): ("10.0.0.7:32768", 100), (name, "d"): ("10.0.0.7:32768", 0)}
    assert changes.removed == ((name, "b"),)
    assert changes.weights == {(name, "a"): 128}


def test_a_server_whose_port_moved_takes_a_reload() -> None:
    """Its name is still taken in HAProxy until `del server` succeeds, so `add server` would fail."""
    old = render(table(route("web", "s.example", "/", be("a"), be("b"))), SETTINGS)
    new = render(table(route("web", "s.example", "/", be("a"), be("b", port=40000))), SETTINGS)
    assert server_changes(old, new) is None


def test_routed_containers_are_those_with_a_weight_above_zero() -> None:
    cfg = render(table(route("web", "s.example", "/", be("a", weight=256), be("b", weight=0)),
                       route("api", "s.example", "/api", be("c", weight=1))), SETTINGS)
    assert routed_containers(cfg) == {"a", "c"}
    assert routed_containers(None) == frozenset()


@pytest.mark.parametrize(
    "changed",
    [
        route("web", "s.example", "/v2", be("a", weight=256), be("b", weight=0)),  # a path changed
        route("web", "s.example", "/", be("a", weight=256), be("b", weight=0), session_sticky=True),
        route("web", "s.example", "/", be("a", weight=256), be("b", weight=0, group="canary"),
              match_header="X-A", match_value="1"),  # A/B split: servers move between backends
    ],
)
def test_structural_changes_need_a_reload(changed: pb.RouteEntry) -> None:
    old = render(table(route("web", "s.example", "/", be("a", weight=256), be("b", weight=0))), SETTINGS)
    assert server_changes(old, render(table(changed), SETTINGS)) is None
    assert server_changes(None, old) is None


def test_sticky_backends_reload_when_servers_come_and_go() -> None:
    """HAProxy 2.6 refuses `cookie` on a runtime-added server, and sticky servers need it."""
    sticky = {"session_sticky": True}
    old = render(table(route("web", "s.example", "/", be("a"), **sticky)), SETTINGS)
    assert not old.addresses
    assert server_changes(old, render(table(route("web", "s.example", "/", be("a"), be("b"), **sticky)),
                                      SETTINGS)) is None
    weights_only = server_changes(old, render(table(route("web", "s.example", "/", be("a", weight=7), **sticky)),
                                              SETTINGS))
    assert weights_only is not None and dict(weights_only.weights) == {(backend_name(route("web", "s.example", "/")), "a"): 7}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (route("web", "bad host"), r"routes\[0\]\.domain: not a host name"),
        (route("web", "a.example", "api"), r"routes\[0\]\.path: must start with /"),
        (route("web", "a.example", "/", be("x", weight=300)), r"routes\[0\]\.backends\[0\]\.weight: must be 0-256"),
        (route("web", "a.example", "/", be("x", port=0)), r"routes\[0\]\.backends\[0\]\.port"),
        (route("web", "a.example", match_header="X A", match_value="1"), r"routes\[0\]\.match_header"),
        (route("web", "a.example", match_cookie="v", match_value="a b"), r"routes\[0\]\.match_value"),
        (route("web", "a.example", match_header="X", match_cookie="v", match_value="1"),
         r"either match_header or match_cookie"),
        # A trailing newline passed `re.match(...$)` and split the HAProxy line (issue 12).
        (route("web", "a.example", match_header="X-Canary\n", match_value="1"), r"routes\[0\]\.match_header"),
        (route("web", "a.example", match_cookie="v", match_value="yes\n"), r"routes\[0\]\.match_value"),
        (route("web", "a.example\n"), r"routes\[0\]\.domain: not a host name"),
        (route("web", "a.example", "/api\n"), r"routes\[0\]\.path: must start with /"),
    ],
)
def test_bad_entries_are_named_and_skipped(entry: pb.RouteEntry, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_entry(entry, "routes[0]")
    rendered = render(table(route("ok", "ok.example"), entry), SETTINGS)
    assert len(rendered.problems) == 1 and re.search(message.replace("0", "1", 1), rendered.problems[0])
    assert backend_name(route("ok", "ok.example")) in rendered.text


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="port: must be in 1-65535"):
        RouterSettings(state_dir=Path("/x"), port=0)
    with pytest.raises(ValueError, match="bind_address"):
        RouterSettings(state_dir=Path("/x"), bind_address="a b")


# ------------------------------------------------------------------ HTTPS


def tls(secret: str = "shop-cert", version: int = 1) -> pb.RouteTLS:
    return pb.RouteTLS(secret=secret, version=version)


def test_https_frontend_crt_list_and_redirect() -> None:
    s = RouterSettings(state_dir=Path("/r"), bind_address="10.0.0.5", port=9080, https_port=9443, tls_dir=Path("/t"))
    entries = (
        route("web", "shop.example", "/", tls=tls()),
        route("api", "shop.example", "/api"),  # same domain, no tls of its own: HTTPS too
        route("blog", "blog.example", "/", tls=tls("blog-cert", 3)),
        route("plain", "plain.example"),
    )
    cfg = render(table(*entries), s, {("shop-cert", 1), ("blog-cert", 3)})
    assert cfg.problems == ()
    assert cfg.crt_list == "/t/blog.example.pem blog.example\n/t/shop.example.pem shop.example\n"
    assert cfg.certificates == {"/t/shop.example.pem": ("shop-cert", 1), "/t/blog.example.pem": ("blog-cert", 3)}
    https = section(cfg.text, "frontend ccs_https")
    assert https[0] == "bind 10.0.0.5:9443 ssl crt-list /t/crt-list.txt alpn http/1.1"
    assert "http-request set-header X-Forwarded-Proto https" in https
    served = [line.split()[1] for line in https if line.startswith("use_backend")]
    assert served == [backend_name(entries[i]) for i in (1, 2, 0)]
    assert https[-1] == "default_backend be_no_route"
    http = section(cfg.text, "frontend ccs_http")
    assert [line.split()[1] for line in http if line.startswith("use_backend")] == [backend_name(entries[3])]
    assert "acl tls_0 req.hdr(host),field(1,:),lower -m str blog.example" in http
    assert ("http-request redirect code 308 location https://%[req.hdr(host),field(1,:)]:9443%[capture.req.uri]"
            " if tls_1") in http
    # Port 443 is left out of the redirect.
    s443 = RouterSettings(state_dir=Path("/r"), https_port=443)
    text = render(table(entries[0]), s443, {("shop-cert", 1)}).text
    assert "location https://%[req.hdr(host),field(1,:)]%[capture.req.uri] if tls_0" in text


def test_no_tls_routes_no_https_frontend() -> None:
    cfg = render(table(route()), SETTINGS)
    assert "ccs_https" not in cfg.text and cfg.crt_list == "" and cfg.certificates == {}


def test_new_certificate_version_keeps_structure() -> None:
    old = render(table(route(tls=tls(version=1))), SETTINGS, {("shop-cert", 1)})
    new = render(table(route(tls=tls(version=2)), version=2), SETTINGS, {("shop-cert", 2)})
    assert old.structure == new.structure and old.text == new.text
    assert server_changes(old, new) is not None
    path = str(SETTINGS.certificate_path("shop.example"))
    assert certificate_changes(old, new) == {path: ("shop-cert", 2)}
    assert certificate_changes(new, new) == {}
    # A new domain is a structural change (a crt-list line): reload.
    both = render(table(route(tls=tls(version=2)), route("b", "b.example", tls=tls("b", 1))), SETTINGS,
                  {("shop-cert", 2), ("b", 1)})
    assert both.structure != new.structure


def test_tls_problems_skip_the_domain_rather_than_serve_it_in_clear() -> None:
    entries = (
        route("web", "shop.example", tls=tls()),
        route("api", "shop.example", "/api", tls=tls("other", 1)),  # another cert for the domain
        route("blog", "blog.example", tls=tls("blog", 1)),  # not delivered
        route("bad", "", tls=tls("x", 1)),  # no domain
        route("ok", "ok.example", tls=tls("ok", 1)),
    )
    cfg = render(table(*entries), SETTINGS, {("shop-cert", 1), ("other", 1), ("x", 1), ("ok", 1)})
    assert cfg.problems == (
        "shop/bad: routes[3].tls: needs a domain, a secret name and a version",
        "domain 'blog.example': tls certificate blog@1 not delivered to this node; not served",
        "domain 'shop.example': its routes name different tls certificates (other@1, shop-cert@1); not served",
    )
    assert list(cfg.certificates.values()) == [("ok", 1)]
    for skipped in entries[:4]:
        assert backend_name(skipped) not in cfg.text
    assert backend_name(entries[4]) in section(cfg.text, "frontend ccs_https")[-2]


def test_tls_wildcard_leaves_clear_specific_domains_alone() -> None:
    entries = (route("wild", "*.example", tls=tls("wild", 1)), route("plain", "plain.example"))
    cfg = render(table(*entries), SETTINGS, {("wild", 1)})
    http = section(cfg.text, "frontend ccs_http")
    assert "acl clear_only req.hdr(host),field(1,:),lower -m str plain.example" in http
    assert any(line.endswith("if tls_0 !clear_only") for line in http)
    https = section(cfg.text, "frontend ccs_https")
    assert "http-request return status 421 if clear_only" in https
    assert cfg.crt_list.endswith("/_.example.pem *.example\n")


def test_versions_of_one_secret_for_a_domain_take_the_newest() -> None:
    """Two applications share a certificate secret; `ccs secret update` re-applies them one
    after the other, so for a moment their routes name two versions: the newest serves."""
    entries = (route("web", "shop.example", tls=tls(version=3)), route("api", "shop.example", "/api", tls=tls()))
    cfg = render(table(*entries), SETTINGS, {("shop-cert", 3)})
    assert cfg.problems == () and list(cfg.certificates.values()) == [("shop-cert", 3)]
    missing = render(table(*entries), SETTINGS, {("shop-cert", 1)})
    assert missing.problems == ("domain 'shop.example': tls certificate shop-cert@3 not delivered to this node; "
                                "not served",)
