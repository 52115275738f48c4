"""Options from flags, ``CCS_<OPTION>`` variables and a TOML ``--config`` file
(``ccs.option_sources``), on the real ``ccs-server`` and ``ccs-agent`` parsers: the
precedence (flag > environment > file > default) and the refusals, which name the variable or
the file's key and never show a secret's value."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccs import option_sources
from controlplane import main as server_main
from nodeagent import main as agent_main

TOKEN = "ccsjoin-secret-value-that-must-not-leak"


def agent(argv: list[str], env: dict[str, str] | None = None) -> option_sources.Resolved:
    return option_sources.parse(agent_main.build_parser(), argv, env or {}, secret=agent_main.SECRET_OPTIONS)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_the_env_name_of_an_option_follows_one_rule() -> None:
    assert option_sources.env_name("--join-token") == "CCS_JOIN_TOKEN"
    assert option_sources.env_name("--router-https-port") == "CCS_ROUTER_HTTPS_PORT"
    names = {option_sources.env_name("--" + n) for n, _ in option_sources.options(agent_main.build_parser())}
    assert {"CCS_JOIN_TOKEN", "CCS_SERVER", "CCS_ROUTER_BIND", "CCS_NO_ROUTER", "CCS_LABEL"} <= names
    assert "CCS_CONFIG" not in names and "CCS_HELP" not in names  # CCS_CONFIG is the CLI's client config


@pytest.mark.parametrize(("flag", "env", "file", "expected"), [
    (None, None, None, 9080),           # default
    (None, None, 9100, 9100),           # file over default
    (None, "9200", 9100, 9200),         # environment over file
    ("9300", "9200", 9100, 9300),       # flag over everything
    ("9300", None, 9100, 9300),
])
def test_precedence_is_flag_then_environment_then_file_then_default(
    tmp_path: Path, flag: str | None, env: str | None, file: int | None, expected: int,
) -> None:
    argv = ["--config", str(write(tmp_path, f"router-port = {file}\n" if file is not None else ""))]
    argv += ["--router-port", flag] if flag is not None else []
    got = agent(argv, {"CCS_ROUTER_PORT": env} if env is not None else {})
    assert got.namespace.router_port == expected
    where = "env CCS_ROUTER_PORT" if env is not None and flag is None else (
        f"file {argv[1]}" if file is not None and flag is None else None)
    assert got.sources.get("router-port") == where


def test_switches_lists_and_strings_from_each_source(tmp_path: Path) -> None:
    path = write(tmp_path, 'no-router = true\nlabel = ["zone=a", "disk=ssd"]\nname = "n1"\nresolver-address = ""\n')
    got = agent(["--config", str(path)]).namespace
    assert (got.no_router, got.label, got.name, got.resolver_address) == (True, ["zone=a", "disk=ssd"], "n1", "")
    # The environment turns a switch off again and replaces the whole list.
    got = agent(["--config", str(path)], {"CCS_NO_ROUTER": "false", "CCS_LABEL": "zone=b, rack=3"}).namespace
    assert (got.no_router, got.label) == (False, ["zone=b", "rack=3"])
    # Items on the command line replace the environment's; they are not added to them.
    got = agent(["--label", "x=1"], {"CCS_LABEL": "zone=b"}).namespace
    assert got.label == ["x=1"]


def test_the_config_file_can_come_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, 'join-token = "from-file"\n')
    got = agent([], {"CCS_CONFIG_FILE": str(path)})
    assert got.namespace.join_token == "from-file" and got.config_file == path


def test_the_server_reads_its_options_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "server.toml"
    path.write_text('listen = "127.0.0.1:7000"\nadvertise = ["a.example", "b.example"]\ninsecure = true\n'
                    'heartbeat-period = 2\n')
    opts = server_main.parse_args(["--config", str(path), "--state-dir", str(tmp_path)],
                                  {"CCS_ETCD": "http://127.0.0.1:2379", "CCS_HEARTBEAT_PERIOD": "3.5"})
    assert (opts.listen, opts.advertise, opts.insecure) == ("127.0.0.1:7000", ["a.example", "b.example"], True)
    assert (opts.etcd_endpoints, opts.heartbeat_period) == (["http://127.0.0.1:2379"], 3.5)


@pytest.mark.parametrize(("text", "env", "message"), [
    ("router_port = 1\n", {}, "unknown key 'router_port' (did you mean 'router-port'?)"),
    ("colour = 'red'\n", {}, "unknown key 'colour'"),
    ("router-port = 'x'\n", {}, "router-port: 'x' is not valid"),
    ("no-router = 'yes'\n", {}, "no-router: expected true or false, got str"),
    ("router-port = true\n", {}, "router-port: expected a string or a number, got bool"),
    ("log-level = 'loud'\n", {}, "log-level: 'loud' is not one of"),
    ("router-port = [\n", {}, "not valid TOML"),
    ("", {"CCS_ROUTER_PORT": "x"}, "CCS_ROUTER_PORT: 'x' is not valid"),
    ("", {"CCS_INSECURE": "maybe"}, "CCS_INSECURE: expected one of 1/true/yes/on or 0/false/no/off"),
])
def test_a_bad_source_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, env: dict[str, str], message: str,
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SystemExit) as info:
        agent(["--config", str(path)], env)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_missing_config_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        agent(["--config", str(tmp_path / "nope.toml")])
    assert f"--config {tmp_path / 'nope.toml'}: cannot read it" in capsys.readouterr().err


def test_a_secret_value_never_appears_in_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f'join-token = ["{TOKEN}"]\n')
    with pytest.raises(SystemExit):
        agent(["--config", str(path)])
    err = capsys.readouterr().err
    assert "join-token: expected a string or a number, got list" in err and TOKEN not in err


def test_sources_name_options_never_values(tmp_path: Path) -> None:
    got = agent([], {"CCS_JOIN_TOKEN": TOKEN, "CCS_NAME": "n2"})
    assert got.sources == {"join-token": "env CCS_JOIN_TOKEN", "name": "env CCS_NAME"}
    assert TOKEN not in repr(got.sources) and got.namespace.join_token == TOKEN


def test_backup_accepts_the_servers_file_and_refuses_keys_nobody_knows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from controlplane import backup_cli

    keys = [n for n, _ in option_sources.options(server_main.build_parser())]
    path = tmp_path / "server.toml"
    path.write_text(f'listen = "127.0.0.1:7000"\nstate-dir = "{tmp_path}"\n')
    got = option_sources.parse(backup_cli.build_parser("backup", Path("/nowhere")), ["x.db", "--config", str(path)],
                               {}, extra_keys=keys).namespace
    assert got.state_dir == tmp_path
    path.write_text('lisen = "127.0.0.1:7000"\n')
    with pytest.raises(SystemExit):
        backup_cli.main("backup", ["x.db", "--config", str(path)], state_dir=tmp_path, server_keys=keys, env={})
    assert "unknown key 'lisen' (did you mean 'listen'?)" in capsys.readouterr().err
