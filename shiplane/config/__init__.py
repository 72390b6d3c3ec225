"""Configuration: ``shiplane.toml`` models, loading, env files and secret redaction.

The names below load on first use (PEP 562): ``shiplane.config.redact`` is imported by every
result, and must not bring the Pydantic models (and their import time) into a CLI command that
never reads a config, such as ``shiplane --help``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shiplane.config.loader import (
        CONFIG_NAME,
        EnvSettings,
        LoadedConfig,
        env_settings,
        find_config,
        load_config,
        parse_config,
    )
    from shiplane.config.models import Config, Environment
    from shiplane.config.redact import Redactor

_WHERE = {
    "CONFIG_NAME": "loader",
    "EnvSettings": "loader",
    "LoadedConfig": "loader",
    "env_settings": "loader",
    "find_config": "loader",
    "load_config": "loader",
    "parse_config": "loader",
    "Config": "models",
    "Environment": "models",
    "Redactor": "redact",
}

__all__ = [
    "CONFIG_NAME",
    "Config",
    "EnvSettings",
    "Environment",
    "LoadedConfig",
    "Redactor",
    "env_settings",
    "find_config",
    "load_config",
    "parse_config",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"shiplane.config.{_WHERE[name]}"), name)
