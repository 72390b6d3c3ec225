"""The files a shiplane.toml names, which travel to the server with it: each environment's
``env_file`` and ``tls`` cert/key/ca_bundle, and the ``[verify]`` checks file.

Stdlib only, and read from the TOML table rather than the Pydantic models: the CLI's fast path
(``shiplane.cli.fast``) packs a config without importing the models, and
``shiplane.config.snapshot.pack`` uses the same list, so both send the same files (the server
replaces its copy with what arrives: a file left out would be deleted there).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Where the files a config names live in the server's copy of it (shiplane.config.snapshot).
CHECKS_KEY = "checks.toml"
# The file keys of a ``tls`` table, each a path the client reads and sends with the config.
TLS_FILES = ("cert", "key", "ca_bundle")


def env_file_key(env: str) -> str:
    return f"env/{env}.env"


def tls_file_key(env: str, name: str) -> str:
    return f"tls/{env}.{name}.pem"


@dataclass(frozen=True)
class NamedFile:
    key: str  # where the server keeps its copy
    path: Path  # where the client reads it
    field: str  # the setting that names it, as messages quote it


def named_files(raw: Mapping[str, Any], base: Path) -> list[NamedFile]:
    """The files ``raw`` (a parsed shiplane.toml in directory ``base``) names. On a table the
    models have not validated, a setting of the wrong type raises TypeError or
    AttributeError: the caller then takes the validating path."""
    named: list[NamedFile] = []
    for env, table in (raw.get("environments") or {}).items():
        value = table.get("env_file")
        if value:
            field = f"environments.{env}.env_file = {value!r}"
            named.append(NamedFile(env_file_key(env), _client_path(base, value), field))
        tls = table.get("tls") or {}
        for name in TLS_FILES:
            value = tls.get(name)
            if value:
                field = f"environments.{env}.tls.{name} = {value!r}"
                named.append(NamedFile(tls_file_key(env, name), _client_path(base, value), field))
    checks = (raw.get("verify") or {}).get("checks_file")
    if checks:
        named.append(NamedFile(CHECKS_KEY, base / _text(checks), "verify.checks_file"))
    return named


def _client_path(base: Path, value: Any) -> Path:
    return (base / os.path.expanduser(_text(value))).resolve()


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a file path must be a string, got {type(value).__name__}")
    return value
