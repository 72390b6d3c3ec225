"""Finding, parsing and validating ``shiplane.toml``; resolving one environment's settings."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shiplane.config.envfile import read_env_file
from shiplane.config.models import Config, Environment
from shiplane.config.redact import Redactor, looks_secret
from shiplane.errors import ConfigError

CONFIG_NAME = "shiplane.toml"


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    path: Path

    @property
    def repo_dir(self) -> Path:
        return self.path.parent


@dataclass(frozen=True)
class EnvSettings:
    """Everything one environment needs at deploy time, secrets kept apart from the rest."""

    name: str
    env_config: Environment
    database_url: str | None
    variables: dict[str, str]
    secrets: dict[str, str] = field(repr=False)
    env_file: Path | None

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
    if error["type"] == "extra_forbidden":
        return f"unknown key {location!r}: remove it or check its spelling"
    if error["type"] == "missing":
        return f"missing key {location!r}: add it"
    value = error.get("input")
    shown = repr(value) if not isinstance(value, dict) else "a table"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{location} = {shown}: {message}"


def describe_validation_error(exc: ValidationError) -> str:
    return "; ".join(_describe(e) for e in exc.errors())


def parse_config(text: str, path: Path) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML ({exc})", next_action=f"fix the syntax of {path}"
        ) from exc
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
        text = config_path.read_text(encoding="utf-8")
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
            f"environment {name!r} is not defined in {loaded.path} (defined: {known})",
            next_action=f"use one of: {known}, or add [environments.{name}]",
        )
    env_file = None
    secrets: dict[str, str] = {}
    if env_config.env_file:
        env_file = (loaded.repo_dir / os.path.expanduser(env_config.env_file)).resolve()
        secrets = read_env_file(env_file, field=f"environments.{name}.env_file")
    return EnvSettings(
        name=name,
        env_config=env_config,
        database_url=env_config.database.url or config.database.url,
        variables=dict(env_config.variables),
        secrets=secrets,
        env_file=env_file,
    )
