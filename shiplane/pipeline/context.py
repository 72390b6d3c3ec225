"""What every pipeline step gets: where things are, the state db, the server, the log."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shiplane.config.loader import EnvSettings, LoadedConfig
from shiplane.config.models import Config
from shiplane.config.redact import Redactor
from shiplane.databases import Database, open_database, resolve_url
from shiplane.layout import Layout
from shiplane.server.client import ServerClient
from shiplane.state.db import StateDB

Progress = Callable[[str, str], None]


class DeployLog:
    """The per-deployment log file (mode 0600); every line passes the redactor."""

    def __init__(self, path: Path, redact: Redactor) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self.redact = redact
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        self._handle = os.fdopen(fd, "a", encoding="utf-8")

    def __call__(self, text: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
        for line in self.redact(text).rstrip("\n").splitlines() or [""]:
            self._handle.write(f"{stamp} {line}\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


@dataclass
class Context:
    layout: Layout
    db: StateDB
    server: ServerClient
    env: str
    deployment_id: str
    log: DeployLog
    redact: Redactor
    loaded: LoadedConfig | None = None
    settings: EnvSettings | None = None
    progress: Progress = lambda _step, _status: None
    options: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)  # what earlier steps found out

    def database(self, url: str | None = None) -> Database | None:
        """The env's database (or ``url``'s); ${SECRET}s are filled from the env file only here."""
        url = url or self.facts.get("database_url")
        if not url:
            return None
        secrets = self.settings.secrets if self.settings else {}
        return open_database(resolve_url(url, secrets))

    @property
    def config(self) -> Config:
        assert self.loaded is not None
        return self.loaded.config


def fault_point(step: str, when: str = "before") -> None:
    """Test-only fault injection: SHIPLANE_FAULT=step:kill (or step:kill-after)."""
    fault = os.environ.get("SHIPLANE_FAULT", "")
    if not fault:
        return
    name, _, action = fault.partition(":")
    if name == step and action == ("kill" if when == "before" else "kill-after"):
        os.kill(os.getpid(), signal.SIGKILL)
