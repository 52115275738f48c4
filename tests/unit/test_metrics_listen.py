"""``--metrics-listen`` of ccs-server and ccs-agent: HOST:PORT or off, anything else refused naming the flag."""

from __future__ import annotations

import pytest

from ccs.metrics_listen import MetricsListenError, parse_metrics_listen
from controlplane.main import parse_args


@pytest.mark.parametrize(("text", "parsed"), [
    ("127.0.0.1:9464", ("127.0.0.1", 9464)),
    ("0.0.0.0:0", ("0.0.0.0", 0)),
    ("[::1]:9464", ("::1", 9464)),
    ("metrics.local:80", ("metrics.local", 80)),
    ("off", None),
    ("OFF", None),
    ("", None),
])
def test_accepted(text: str, parsed: tuple[str, int] | None) -> None:
    assert parse_metrics_listen(text) == parsed


@pytest.mark.parametrize(("text", "why"), [
    ("9464", "expected HOST:PORT or 'off'"),
    (":9464", "expected HOST:PORT or 'off'"),
    ("[]:9464", "the host is empty"),
    ("host:http", "the port must be a number"),
    ("host:70000", "the port must be in 0-65535"),
])
def test_refused(text: str, why: str) -> None:
    with pytest.raises(MetricsListenError) as err:
        parse_metrics_listen(text)
    assert str(err.value).startswith("--metrics-listen: ") and why in str(err.value)


def test_server_default_and_off() -> None:
    assert parse_args([]).metrics_listen == ("127.0.0.1", 9464)
    assert parse_args(["--metrics-listen", "off"]).metrics_listen is None


def test_server_refuses_a_bad_value(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--metrics-listen", "9464"])
    assert exit_.value.code == 2
    assert "--metrics-listen: expected HOST:PORT or 'off', got '9464'" in capsys.readouterr().err


def test_agent_defaults_and_refusals() -> None:
    from nodeagent.config import ConfigError
    from nodeagent.main import build_parser, start_metrics
    from nodeagent.metrics import AgentMetrics

    args = build_parser().parse_args([])
    assert (args.metrics_listen, args.router_metrics_port) == ("127.0.0.1:9465", 9466)
    assert start_metrics("off", AgentMetrics()) is None
    with pytest.raises(ConfigError, match="--metrics-listen: the port must be a number"):
        start_metrics("127.0.0.1:x", AgentMetrics())


def test_agent_names_a_port_it_cannot_bind() -> None:
    import socket

    from nodeagent.config import ConfigError
    from nodeagent.main import start_metrics
    from nodeagent.metrics import AgentMetrics

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        where = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(ConfigError, match=f"--metrics-listen: cannot listen on {where}"):
            start_metrics(where, AgentMetrics())
