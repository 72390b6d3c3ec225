"""The shiplane engine: ``NNN_name.py``/``.sql`` files applied and reverted on any Database,
all of one run in one transaction, under the database's migration lock."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shiplane.config.models import DatabaseConfig
from shiplane.databases.base import MIGRATIONS_TABLE as TABLE
from shiplane.errors import MigrationError
from shiplane.launch import launcher
from shiplane.launch.base import run_captured
from shiplane.migrate.base import (
    AppliedMigration,
    Capabilities,
    MigrationEngine,
    MigrationPlan,
    MigrationSource,
    own,
)
from shiplane.migrate.files import Migration, discover
from shiplane.procenv import child_environment
from shiplane.state.db import now

CHILD_TIMEOUT = 3600.0
# How the child (shiplane.migrate.child) gets its request: JSON in this variable, never argv.
REQUEST_VARIABLE = "SHIPLANE_MIGRATE_REQUEST"


class Migrator(MigrationEngine):
    """Applies and reverts migrations on any Database; one run, one transaction, lock held."""

    name = "shiplane"
    capabilities = Capabilities(revert=True, lint=True, rehearse=True)
    bookkeeping = (TABLE,)

    @classmethod
    def discover(cls, settings: DatabaseConfig, release_dir: Path) -> list[MigrationSource]:
        return list(discover(release_dir / settings.migrations))

    def _connect(self) -> Any:
        try:
            conn = self.database.connect()
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT"
                " NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
        except Exception as exc:  # sqlite3.Error, psycopg.Error: the driver's own tree
            raise MigrationError(
                f"cannot open {self.database.describe()}: {exc}", step="migrate"
            ) from exc
        return conn

    def applied(self, migrations: Sequence[MigrationSource] = ()) -> list[AppliedMigration]:
        if not self.database.exists() or not self.database.columns(TABLE):
            return []
        conn = self._connect()
        try:
            rows = conn.execute(
                f"SELECT version, name, checksum, applied_at FROM {TABLE} ORDER BY version"
            ).fetchall()
            return [
                {
                    "version": r[0],
                    "name": r[1],
                    "label": f"{r[0]:03d}_{r[1]}",
                    "checksum": r[2],
                    "applied_at": r[3],
                }
                for r in rows
            ]
        finally:
            conn.close()

    def plan(self, migrations: Sequence[MigrationSource]) -> MigrationPlan:
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

    def up(
        self, migrations: Sequence[MigrationSource], to: int | None = None, in_child: bool = False
    ) -> list[str]:
        if self._needs_child(migrations, in_child):
            return self._in_child(migrations, "up", to)
        plan = self.plan(migrations)
        self.check_not_edited(plan)
        todo = [m for m in own(plan.pending, Migration, self.name) if to is None or m.version <= to]
        if not todo:
            return []
        return self._run([(m, m.up_action()) for m in todo], direction="up")

    def down(
        self, migrations: Sequence[MigrationSource], to: int, in_child: bool = False
    ) -> list[str]:
        """Revert applied migrations newer than ``to``, newest first, with these files' down."""
        if self._needs_child(migrations, in_child):
            return self._in_child(migrations, "down", to)
        by_version = {m.version: m for m in own(migrations, Migration, self.name)}
        targets = [a for a in reversed(self.applied()) if a["version"] > to]
        missing = [a["label"] for a in targets if a["version"] not in by_version]
        if missing:
            raise MigrationError(
                f"cannot revert {', '.join(missing)}: no migration file for it in this release",
                step="migrate",
                next_action="roll back with --restore-db to restore the pre-deploy backup",
            )
        irreversible = [
            by_version[a["version"]].label for a in targets if by_version[a["version"]].irreversible
        ]
        if irreversible:
            raise MigrationError(
                f"{', '.join(irreversible)} is declared irreversible",
                step="migrate",
                next_action="roll back with --restore-db to restore the pre-deploy backup",
            )
        actions = [
            (by_version[a["version"]], by_version[a["version"]].down_action()) for a in targets
        ]
        return self._run(actions, direction="down")

    def _needs_child(self, migrations: Sequence[MigrationSource], in_child: bool) -> bool:
        """App code (a .py migration) in enforced mode runs as the environment's user."""
        python = any(m.kind == "py" for m in own(migrations, Migration, self.name))
        return python and not in_child and self.run_as is not None and launcher().separates_users

    def _in_child(
        self, migrations: Sequence[MigrationSource], direction: str, to: int | None
    ) -> list[str]:
        assert self.run_as is not None
        directory = own(migrations, Migration, self.name)[0].path.parent
        request: dict[str, Any] = {
            "url": self.database.url,
            "directory": str(directory),
            "direction": direction,
            "to": to,
        }
        env = child_environment({REQUEST_VARIABLE: json.dumps(request)})
        release = directory.parent
        if self.database.url.startswith("sqlite:///"):
            # The database file lives in the env's shared dir: the environment's user must be
            # able to write it (and its -wal/-shm) before the first instance has started.
            # A rehearsal's copy sits in a scratch dir inside shared/: hand over that too.
            database_file = Path(self.database.url.removeprefix("sqlite:///"))
            shared = next((d for d in database_file.parents if d.name == "shared"), None)
            if shared is not None:
                launcher().prepare(shared, self.run_as)
        done = run_captured(
            launcher(),
            [sys.executable, "-m", "shiplane.migrate.child"],
            run_as=self.run_as,
            cwd=release,
            env=env,
            timeout=CHILD_TIMEOUT,
        )
        result: dict[str, Any] = {}
        for line in done.stdout.splitlines():
            message = json.loads(line) if line.startswith("{") else {"log": line}
            if "log" in message:
                self.log(str(message["log"]))
            else:
                result = message
        if "labels" in result:
            return [str(label) for label in result["labels"]]
        error = result.get("error") or (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MigrationError(
            f"migrations ({direction}) as {self.run_as.user} failed: {error}",
            step="migrate",
            next_action=str(result.get("next_action") or "fix the migration and deploy again"),
        )

    def _run(
        self, actions: list[tuple[Migration, Callable[[Any], None]]], direction: str
    ) -> list[str]:
        """Runs under the lock; returns the labels it applied or reverted."""
        conn = self._connect()
        mark = self.database.placeholder
        current: Migration | None = None
        try:
            with self.database.transaction(conn):
                # Another run may have finished while we waited for the lock: re-read.
                done = {r[0] for r in conn.execute(f"SELECT version FROM {TABLE}").fetchall()}
                actions = [
                    (m, a) for m, a in actions if (m.version in done) == (direction == "down")
                ]
                for migration, action in actions:
                    current = migration
                    self.log(f"migrate {direction} {migration.label}")
                    action(conn)
                    if direction == "up":
                        conn.execute(
                            f"INSERT INTO {TABLE} (version, name, checksum, applied_at)"
                            f" VALUES ({mark}, {mark}, {mark}, {mark})",
                            (migration.version, migration.name, migration.checksum, now()),
                        )
                    else:
                        conn.execute(
                            f"DELETE FROM {TABLE} WHERE version = {mark}", (migration.version,)
                        )
        except MigrationError:
            raise
        except Exception as exc:
            label = current.label if current else "?"
            raise MigrationError(
                f"migration {label} ({direction}) failed: {type(exc).__name__}: {exc}; "
                "every migration of this run was rolled back",
                step="migrate",
                next_action=f"fix {label} in a new commit and deploy again",
            ) from exc
        finally:
            conn.close()
        return [m.label for m, _ in actions]
