"""What checks run against, and what each check reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiplane.config.loader import EnvSettings, LoadedConfig
from shiplane.config.models import Config
from shiplane.config.redact import Redactor
from shiplane.databases import Database
from shiplane.databases.env_database import open_env_database
from shiplane.layout import Layout


@dataclass
class Target:
    env: str
    base_url: str  # the candidate instance, or the front door
    sha: str
    phase: str  # "candidate" (green, before any traffic) | "serving" (through the front door)
    database: Database | None = None
    release_dir: Path | None = None
    config: Config | None = None
    current_url: str | None = None  # what serves now, for diff checks
    # Why there is no current_url to compare with, when there is a reason to say.
    current_missing: str | None = None
    gated: bool = False  # the env has promote_from: writes need allow_in
    redact: Redactor = field(default_factory=Redactor)
    captures: dict[str, Any] = field(default_factory=dict)
    # Sent with every http check: the maintenance bypass, through a front door in maintenance.
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class CheckResult:
    name: str
    kind: str
    group: str
    status: str  # passed | failed | skipped
    duration_ms: int = 0
    message: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "kind": self.kind,
            "group": self.group,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "message": self.message,
        }
        if self.detail:
            out["detail"] = self.detail
        return out


class CheckFailed(Exception):
    def __init__(self, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


class Skipped(Exception):
    pass


def excerpt(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def make_target(
    loaded: LoadedConfig,
    layout: Layout,
    settings: EnvSettings,
    *,
    sha: str,
    release_dir: str | None,
    phase: str,
    base_url: str,
    current_url: str | None = None,
    headers: dict[str, str] | None = None,
) -> Target:
    database = open_env_database(layout, settings)
    return Target(
        env=settings.name,
        base_url=base_url,
        sha=sha,
        phase=phase,
        database=database,
        release_dir=Path(release_dir) if release_dir else None,
        config=loaded.config,
        current_url=current_url,
        gated=settings.env_config.gated,
        redact=settings.redactor(),
        headers=dict(headers or {}),
    )
