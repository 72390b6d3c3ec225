"""Settings of the host's server, kept in its root (``server-settings.json``), set with
``shiplane server config KEY=VALUE...``.

    instance_ports = "20000-29999"   # the ports app instances listen on (loopback)

They belong to the host, not to an app: several apps share one server, and which ports its
instances may take is the host admin's call (a firewall, other services). No app's
``shiplane.toml`` can name them. The server reads the file each time it starts an instance, so a
change applies to the next instance without a restart.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from shiplane.errors import ConfigError

FILE = "server-settings.json"
RANGE = re.compile(r"^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$")
EXAMPLE = "shiplane server config instance_ports=20000-29999"


class PortRange(BaseModel):
    model_config = ConfigDict(frozen=True)

    low: int
    high: int

    @classmethod
    def parse(cls, text: str) -> PortRange:
        match = RANGE.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a range LOW-HIGH, e.g. 20000-29999")
        low, high = int(match.group(1)), int(match.group(2))
        if not 1024 <= low <= high <= 65535:
            raise ValueError(
                f"{text!r}: use 1024 <= LOW <= HIGH <= 65535 (ports below 1024 need root)"
            )
        return cls(low=low, high=high)

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"

    @property
    def size(self) -> int:
        return self.high - self.low + 1


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # None: any free port the kernel hands out (its ephemeral range).
    instance_ports: PortRange | None = None

    @field_validator("instance_ports", mode="before")
    @classmethod
    def _ports(cls, value: Any) -> Any:
        return PortRange.parse(value) if isinstance(value, str) else value

    def shown(self) -> dict[str, Any]:
        """As JSON output and the file hold them: ranges as "LOW-HIGH"."""
        return {"instance_ports": str(self.instance_ports) if self.instance_ports else None}


KEYS = tuple(ServerSettings.model_fields)


def settings_path(root: Path) -> Path:
    return root / FILE


def load_settings(root: Path) -> ServerSettings:
    path = settings_path(root)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return ServerSettings()
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{path}: cannot read the server's settings ({exc})",
            next_action=f"fix or remove {path}, then: {EXAMPLE}",
        ) from None
    try:
        return ServerSettings.model_validate(data)
    except ValidationError as exc:
        problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(
            f"{path}: {problem}", next_action=f"fix or remove {path}, then: {EXAMPLE}"
        ) from None


def updated(settings: ServerSettings, assignments: list[str]) -> ServerSettings:
    """``settings`` with ``KEY=VALUE`` assignments applied (``KEY=`` resets to the default);
    every assignment is checked before anything is written."""
    changes: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in KEYS:
            raise ConfigError(
                f"server config {item!r}: expected KEY=VALUE with KEY one of {', '.join(KEYS)}",
                step="usage",
                next_action=EXAMPLE,
            )
        try:
            changes[key] = PortRange.parse(value) if value.strip() else None
        except ValueError as exc:
            raise ConfigError(
                f"server config {key} = {value!r}: {exc}", step="usage", next_action=EXAMPLE
            ) from None
    return settings.model_copy(update=changes)


def save_settings(root: Path, settings: ServerSettings) -> None:
    """Written whole and renamed into place: the server never reads half a file."""
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".settings-", dir=root)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(settings.shown(), handle, indent=2)
            handle.write("\n")
        os.replace(tmp, settings_path(root))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
