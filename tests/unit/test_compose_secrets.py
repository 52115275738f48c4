"""Compose ``secrets:`` and ``configs:``: definitions, grants, their defaults and refusals."""

from __future__ import annotations

import pytest

from controlplane.compose import ParsedTemplate, TemplateError, parse_template
from controlplane.compose.files import FileSource


def parse(text: str, files: dict[str, str] | None = None, env: dict[str, str] | None = None) -> ParsedTemplate:
    return parse_template(text, env=env or {}, files=files or {}, app_name="shop")


CASES = {
    "file": ("secrets: {db: {file: ./db.txt}}", "secrets: [db]", FileSource("secret", "db", "shop_db", 0, b"pw", path="db.txt")),
    "environment": ("secrets: {db: {environment: DB_PW}}", "secrets: [db]",
                    FileSource("secret", "db", "shop_db", 0, b"from-env", variable="DB_PW")),
    "config content": ("configs: {conf: {content: 'a=1'}}", "configs: [conf]",
                       FileSource("config", "conf", "shop_conf", 0, b"a=1")),
    "config environment": ("configs: {conf: {environment: DB_PW}}", "configs: [conf]",
                           FileSource("config", "conf", "shop_conf", 0, b"from-env", variable="DB_PW")),
    "config file": ("configs: {conf: {file: conf/app.ini}}", "configs: [conf]",
                    FileSource("config", "conf", "shop_conf", 0, b"[x]", path="conf/app.ini")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_definitions_become_stored_names_and_values(case: str) -> None:
    top, grant, source = CASES[case]
    parsed = parse(f"services:\n  web: {{image: a, {grant}}}\n{top}\n",
                   files={"db.txt": "pw", "conf/app.ini": "[x]"}, env={"DB_PW": "from-env"})
    assert parsed.file_sources == [source]


def test_external_names_pin_and_defaults_and_long_syntax() -> None:
    parsed = parse("""
services:
  web:
    image: a
    secrets:
      - db
      - {source: old, target: pw, uid: "100", gid: "101", mode: "0400"}
      - {source: db, target: /etc/db, mode: 0o440}
    configs: [conf, {source: conf, target: etc/app.conf}]
secrets:
  db: {external: true}
  old: {external: true, name: db@3}
configs:
  conf: {external: true, name: shared-conf}
""")
    spec = parsed.services["web"]
    got = [(r.name, r.version, r.pinned, r.target, r.uid, r.gid, oct(r.mode), r.key) for r in spec.secrets]
    assert got == [("db", 0, False, "/run/secrets/db", "0", "0", "0o444", "db"),
                   ("db", 3, True, "/run/secrets/pw", "100", "101", "0o400", "old"),
                   ("db", 0, False, "/etc/db", "0", "0", "0o440", "db")]
    assert [(r.name, r.target) for r in spec.configs] == [("shared-conf", "/conf"), ("shared-conf", "/etc/app.conf")]
    assert parsed.file_sources == []


REFUSALS = {
    "file and environment": ("secrets: {s: {file: a, environment: B}}", "secrets: [s]",
                             "secrets.s: needs exactly one of file: or environment:"),
    "nothing": ("secrets: {s: {}}", "secrets: [s]", "secrets.s: needs exactly one of"),
    "external with file": ("secrets: {s: {external: true, file: a}}", "secrets: [s]",
                           "secrets.s.external: an external secret cannot also set file:"),
    "name without external": ("secrets: {s: {file: a, name: x}}", "secrets: [s]",
                              "secrets.s.name: is only for an external secret"),
    "bad pin": ("secrets: {s: {external: true, name: 'x@0'}}", "secrets: [s]",
                "secrets.s.name: 'x@0': the version after '@' must be a positive number"),
    "bad name": ("secrets: {s: {external: true, name: 'a/b'}}", "secrets: [s]",
                 "secrets.s.name: 'a/b' is not a valid name: 1 to 63 letters"),
    "unset variable": ("secrets: {s: {environment: NOPE}}", "secrets: [s]",
                       "secrets.s.environment: variable 'NOPE' is not set"),
    "missing file": ("configs: {c: {file: nope.txt}}", "configs: [c]",
                     "configs.c.file: file 'nope.txt' was not provided with the template"),
    "undefined": ("secrets: {s: {external: true}}", "secrets: [t]",
                  "services.web.secrets[0]: secret 't' is not defined under the top-level secrets:"),
    "same target": ("secrets: {s: {external: true}}", "secrets: [s, {source: s, target: s}]",
                    "services.web.secrets[1].target: '/run/secrets/s' is the target of another secret"),
    "uid not a number": ("secrets: {s: {external: true}}", "secrets: [{source: s, uid: root}]",
                         "services.web.secrets[0].uid: must be a number"),
    "uid too large": ("secrets: {s: {external: true}}", "secrets: [{source: s, uid: '4294967295'}]",
                      "services.web.secrets[0].uid: 4294967295 is not a user or group id: ids go from 0 to "
                      "4294967294"),
    "gid too large": ("secrets: {s: {external: true}}", "secrets: [{source: s, gid: '9999999999'}]",
                      "services.web.secrets[0].gid: 9999999999 is not a user or group id"),
    "mode too wide": ("secrets: {s: {external: true}}", "secrets: [{source: s, mode: 4095}]",
                      "services.web.secrets[0].mode: must be a permission mode from 0 to 0777"),
    "mode not octal": ("secrets: {s: {external: true}}", "secrets: [{source: s, mode: '9'}]",
                       "services.web.secrets[0].mode: '9' is not an octal mode"),
    "driver": ("secrets: {s: {external: true, driver: vault}}", "secrets: [s]",
               "secrets.s.driver: is not supported: ccs stores secrets and configs itself"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_what_ccs_cannot_honour_is_refused_naming_the_field(case: str) -> None:
    top, grant, message = REFUSALS[case]
    with pytest.raises(TemplateError) as info:
        parse(f"services:\n  web: {{image: a, {grant}}}\n{top}\n")
    assert message in str(info.value)


def test_a_refused_definition_is_reported_once_not_again_by_each_grant() -> None:
    with pytest.raises(TemplateError) as info:
        parse("services:\n  web: {image: a, secrets: [s]}\n  db: {image: a, secrets: [s]}\n"
              "secrets: {s: {file: gone.txt}}\n")
    assert [e.path for e in info.value.errors] == ["secrets.s.file"]


def test_every_secrets_value_is_stored_but_only_mounted_configs() -> None:
    """A secret no chosen service mounts is stored too (so its value is kept out of the stored
    application); a config's file stays with the application, so only a mounted one is."""
    parsed = parse("services:\n  web: {image: a, secrets: [used]}\n"
                   "  dbg: {image: a, profiles: [debug], secrets: [tok]}\n"
                   "secrets: {used: {environment: A}, tok: {environment: T}, idle: {environment: I}}\n"
                   "configs: {unused: {content: x}}\n", env={"A": "v", "T": "t", "I": "i"})
    assert [s.name for s in parsed.file_sources] == ["shop_used", "shop_tok", "shop_idle"]


def test_a_mode_with_a_leading_zero_is_octal_as_in_compose() -> None:
    """YAML 1.2 reads ``0440`` as decimal 440 (0o670: group-writable); Compose reads it as octal."""
    parsed = parse("services:\n  web: {image: a, secrets: [{source: s, mode: 0440}], "
                   "volumes: [{type: tmpfs, target: /t, tmpfs: {mode: 01777}}]}\nsecrets: {s: {external: true}}\n")
    web = parsed.services["web"]
    assert (web.secrets[0].mode, web.volumes[0].tmpfs.mode) == (0o440, 0o1777)
    with pytest.raises(TemplateError, match=r"services\.web\.secrets\[0\]\.mode: 0448 has a leading zero"):
        parse("services:\n  web: {image: a, secrets: [{source: s, mode: 0448}]}\nsecrets: {s: {external: true}}\n")


def test_a_stored_template_is_reparsed_without_its_secret_values() -> None:
    """The control plane keeps a secret's bundled file and --env variable out of the stored
    application; re-parsing it names the values already stored instead."""
    text = ("services:\n  web: {image: a, secrets: [f, e]}\n"
            "secrets: {f: {file: pw.txt}, e: {environment: PW}}\n")
    parsed = parse_template(text, env={}, files={}, app_name="shop", stored_values={"shop_f", "shop_e"})
    assert [(s.name, s.value, s.stored, s.path, s.variable) for s in parsed.file_sources] == [
        ("shop_f", None, True, "pw.txt", ""), ("shop_e", None, True, "", "PW")]
    with pytest.raises(TemplateError, match=r"secrets\.f\.file: file 'pw.txt' was not provided"):
        parse_template(text, env={}, files={}, app_name="shop", stored_values={"shop_e"})


def test_a_secret_from_the_bundled_env_file_is_refused_a_config_is_not() -> None:
    text = ("services:\n  web: {image: a, secrets: [s], configs: [c]}\n"
            "secrets: {s: {environment: PW}}\nconfigs: {c: {environment: PW}}\n")
    with pytest.raises(TemplateError) as info:
        parse(text, files={".env": "PW=from-dotenv\n"})
    assert [str(e) for e in info.value.errors] == [
        "secrets.s.environment: variable 'PW' comes from the bundled .env, which is stored with the "
        "application in clear; pass it with `--env` (line 3)"]
    assert [s.value for s in parse(text, env={"PW": "x"}).file_sources] == [b"x", b"x"]
