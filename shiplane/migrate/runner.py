"""Applies and reverts migrations on a SQLite database, all of one run in one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiplane.errors import MigrationError
from shiplane.migrate.files import Migration
from shiplane.state.db import now

TABLE = "shiplane_migrations"
Log = Callable[[str], None]


@dataclass
class MigrationPlan:
    applied: list[dict[str, Any]]
    pending: list[Migration]
    edited: list[str] = field(default_factory=list)
    unknown: list[dict[str, Any]] = field(default_factory=list)  # applied, no file in this release

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": [f"{a['version']:03d}_{a['name']}" for a in self.applied],
            "pending": [m.label for m in self.pending],
            "edited": self.edited,
            "unknown": [f"{a['version']:03d}_{a['name']}" for a in self.unknown],
        }


class SqliteMigrator:
    def __init__(self, db_path: Path, log: Log | None = None) -> None:
        self.db_path = db_path
        self.log: Log = log or (lambda _line: None)

    def _connect(self) -> sqlite3.Connection:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT"
                " NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
        except sqlite3.Error as exc:
            raise MigrationError(
                f"cannot open database {self.db_path}: {exc}", step="migrate"
            ) from exc
        return conn

    def applied(self) -> list[dict[str, Any]]:
        if not self.db_path.exists():
            return []
        conn = self._connect()
        try:
            rows = conn.execute(
                f"SELECT version, name, checksum, applied_at FROM {TABLE} ORDER BY version"
            )
            return [
                {"version": r[0], "name": r[1], "checksum": r[2], "applied_at": r[3]} for r in rows
            ]
        finally:
            conn.close()

    def plan(self, migrations: list[Migration]) -> MigrationPlan:
        applied = self.applied()
        by_version = {m.version: m for m in migrations}
        done = {a["version"] for a in applied}
        edited = [
            by_version[a["version"]].label
            for a in applied
            if a["version"] in by_version and by_version[a["version"]].checksum != a["checksum"]
        ]
        unknown = [a for a in applied if a["version"] not in by_version]
        pending = [m for m in migrations if m.version not in done]
        return MigrationPlan(applied, pending, edited, unknown)

    def check_not_edited(self, plan: MigrationPlan) -> None:
        if plan.edited:
            raise MigrationError(
                f"applied migration(s) {', '.join(plan.edited)} were edited after they ran "
                "(checksum differs from the one recorded)",
                step="migrate",
                next_action="restore the original file(s) and add a new migration for the change",
            )

    def up(self, migrations: list[Migration], to: int | None = None) -> list[str]:
        plan = self.plan(migrations)
        self.check_not_edited(plan)
        todo = [m for m in plan.pending if to is None or m.version <= to]
        if not todo:
            return []
        actions = [(m, m.up_action()) for m in todo]
        self._run(actions, direction="up")
        return [m.label for m in todo]

    def down(self, migrations: list[Migration], to: int) -> list[str]:
        """Revert applied migrations newer than ``to``, newest first, with these files' down."""
        by_version = {m.version: m for m in migrations}
        targets = [a for a in reversed(self.applied()) if a["version"] > to]
        missing = [
            f"{a['version']:03d}_{a['name']}" for a in targets if a["version"] not in by_version
        ]
        if missing:
            raise MigrationError(
                f"cannot revert {', '.join(missing)}: no migration file for it in this release",
                step="migrate",
                next_action="roll back with --restore-db to restore the pre-deploy backup",
            )
        irreversible = [by_version[a["version"]].label for a in targets
                        if by_version[a["version"]].irreversible]  # fmt: skip
        if irreversible:
            raise MigrationError(
                f"{', '.join(irreversible)} is declared irreversible",
                step="migrate",
                next_action="roll back with --restore-db to restore the pre-deploy backup",
            )
        actions = [
            (by_version[a["version"]], by_version[a["version"]].down_action()) for a in targets
        ]
        self._run(actions, direction="down")
        return [m.label for m, _ in actions]

    def _run(
        self, actions: list[tuple[Migration, Callable[[sqlite3.Connection], None]]], direction: str
    ) -> None:
        conn = self._connect()
        current: Migration | None = None
        try:
            conn.execute("BEGIN IMMEDIATE")
            for migration, action in actions:
                current = migration
                self.log(f"migrate {direction} {migration.label}")
                action(conn)
                if direction == "up":
                    conn.execute(
                        f"INSERT INTO {TABLE} (version, name, checksum, applied_at)"
                        " VALUES (?, ?, ?, ?)",
                        (migration.version, migration.name, migration.checksum, now()),
                    )
                else:
                    conn.execute(f"DELETE FROM {TABLE} WHERE version = ?", (migration.version,))
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            label = current.label if current else "?"
            raise MigrationError(
                f"migration {label} ({direction}) failed: {type(exc).__name__}: {exc}; "
                "every migration of this run was rolled back",
                step="migrate",
                next_action=f"fix {label} in a new commit and deploy again",
            ) from exc
        finally:
            conn.close()
