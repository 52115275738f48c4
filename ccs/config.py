"""Client configuration: named contexts, like kubeconfig or ``docker context``.

The file is YAML at ``$CCS_CONFIG`` or ``~/.config/ccs/config.yaml``::

    current-context: local
    contexts:
      local:
        server: "127.0.0.1:7443"
        token: "..."
        tls: true                # false only for a server started with --insecure
        ca_pem: |                # the CA the server must chain to (pinned at first start or
          -----BEGIN CERTIFICATE-----   # by `ccs login --ca-fingerprint`); or ca_file: PATH;
          ...                    # neither: the system's roots
        cluster: null

Design choices:

- Pydantic models validate the file, so a typo (``tsl: true``) or a wrong type is reported
  with the context name and field instead of being silently ignored.
- This module imports neither grpc nor the rest of the SDK: the server imports it on first
  start to write the admin context, and must not pay for (or be coupled to) the client.
- Writes are atomic (temp file in the same directory, fsync, rename) and the file is mode
  0600 because it holds bearer tokens.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ccs.private_files import write_private

__all__ = [
    "ClientConfig",
    "ConfigError",
    "Context",
    "ContextExists",
    "ContextNotFound",
    "default_config_path",
    "load_config",
    "remove_context",
    "rename_context",
    "save_config",
    "upsert_context",
    "use_context",
]


class ConfigError(ValueError):
    """The client configuration is missing, unreadable or invalid; the message says where."""


class ContextNotFound(ConfigError):
    """No context of that name (``ccs context use|rename|rm``: exit 3)."""


class ContextExists(ConfigError):
    """A context of that name exists already (``ccs context rename``: exit 5)."""


class Context(BaseModel):
    """How to reach one ccs control plane."""

    model_config = ConfigDict(extra="forbid")

    server: str = Field(min_length=1, description="host:port of a ccs API server")
    token: str | None = None
    tls: bool = Field(default=True, description="false only for a server started with --insecure")
    ca_file: str | None = Field(default=None, description="PEM bundle to verify the server")
    ca_pem: str | None = Field(default=None, description="the CA to verify the server, inline (PEM)")
    client_cert: str | None = Field(default=None, description="PEM client certificate (servers with --client-ca)")
    client_key: str | None = Field(default=None, description="its PEM private key")
    cluster: str | None = Field(default=None, description="default for the CLI's -c/--cluster")

    @model_validator(mode="after")
    def _one_ca(self) -> Context:
        if self.ca_file and self.ca_pem:
            raise ValueError("ca_file and ca_pem: give one or the other")
        if bool(self.client_cert) != bool(self.client_key):
            raise ValueError("client_cert and client_key: give both or neither")
        return self


class ClientConfig(BaseModel):
    """The whole config file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    current_context: str | None = Field(default=None, alias="current-context")
    contexts: dict[str, Context] = Field(default_factory=dict)

    def context(self, name: str | None = None) -> tuple[str, Context]:
        """Return ``(name, context)`` for ``name`` or the current context."""
        chosen = name or self.current_context
        if not chosen:
            raise ConfigError("no context selected: pass a context name or set current-context")
        try:
            return chosen, self.contexts[chosen]
        except KeyError:
            known = ", ".join(sorted(self.contexts)) or "none"
            raise ContextNotFound(f"context {chosen!r} not found (known: {known})") from None


def default_config_path() -> Path:
    """``$CCS_CONFIG`` if set, else ``~/.config/ccs/config.yaml``."""
    env = os.environ.get("CCS_CONFIG")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".config" / "ccs" / "config.yaml"


def _resolve(path: str | os.PathLike[str] | None) -> Path:
    return Path(path).expanduser() if path is not None else default_config_path()


def load_config(path: str | os.PathLike[str] | None = None) -> ClientConfig:
    """Read the config; a missing file is an empty config (nothing configured yet)."""
    file = _resolve(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ClientConfig()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from exc
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
    if data is None:
        return ClientConfig()
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    try:
        return ClientConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{file}: {where}: {first['msg']}") from exc


def save_config(cfg: ClientConfig, path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``cfg`` atomically with mode 0600 (it holds tokens); returns the path written."""
    file = _resolve(path)
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = cfg.model_dump(mode="json", by_alias=True)
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    write_private(file, text.encode("utf-8"))
    return file


def upsert_context(
    name: str,
    ctx: Context,
    path: str | os.PathLike[str] | None = None,
    make_current: bool = True,
) -> ClientConfig:
    """Add or replace context ``name`` (keeping the others) and save; returns the new config."""
    if not name:
        raise ConfigError("context name must not be empty")
    cfg = load_config(path)
    cfg.contexts[name] = ctx
    if make_current or cfg.current_context is None:
        cfg.current_context = name
    save_config(cfg, path)
    return cfg


def use_context(name: str, path: str | os.PathLike[str] | None = None) -> ClientConfig:
    """Make ``name`` the current context and save; ``ConfigError`` naming the known ones if absent."""
    cfg = load_config(path)
    cfg.context(name)  # raises, naming the known contexts
    cfg.current_context = name
    save_config(cfg, path)
    return cfg


def rename_context(old: str, new: str, path: str | os.PathLike[str] | None = None) -> ClientConfig:
    """Rename context ``old`` to ``new`` (the current context follows it) and save. Refused, with
    nothing written, when ``old`` is absent, ``new`` is empty or already taken."""
    cfg = load_config(path)
    ctx = cfg.context(old)[1]
    if not new:
        raise ConfigError("context name must not be empty")
    if new in cfg.contexts and new != old:
        raise ContextExists(f"context {new!r} already exists")
    cfg.contexts = {new if k == old else k: v for k, v in cfg.contexts.items()}
    cfg.contexts[new] = ctx
    if cfg.current_context == old:
        cfg.current_context = new
    save_config(cfg, path)
    return cfg


def remove_context(name: str, path: str | os.PathLike[str] | None = None) -> ClientConfig:
    """Remove context ``name`` and save; removing the current one leaves no current context."""
    cfg = load_config(path)
    cfg.context(name)
    del cfg.contexts[name]
    if cfg.current_context == name:
        cfg.current_context = None
    save_config(cfg, path)
    return cfg
