"""The ``command`` engine: the app's own migration tool, run as commands from ``[database]``
(``up``, ``down`` with ``{target}``, ``status``). The presets (flask-migrate, django, knex) are
subclasses that bring their commands and read their tool's status output.

A tool keeps its own books, so shiplane asks it (``status``) instead of reading files: what it
prints is the applied version(s), the last one the current. Before a deploy migrates, the
pipeline records that position; ``down`` reverts to it on undo and rollback. Without a ``down``
command the engine cannot revert (rollback restores the backup). Where the status cannot tell
what is pending, the plan says so and the pipeline backs up and rehearses all the same.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiplane.config.models import DatabaseConfig
from shiplane.databases.base import Database
from shiplane.errors import MigrationError
from shiplane.launch.base import Completed, RunAs
from shiplane.migrate.base import (
    AppliedMigration,
    Capabilities,
    Log,
    MigrationEngine,
    MigrationPlan,
    MigrationSource,
)
from shiplane.migrate.tools import AppTools, run_tool

BASE = "base"  # {target} when nothing was applied before


@dataclass
class Status:
    applied: list[str]  # in order; the last one is the current version
    pending: list[str] | None  # None: the tool does not say


@dataclass(frozen=True)
class Pending:
    """A migration the tool reports pending; its source is the tool's business."""

    version: int
    name: str
    revertible: bool = True
    annotations: set[str] = field(default_factory=set)

    @property
    def label(self) -> str:
        return self.name

    @property
    def checksum(self) -> str:
        return ""

    @property
    def irreversible(self) -> bool:
        return False

    def up_source(self) -> str:
        return ""

    def has_down(self) -> bool:
        return self.revertible

    def statements(self, direction: str) -> list[str]:
        return []


class CommandEngine(MigrationEngine):
    name = "command"
    capabilities = Capabilities(revert=True, lint=False, rehearse=True)
    # Tools do not run in one transaction: undo reverts with `down` to the recorded position.
    reverts_on_undo = True

    def __init__(
        self,
        database: Database,
        settings: DatabaseConfig | None = None,
        log: Log | None = None,
        run_as: RunAs | None = None,
        tools: AppTools | None = None,
    ) -> None:
        super().__init__(database, settings, log, run_as, tools)
        if not self.can_revert():
            # e.g. Prisma's `migrate deploy`: forward only; rollback restores the backup.
            self.capabilities = Capabilities(
                revert=False, lint=self.capabilities.lint, rehearse=self.capabilities.rehearse
            )

    # What a preset overrides ------------------------------------------------------------
    def can_revert(self) -> bool:
        return self.settings.down is not None

    def up_argv(self) -> list[str]:
        return shlex.split(self.settings.up or "")

    def status_argv(self) -> list[str] | None:
        return shlex.split(self.settings.status) if self.settings.status else None

    def parse_status(self, output: str, release_dir: Path) -> Status:
        return Status([line.strip() for line in output.splitlines() if line.strip()], None)

    def revert(self, release_dir: Path, target: Any) -> None:
        """One call of the down command, to ``target`` (a position from ``position``)."""
        argv = [
            part.replace("{target}", str(target or BASE))
            for part in shlex.split(self.settings.down or "")
        ]
        self.run(argv, release_dir, f"down to {target or BASE}")

    def position_of(self, status: Status) -> Any:
        return status.applied[-1] if status.applied else None

    def position_at(self, status: Status, count: int) -> Any:
        """The position with only the first ``count`` applied versions."""
        return status.applied[count - 1] if count > 0 else None

    # The engine ---------------------------------------------------------------------------
    @classmethod
    def discover(cls, settings: DatabaseConfig, release_dir: Path) -> list[MigrationSource]:
        return []  # the tool finds its own migrations

    def status(self, release_dir: Path) -> MigrationPlan:
        self.tools = self.tools.at(release_dir)
        return super().status(release_dir)

    def release_dir(self, migrations: Sequence[MigrationSource] = ()) -> Path:
        if self.tools.release_dir is not None:
            return self.tools.release_dir
        roots = [getattr(m, "root", None) for m in migrations]
        root = next((r for r in roots if isinstance(r, Path)), None)
        if root is None:
            raise MigrationError(
                f"internal: the {self.name} engine was given no release directory", step="migrate"
            )
        return root

    def run(self, argv: list[str], release_dir: Path, what: str, check: bool = True) -> Completed:
        return run_tool(
            self.database,
            self.tools,
            argv,
            cwd=release_dir,
            run_as=self.run_as,
            log=self.log,
            what=f"{self.name} {what} ({shlex.join(argv)})",
            check=check,
        )

    def read_status(self, release_dir: Path) -> Status:
        argv = self.status_argv()
        if argv is None:
            return Status([], None)
        return self.parse_status(self.run(argv, release_dir, "status").stdout, release_dir)

    def applied(self, migrations: Sequence[MigrationSource] = ()) -> list[AppliedMigration]:
        status = self.read_status(self.release_dir(migrations))
        return [_applied(i, label) for i, label in enumerate(status.applied, 1)]

    def plan(self, migrations: Sequence[MigrationSource]) -> MigrationPlan:
        status = self.read_status(self.release_dir(migrations))
        applied = [_applied(i, label) for i, label in enumerate(status.applied, 1)]
        pending: list[MigrationSource] = [
            Pending(len(applied) + i, label, self.capabilities.revert)
            for i, label in enumerate(status.pending or [], 1)
        ]
        return MigrationPlan(applied, pending, pending_unknown=status.pending is None)

    def check_not_edited(self, plan: MigrationPlan) -> None:
        """The tool owns its files; it has no record shiplane could compare them with."""

    def up(self, migrations: Sequence[MigrationSource], to: int | None = None) -> list[str]:
        if to is not None:
            raise MigrationError(
                f"the {self.name} engine applies everything pending; --to is not supported",
                step="migrate",
                next_action="run up without --to",
            )
        release = self.release_dir(migrations)
        before = self.read_status(release) if self.status_argv() else None
        if before is not None and before.pending == []:
            return []
        self.run(self.up_argv(), release, "up")
        if before is None:
            return ["(up ran; no status command to say what)"]
        after = self.read_status(release)
        return [label for label in after.applied if label not in set(before.applied)]

    def position(self, migrations: Sequence[MigrationSource]) -> Any:
        return self.position_of(self.read_status(self.release_dir(migrations)))

    def revert_to(self, migrations: Sequence[MigrationSource], position: Any) -> list[str]:
        if not self.capabilities.revert:
            return super().down(migrations, 0)  # raises: says to restore the backup
        release = self.release_dir(migrations)
        before = self.read_status(release)
        if self.position_of(before) == position:
            return []
        self.revert(release, position)
        after = self.read_status(release)
        if self.position_of(after) != position:
            raise MigrationError(
                f"{self.name} down to {position or BASE} left the database at "
                f"{self.position_of(after) or BASE}",
                step="migrate",
                next_action="check the down command; roll back with --restore-db to restore "
                "the pre-deploy backup",
            )
        return [label for label in reversed(before.applied) if label not in set(after.applied)]

    def down(self, migrations: Sequence[MigrationSource], to: int) -> list[str]:
        status = self.read_status(self.release_dir(migrations))
        return self.revert_to(migrations, self.position_at(status, to))


def _applied(version: int, label: str) -> AppliedMigration:
    return {"version": version, "name": label, "label": label, "checksum": "", "applied_at": ""}
