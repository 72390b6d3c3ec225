"""Finding, parsing and validating ``shiplane.toml``; resolving one environment's settings."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shiplane.config.envfile import parse_env_text, read_env_file
from shiplane.config.models import Config, Environment
from shiplane.config.packing import CHECKS_KEY, TLS_FILES, env_file_key, tls_file_key
from shiplane.config.redact import MASK, Redactor, looks_secret, mask_url_passwords
from shiplane.errors import ConfigError

CONFIG_NAME = "shiplane.toml"
MAX_CONFIG_BYTES = 1024 * 1024
MAX_CONFIG_DEPTH = 64


@dataclass(frozen=True)
class SentFiles:
    """A config as a client sent it: the text of shiplane.toml and of the files it names, keyed
    by where they live in the server's copy (``env_file_key(env)``, ``CHECKS_KEY``). Env files
    hold secrets: nothing here is ever put in a repr, a message or a log."""

    text: str = field(repr=False)
    files: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class LoadedConfig:
    """A parsed shiplane.toml. On the client ``path`` is the user's file; on the server it is
    the server's own copy of what the client sent (``sent``), and ``shown`` the user's path,
    which is what every message names."""

    config: Config
    path: Path
    shown: Path | None = None
    sent: SentFiles | None = field(default=None, repr=False)

    @property
    def display(self) -> Path:
        return self.shown or self.path

    @property
    def repo_dir(self) -> Path:
        """The directory of shiplane.toml: the user's repository on the client. A sent config's
        directory is the server's copy, which holds no code: server-side code reads code from
        a release or the server's repository, never from here."""
        return self.path.parent

    def env_file_path(self, env: str) -> Path | None:
        """Where ``env``'s env file is read (the server's copy for a sent config)."""
        value = self.config.environments[env].env_file
        if not value:
            return None
        if self.sent is not None:
            return self.repo_dir / env_file_key(env)
        return (self.repo_dir / os.path.expanduser(value)).resolve()

    def tls_file_path(self, env: str, name: str) -> Path | None:
        """Where ``env``'s ``tls.<name>`` file (one of TLS_FILES) is read: the server's copy
        for a sent config (kept 0600 like the env files: a key is a secret), else the user's
        file, relative to shiplane.toml."""
        tls = self.config.environments[env].tls
        value: str | None = getattr(tls, name) if tls is not None else None
        if not value:
            return None
        if self.sent is not None:
            return self.repo_dir / tls_file_key(env, name)
        return (self.repo_dir / os.path.expanduser(value)).resolve()

    def checks_file_path(self) -> Path | None:
        value = self.config.verify.checks_file
        if not value:
            return None
        if self.sent is not None:
            return self.repo_dir / CHECKS_KEY
        return self.repo_dir / value

    def sent_text(self, key: str, field_name: str, value: str) -> str:
        """The text the client sent for ``key``; a sent config without it is a config error."""
        assert self.sent is not None
        text = self.sent.files.get(key)
        if text is None:
            raise ConfigError(
                f"{field_name} = {value!r}: the client sent no copy of it",
                next_action=f"run the command where {value} is readable, next to {self.display}",
            )
        return text


@dataclass(frozen=True)
class EnvSettings:
    """Everything one environment needs at deploy time, secrets kept apart from the rest."""

    name: str
    env_config: Environment
    database_url: str | None
    variables: dict[str, str]
    secrets: dict[str, str] = field(repr=False)
    env_file: Path | None
    # tls.cert / tls.key / tls.ca_bundle as the server reads them (its own copies).
    tls_files: dict[str, Path] = field(default_factory=dict)

    def redactor(self) -> Redactor:
        secret_values = [*self.secrets.values()]
        secret_values += [v for k, v in self.variables.items() if looks_secret(k)]
        return Redactor(secret_values)


def find_config(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_NAME} in {here} or any parent directory",
        next_action="run `shiplane init` in your app repository, or pass --config PATH",
    )


def _describe(error: Any) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    location = location.replace("processes.workers.", "processes.")  # workers: no TOML key
    if error["type"] == "extra_forbidden":
        return f"unknown key {location!r}: remove it or check its spelling"
    if error["type"] == "missing":
        return f"missing key {location!r}: add it"
    value = error.get("input")
    if isinstance(value, dict) and error["type"] == "value_error":
        # A table's own validator: its message names the keys and values itself.
        message = mask_url_passwords(str(error["msg"]).removeprefix("Value error, "))
        return message if location == "(top level)" else f"{location}: {message}"
    if any(looks_secret(str(part)) for part in error["loc"]):
        # A secret-looking key: its value is never shown, whatever its type (a number, a list).
        shown = MASK
    else:
        shown = repr(value) if not isinstance(value, dict) else "a table"
    message = str(error["msg"]).removeprefix("Value error, ")
    if shown == MASK and value is not None and isinstance(value, str | int | float):
        message = message.replace(str(value), MASK)
    # A URL anywhere in it (database.url, a message quoting it) loses its password.
    return mask_url_passwords(f"{location} = {shown}: {message}")


def describe_validation_error(exc: ValidationError) -> str:
    return "; ".join(_describe(e) for e in exc.errors())


def load_toml(text: str, path: Path) -> dict[str, Any]:
    """Parse a TOML file shiplane reads (shiplane.toml, a checks file) within limits: no
    config needs more than 1 MB or 64 levels, and a deeper one must not cost a RecursionError
    (or the memory of a 10 MB string) to refuse."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: {size} bytes, over the {MAX_CONFIG_BYTES}-byte limit for a config file",
            next_action=f"shrink {path} (keep data out of it: an env file, a checks file)",
        )
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML ({exc})", next_action=f"fix the syntax of {path}"
        ) from exc
    except RecursionError:
        raw = None  # nested far deeper than the limit below
    if raw is None or _depth(raw) > MAX_CONFIG_DEPTH:
        raise ConfigError(
            f"{path}: tables or arrays nested deeper than {MAX_CONFIG_DEPTH} levels",
            next_action=f"flatten {path}: no shiplane setting nests that deep",
        )
    return raw


def _depth(value: object) -> int:
    """How deeply ``value`` nests (without recursion: the input is what is being limited)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_CONFIG_DEPTH:
            return deepest
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return deepest


def read_limited(path: Path) -> str:
    """The text of a config file, read no further than one byte past the size limit."""
    with path.open("rb") as handle:
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: over the {MAX_CONFIG_BYTES}-byte limit for a config file",
            next_action=f"shrink {path} (keep data out of it: an env file, a checks file)",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
            next_action=f"save {path} as UTF-8",
        ) from None


def parse_config(text: str, path: Path) -> Config:
    raw = load_toml(text, path)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            f"{path}: {describe_validation_error(exc)}",
            next_action=f"edit {path} (see the config reference in the README)",
        ) from None


def load_config(path: Path | None = None) -> LoadedConfig:
    config_path = path.resolve() if path else find_config()
    try:
        text = read_limited(config_path)
    except OSError as exc:
        raise ConfigError(
            f"{config_path}: cannot read it ({exc.strerror})",
            next_action="pass --config with a readable shiplane.toml",
        ) from exc
    return LoadedConfig(config=parse_config(text, config_path), path=config_path)


def env_settings(loaded: LoadedConfig, name: str) -> EnvSettings:
    config = loaded.config
    env_config = config.environments.get(name)
    if env_config is None:
        known = ", ".join(sorted(config.environments))
        raise ConfigError(
            f"environment {name!r} is not defined in {loaded.display} (defined: {known})",
            next_action=f"use one of: {known}, or add [environments.{name}]",
        )
    env_file = loaded.env_file_path(name)
    secrets: dict[str, str] = {}
    field_name = f"environments.{name}.env_file"
    if env_config.env_file and loaded.sent is not None:
        text = loaded.sent_text(env_file_key(name), field_name, env_config.env_file)
        secrets = parse_env_text(text, loaded.display.parent / env_config.env_file)
    elif env_file is not None:
        secrets = read_env_file(env_file, field=field_name)
    if env_config.tls is not None and loaded.sent is not None:
        for key in TLS_FILES:
            value = getattr(env_config.tls, key)
            if value:  # a file the client did not send is an error now, not at switch time
                loaded.sent_text(tls_file_key(name, key), f"environments.{name}.tls.{key}", value)
    return EnvSettings(
        name=name,
        env_config=env_config,
        database_url=env_config.database.url or config.database.url,
        variables=dict(env_config.variables),
        secrets=secrets,
        env_file=env_file,
        tls_files={
            key: path for key in TLS_FILES if (path := loaded.tls_file_path(name, key)) is not None
        },
    )
