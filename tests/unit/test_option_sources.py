"""Options from flags, ``CCS_SERVER_<OPTION>``/``CCS_AGENT_<OPTION>`` variables and a TOML
``--config`` file (``ccs.option_sources``), on the real ``ccs-server`` and ``ccs-agent`` parsers:
the precedence (flag > environment > file > default), the refusals, which name the variable or
the file's key and never show a secret's value, and the old ``CCS_<OPTION>`` names, still read
with a deprecation warning (they clashed with the CLI's own variables and each other's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccs import option_sources
from controlplane import main as server_main
from nodeagent import main as agent_main

TOKEN = "ccsjoin-secret-value-that-must-not-leak"


def agent(argv: list[str], env: dict[str, str] | None = None) -> option_sources.Resolved:
    return option_sources.parse(agent_main.build_parser(), argv, env or {}, prefix=option_sources.AGENT_PREFIX,
                                program="ccs-agent", secret=agent_main.SECRET_OPTIONS)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_the_env_name_of_an_option_follows_one_rule() -> None:
    assert option_sources.env_name("--join-token", "CCS_AGENT_") == "CCS_AGENT_JOIN_TOKEN"
    assert option_sources.env_name("--router-https-port", "CCS_AGENT_") == "CCS_AGENT_ROUTER_HTTPS_PORT"
    assert option_sources.env_name("--join-token") == "CCS_JOIN_TOKEN"  # the old name
    names = {option_sources.env_name("--" + n, "CCS_AGENT_")
             for n, _ in option_sources.options(agent_main.build_parser())}
    assert {"CCS_AGENT_JOIN_TOKEN", "CCS_AGENT_SERVER", "CCS_AGENT_ROUTER_BIND", "CCS_AGENT_NO_ROUTER",
            "CCS_AGENT_LABEL"} <= names
    assert "CCS_AGENT_CONFIG" not in names and "CCS_AGENT_HELP" not in names


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
    got = agent(argv, {"CCS_AGENT_ROUTER_PORT": env} if env is not None else {})
    assert got.namespace.router_port == expected
    where = "env CCS_AGENT_ROUTER_PORT" if env is not None and flag is None else (
        f"file {argv[1]}" if file is not None and flag is None else None)
    assert got.sources.get("router-port") == where


def test_switches_lists_and_strings_from_each_source(tmp_path: Path) -> None:
    path = write(tmp_path, 'no-router = true\nlabel = ["zone=a", "disk=ssd"]\nname = "n1"\nresolver-address = ""\n')
    got = agent(["--config", str(path)]).namespace
    assert (got.no_router, got.label, got.name, got.resolver_address) == (True, ["zone=a", "disk=ssd"], "n1", "")
    # The environment turns a switch off again and replaces the whole list.
    got = agent(["--config", str(path)], {"CCS_AGENT_NO_ROUTER": "false", "CCS_AGENT_LABEL": "zone=b, rack=3"}).namespace
    assert (got.no_router, got.label) == (False, ["zone=b", "rack=3"])
    # Items on the command line replace the environment's; they are not added to them.
    got = agent(["--label", "x=1"], {"CCS_AGENT_LABEL": "zone=b"}).namespace
    assert got.label == ["x=1"]


def test_the_config_file_can_come_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, 'join-token = "from-file"\n')
    got = agent([], {"CCS_AGENT_CONFIG_FILE": str(path)})
    assert got.namespace.join_token == "from-file" and got.config_file == path


def test_the_server_reads_its_options_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "server.toml"
    path.write_text('listen = "127.0.0.1:7000"\nadvertise = ["a.example", "b.example"]\ninsecure = true\n'
                    'heartbeat-period = 2\n')
    opts = server_main.parse_args(["--config", str(path), "--state-dir", str(tmp_path)],
                                  {"CCS_SERVER_ETCD": "http://127.0.0.1:2379", "CCS_SERVER_HEARTBEAT_PERIOD": "3.5"})
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
    ("", {"CCS_AGENT_ROUTER_PORT": "x"}, "CCS_AGENT_ROUTER_PORT: 'x' is not valid"),
    ("", {"CCS_AGENT_INSECURE": "maybe"}, "CCS_AGENT_INSECURE: expected one of 1/true/yes/on or 0/false/no/off"),
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
    got = agent([], {"CCS_AGENT_JOIN_TOKEN": TOKEN, "CCS_AGENT_NAME": "n2"})
    assert got.sources == {"join-token": "env CCS_AGENT_JOIN_TOKEN", "name": "env CCS_AGENT_NAME"}
    assert TOKEN not in repr(got.sources) and got.namespace.join_token == TOKEN


def test_backup_accepts_the_servers_file_and_refuses_keys_nobody_knows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from controlplane import backup_cli

    keys = [n for n, _ in option_sources.options(server_main.build_parser())]
    path = tmp_path / "server.toml"
    path.write_text(f'listen = "127.0.0.1:7000"\nstate-dir = "{tmp_path}"\n')
    got = option_sources.parse(backup_cli.build_parser("backup", Path("/nowhere")), ["x.db", "--config", str(path)],
                               {}, prefix=option_sources.SERVER_PREFIX, program="ccs-server backup",
                               extra_keys=keys).namespace
    assert got.state_dir == tmp_path
    path.write_text('lisen = "127.0.0.1:7000"\n')
    with pytest.raises(SystemExit):
        backup_cli.main("backup", ["x.db", "--config", str(path)], state_dir=tmp_path, server_keys=keys, env={})
    assert "unknown key 'lisen' (did you mean 'listen'?)" in capsys.readouterr().err


#: The daemons' old CCS_<OPTION> names that are the CLI's own variables (cli/main.py, cli/session.py).
CLI_VARIABLES = {"CCS_CONTEXT", "CCS_CONFIG", "CCS_SERVER", "CCS_TOKEN", "CCS_CA_FILE", "CCS_INSECURE",
                 "CCS_CLUSTER", "CCS_DEBUG"}


def test_a_variable_of_the_cli_does_not_reach_a_daemon_under_its_new_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The clash (before: a CLI user's ``CCS_INSECURE=1`` started a ccs-server without TLS, a
    ``CCS_SERVER`` meant for the CLI joined an agent to that server, a ``CCS_STATE_DIR`` of one
    daemon moved the other's): each daemon reads its own prefix, and the new names of the two
    daemons share none with each other or with the CLI."""
    server_names = {option_sources.env_name("--" + n, option_sources.SERVER_PREFIX)
                    for n, _ in option_sources.options(server_main.build_parser())}
    agent_names = {option_sources.env_name("--" + n, option_sources.AGENT_PREFIX)
                   for n, _ in option_sources.options(agent_main.build_parser())}
    assert not (server_names & agent_names) and not (server_names | agent_names) & CLI_VARIABLES
    # The new name wins over an old one meant for the CLI, and the warning says the old one was not used.
    got = agent([], {"CCS_AGENT_SERVER": "agent.example:7443", "CCS_SERVER": "cli.example:7443"})
    assert got.namespace.server == "agent.example:7443" and got.sources == {"server": "env CCS_AGENT_SERVER"}
    assert ("warning: ccs-agent: CCS_SERVER is deprecated and was not used: CCS_AGENT_SERVER is set"
            in capsys.readouterr().err)
    # (the parser alone: server_main.parse_args would also set logging up on the captured stderr)
    server = option_sources.parse(server_main.build_parser(), ["--state-dir", str(tmp_path)],
                                  {"CCS_SERVER_INSECURE": "0", "CCS_INSECURE": "1"},
                                  prefix=option_sources.SERVER_PREFIX, program="ccs-server")
    assert server.namespace.insecure is False
    assert "ccs-server: CCS_INSECURE is deprecated and was not used: CCS_SERVER_INSECURE is set" in capsys.readouterr().err


def test_an_old_name_alone_still_works_with_a_deprecation_warning_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path, 'name = "from-file"\n')
    got = agent([], {"CCS_JOIN_TOKEN": TOKEN, "CCS_ROUTER_PORT": "9111", "CCS_CONFIG_FILE": str(path)})
    assert (got.namespace.join_token, got.namespace.router_port, got.namespace.name) == (TOKEN, 9111, "from-file")
    assert got.sources["router-port"] == "env CCS_ROUTER_PORT" and got.config_file == path
    err = capsys.readouterr().err
    for old, new in (("CCS_JOIN_TOKEN", "CCS_AGENT_JOIN_TOKEN"), ("CCS_ROUTER_PORT", "CCS_AGENT_ROUTER_PORT"),
                     ("CCS_CONFIG_FILE", "CCS_AGENT_CONFIG_FILE")):
        assert f"warning: ccs-agent: {old} is deprecated (the name is shared with the ccs CLI or the other " \
               f"daemon); use {new}" in err
    assert TOKEN not in err
    # A bad value under an old name is refused naming that name.
    with pytest.raises(SystemExit):
        agent([], {"CCS_ROUTER_PORT": "x"})
    assert "CCS_ROUTER_PORT: 'x' is not valid" in capsys.readouterr().err
    # Nothing to say when only new names are used.
    agent([], {"CCS_AGENT_ROUTER_PORT": "9111"})
    assert capsys.readouterr().err == ""
