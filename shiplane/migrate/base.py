"""The MigrationEngine seam: what the pipeline, the CLI and the server ask of a migration tool.

An engine finds the migrations of a release (``discover``), says which of them this database has
applied and which are pending (``plan``), applies them (``up``) and, when it can, reverts to an
older version (``down``). What it cannot do it declares in ``capabilities``; callers read those
flags, never an engine's name, and take the documented fallback:

- ``revert`` missing: a rollback restores the pre-deploy backup instead of running ``down``;
- ``lint`` missing: the risk lint is skipped and says so (the backup still covers the deploy);
- ``rehearse`` missing: no up -> down -> up on a copy; the backup is the only safety net.

Adding an engine (``command``, ``flask-migrate``, ``django``, ...) takes one subclass of
``MigrationEngine`` whose migrations satisfy ``MigrationSource``, and one line in
``shiplane/migrate/registry.py``. The registry checks at import time that its names match
``ENGINE_NAMES`` in ``shiplane/config/models.py``, which validates ``database.engine`` without
importing this package (config must not depend on migrate); add the name there too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, TypedDict, TypeVar

from shiplane.config.models import DatabaseConfig
from shiplane.databases.base import Database
from shiplane.errors import MigrationError
from shiplane.launch.base import RunAs
from shiplane.migrate.tools import AppTools

Log = Callable[[str], None]
M = TypeVar("M")


class MigrationSource(Protocol):
    """One migration as a file of a release: what plans, lint and rehearsal read of it."""

    @property
    def version(self) -> int: ...  # position in order, 1 = first

    @property
    def name(self) -> str: ...

    @property
    def label(self) -> str: ...  # what people and JSON see, e.g. "002_add_tags" or "a1b2"

    @property
    def checksum(self) -> str: ...  # sha256 of the file: an applied one must not change

    @property
    def annotations(self) -> set[str]: ...  # "irreversible", "expand-contract"

    @property
    def irreversible(self) -> bool: ...

    def up_source(self) -> str: ...

    def has_down(self) -> bool: ...

    def statements(self, direction: str) -> list[str]: ...  # SQL a dry run shows; [] if unknown


class AppliedMigration(TypedDict):
    version: int
    name: str
    label: str
    checksum: str
    applied_at: str


@dataclass
class MigrationPlan:
    applied: list[AppliedMigration]
    pending: list[MigrationSource]
    edited: list[str] = field(default_factory=list)
    unknown: list[AppliedMigration] = field(default_factory=list)  # applied, no file here
    # The engine's status cannot tell what is pending (a `command` engine's tool): callers
    # treat the database as one a deploy may change (back up, rehearse).
    pending_unknown: bool = False

    @property
    def may_change(self) -> bool:
        return bool(self.pending) or self.pending_unknown

    def to_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "applied": [a["label"] for a in self.applied],
            "pending": [m.label for m in self.pending],
            "edited": self.edited,
            "unknown": [a["label"] for a in self.unknown],
        }
        if self.pending_unknown:
            shown["pending_unknown"] = True
        return shown


@dataclass(frozen=True)
class Capabilities:
    revert: bool  # down(to) brings the schema back to an older version
    lint: bool  # up_source() is text the risk lint can read
    rehearse: bool  # up (and down, with revert) can run on a scratch copy of the database


class MigrationEngine(ABC):
    """One migration tool. Per-engine settings come from ``[database]`` in shiplane.toml."""

    name: ClassVar[str]
    # Per class, except where the config decides (a `command` engine without `down`).
    capabilities: Capabilities
    # The tables the engine keeps its own books in: not the app's schema, so a rehearsal's
    # before/after comparison leaves them out (`alembic downgrade base` keeps an empty one).
    bookkeeping: ClassVar[tuple[str, ...]] = ()
    # Undo of a deploy's migrate step: False = restore the pre-deploy backup (one transaction
    # per run, so a backup is exact); True = revert to the position recorded before it ran
    # (tools that apply migration by migration), the backup only when that fails.
    reverts_on_undo: ClassVar[bool] = False

    def __init__(
        self,
        database: Database,
        settings: DatabaseConfig | None = None,
        log: Log | None = None,
        run_as: RunAs | None = None,
        tools: AppTools | None = None,
    ) -> None:
        self.database = database
        self.settings = settings or DatabaseConfig()
        self.log: Log = log or (lambda _line: None)
        # Whose code the migrations are: engines that run the app's tools (Alembic) start
        # them as this environment's user in enforced mode.
        self.run_as = run_as
        # How the app's tools start (interpreter, variables, secrets, release dir).
        self.tools = tools or AppTools()

    def on(self, database: Database) -> Self:
        """The same engine on another database (a rehearsal's scratch copy)."""
        return type(self)(database, self.settings, self.log, self.run_as, self.tools)

    def position(self, migrations: Sequence[MigrationSource]) -> Any:
        """Where the database is now, as JSON: what ``revert_to`` brings it back to. The
        pipeline records it before migrating; file engines use the newest applied version."""
        return max((a["version"] for a in self.applied(migrations)), default=0)

    def revert_to(self, migrations: Sequence[MigrationSource], position: Any) -> list[str]:
        """Back to a ``position`` recorded earlier; returns what was reverted."""
        return self.down(migrations, to=int(position))

    @classmethod
    @abstractmethod
    def discover(cls, settings: DatabaseConfig, release_dir: Path) -> list[MigrationSource]:
        """The migrations of a release (or of a working tree), in order; needs no database."""

    @abstractmethod
    def applied(self, migrations: Sequence[MigrationSource] = ()) -> list[AppliedMigration]:
        """What this database has applied. Engines that record only the head (Alembic) need
        the release's migrations to name the rest."""

    @abstractmethod
    def plan(self, migrations: Sequence[MigrationSource]) -> MigrationPlan: ...

    def status(self, release_dir: Path) -> MigrationPlan:
        return self.plan(self.discover(self.settings, release_dir))

    @abstractmethod
    def check_not_edited(self, plan: MigrationPlan) -> None:
        """Raises MigrationError when an applied migration's file changed since it ran."""

    @abstractmethod
    def up(self, migrations: Sequence[MigrationSource], to: int | None = None) -> list[str]:
        """Applies what is pending (up to version ``to``); returns the labels applied."""

    def down(self, migrations: Sequence[MigrationSource], to: int) -> list[str]:
        """Reverts applied migrations newer than ``to``; returns the labels reverted."""
        raise MigrationError(
            f"the {self.name} migration engine cannot revert to a version",
            step="migrate",
            next_action="roll back with --restore-db to restore the pre-deploy backup",
        )


def own(migrations: Sequence[MigrationSource], kind: type[M], engine: str) -> list[M]:
    """The migrations as ``kind``: another engine's files here mean a wiring mistake."""
    strays = [m.label for m in migrations if not isinstance(m, kind)]
    if strays:
        raise MigrationError(
            f"{', '.join(strays)}: not migrations of the {engine} engine", step="migrate"
        )
    return [m for m in migrations if isinstance(m, kind)]
