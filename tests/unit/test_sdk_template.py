"""load_bundle: the template, its .env and env_files; errors name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccs.template import TemplateError, default_app_name, load_bundle

CORPUS = Path(__file__).parents[1] / "data" / "compose-corpus" / "awesome-compose"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_template_alone(tmp_path: Path) -> None:
    f = write(tmp_path / "compose.yaml", "services: {web: {image: nginx}}\n")
    assert load_bundle(f) == ("services: {web: {image: nginx}}\n", {})


def test_dotenv_and_every_env_file_form_are_gathered(tmp_path: Path) -> None:
    write(tmp_path / ".env", "TAG=1\n")
    write(tmp_path / "a.env", "A=1\n")
    write(tmp_path / "conf" / "b.env", "B=1\n")
    write(tmp_path / "c.env", "C=1\n")
    f = write(
        tmp_path / "compose.yaml",
        "services:\n"
        "  web: {image: nginx, env_file: ./a.env}\n"
        "  api:\n"
        "    image: api\n"
        "    env_file: [conf/b.env, {path: c.env, required: true}, {path: gone.env, required: false}]\n",
    )
    _, files = load_bundle(f)
    assert files == {".env": "TAG=1\n", "a.env": "A=1\n", "conf/b.env": "B=1\n", "c.env": "C=1\n"}


def test_missing_required_env_file_names_the_field(tmp_path: Path) -> None:
    f = write(tmp_path / "compose.yaml", "services:\n  api: {image: x, env_file: [a.env, b.env]}\n")
    write(tmp_path / "a.env", "A=1\n")
    with pytest.raises(TemplateError, match=r"services\.api\.env_file\[1\]: file 'b.env' not found"):
        load_bundle(f)


def test_directory_finds_the_compose_file_and_names_the_app(tmp_path: Path) -> None:
    d = tmp_path / "My_Shop.v2"
    write(d / "docker-compose.yml", "services: {web: {image: nginx}}\n")
    assert load_bundle(d)[0].startswith("services")
    assert default_app_name(d) == "my-shop-v2"
    assert default_app_name(d / "docker-compose.yml") == "my-shop-v2"


def test_unparsable_template_is_passed_through_for_the_server_to_judge(tmp_path: Path) -> None:
    write(tmp_path / ".env", "X=1\n")
    f = write(tmp_path / "compose.yaml", "services: [unclosed\n")
    assert load_bundle(f) == ("services: [unclosed\n", {".env": "X=1\n"})


def test_interpolated_env_file_paths_are_left_to_the_server(tmp_path: Path) -> None:
    f = write(tmp_path / "compose.yaml", "services: {web: {image: x, env_file: '${ENV}.env'}}\n")
    assert load_bundle(f)[1] == {}


def test_missing_path_and_empty_directory_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no such file"):
        load_bundle(tmp_path / "nope.yaml")
    with pytest.raises(TemplateError, match=r"no compose\.yaml"):
        load_bundle(tmp_path)


def test_real_corpus_template_with_dotenv() -> None:
    text, files = load_bundle(CORPUS / "postgresql-pgadmin" / "compose.yaml")
    assert "services:" in text
    assert files[".env"] == (CORPUS / "postgresql-pgadmin" / ".env").read_text()


def test_deeply_nested_template_is_passed_through_for_the_server_to_judge(tmp_path: Path) -> None:
    # PyYAML overflows Python's stack on this; the server refuses it with its depth limit.
    text = "services:\n  web:\n    image: nginx\nx-deep: " + "[" * 10_000 + "]" * 10_000 + "\n"
    f = write(tmp_path / "compose.yaml", text)
    assert load_bundle(f) == (text, {})


@pytest.mark.parametrize(("name", "what"), [("compose.yaml", "template"), (".env", ".env"), ("app.env", "env_file")])
def test_a_file_that_is_not_utf8_is_named_with_the_byte_and_its_line(tmp_path: Path, name: str, what: str) -> None:
    write(tmp_path / "compose.yaml", "services:\n  web: {image: nginx, env_file: [app.env]}\n")
    write(tmp_path / ".env", "A=1\n")
    write(tmp_path / "app.env", "B=2\n")
    (tmp_path / name).write_bytes(b"# ok\nX=caf\xe9\n" if name != "compose.yaml" else
                                  b"services:\n  web: {image: ngin\xff}\n")
    with pytest.raises(TemplateError) as info:
        load_bundle(tmp_path / "compose.yaml")
    column = 20 if name == "compose.yaml" else 6
    byte = "ff" if name == "compose.yaml" else "e9"
    assert str(info.value).endswith(f"is not UTF-8 text (byte 0x{byte} at line 2, column {column})")
    assert str(info.value).startswith(f"{what}" if what != "env_file" else "services.web.env_file[0]")
