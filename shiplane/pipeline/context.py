"""What every pipeline step gets: where things are, the state db, the target, the log."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shiplane.config.loader import EnvSettings, LoadedConfig
from shiplane.config.models import Config
from shiplane.config.redact import Redactor
from shiplane.databases import Database, open_database, resolve_url
from shiplane.errors import DeployFailedError
from shiplane.faultpoints import FAULT
from shiplane.layout import Layout
from shiplane.state.db import StateDB
from shiplane.targets.base import DeployTarget, Instance, InstanceSpec, TrafficControl

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
class Facts:
    """What earlier steps of one deployment found out, for later steps."""

    database_url: str | None = None
    previous_release: str | None = None
    previous_sha: str | None = None
    process_env: dict[str, str] = field(default_factory=dict)
    sha: str | None = None
    release: str | None = None
    release_dir: str | None = None
    current_release_dir: str | None = None  # rollback: the release it leaves
    new_release: bool = True  # False for a rollback: the release exists already
    reused: str | None = None  # promote: the release dir whose build was reused
    spec: InstanceSpec | None = None
    instance: Instance | None = None
    previous_instance: str | None = None
    standby: bool = False  # rollback: the instance is the warm standby (no start, no wait)
    pending: list[str] = field(default_factory=list)
    backup_id: str | None = None
    restore_from: str | None = None
    verification_id: str | None = None
    hold_started: float | None = None  # monotonic time the front door began holding
    hold_plan: dict[str, Any] | None = None  # a held forward migration (pipeline.forward_hold)
    hold_seconds: float | None = None  # how long the last hold lasted, once released

    def need(self, name: str) -> Any:
        """A fact an earlier step of the plan must have set; a plan missing that step is a
        bug, reported as one instead of as a None deep inside a step."""
        value = getattr(self, name)
        if value is None:
            raise DeployFailedError(f"internal: {name!r} is not known at this step", step=None)
        return value


@dataclass
class Context:
    layout: Layout
    db: StateDB
    target: DeployTarget
    env: str
    deployment_id: str
    log: DeployLog
    redact: Redactor
    loaded: LoadedConfig
    settings: EnvSettings
    progress: Progress = lambda _step, _status: None
    options: dict[str, Any] = field(default_factory=dict)
    facts: Facts = field(default_factory=Facts)

    def database(self, url: str | None = None) -> Database | None:
        """The env's database (or ``url``'s); ${SECRET}s are filled from the env file only here."""
        url = url or self.facts.database_url
        if not url:
            return None
        return open_database(resolve_url(url, self.settings.secrets))

    @property
    def config(self) -> Config:
        return self.loaded.config

    def traffic(self) -> TrafficControl:
        return self.target.traffic(self.env, self.settings.env_config.port)


# Test-only fault injection for the operation running in this thread: "step:kill" (before the
# step acts), "step:kill-after", or "step:fail" (the step fails as a check would: its undo and
# every earlier step's run, as after a real failure). Several may be given, comma-separated,
# in FAULT (shiplane/faultpoints.py, which says who sets it).


class InjectedCrash(BaseException):
    """The operation dies here as if its process were killed: no handler below the server's
    own runs, so nothing is undone and the records stay as a crash leaves them."""


def fault_point(step: str, when: str = "before") -> None:
    faults = FAULT.get()
    if not faults:
        return
    for fault in faults.split(","):
        name, _, action = fault.partition(":")
        if name != step:
            continue
        if action == ("kill" if when == "before" else "kill-after"):
            raise InjectedCrash(fault)
        if action == "fail" and when == "before":
            from shiplane.errors import SmokeFailedError

            kind = SmokeFailedError if step == "smoke" else DeployFailedError
            raise kind(f"injected failure at {step} (SHIPLANE_FAULT)", step=step)
