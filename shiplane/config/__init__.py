"""Configuration: ``shiplane.toml`` models, loading, env files and secret redaction."""

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
