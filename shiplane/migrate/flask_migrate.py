"""The ``flask-migrate`` preset: ``flask db upgrade`` / ``downgrade REV`` / ``current``, run with
the app's own flask (``[app] python``), so env.py gets its app context from the app factory.

The revisions are Alembic files under ``database.migrations`` (Flask-Migrate's ``migrations``):
shiplane reads them to know what is pending and to lint them; the app's flask applies them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shiplane.config.models import DatabaseConfig
from shiplane.migrate.alembic import discover_revisions
from shiplane.migrate.base import Capabilities, MigrationPlan, MigrationSource
from shiplane.migrate.command import BASE, CommandEngine, Status

# `flask db current` prints "<rev> (head)" or "<rev>" (nothing when no revision is applied);
# log lines ("INFO  [alembic...]") go to stderr, but some setups send them to stdout.
CURRENT = re.compile(r"^([0-9A-Za-z_]+)(\s+\((head|effective head|mergepoint)\))*\s*$")


class FlaskMigrateEngine(CommandEngine):
    name = "flask-migrate"
    capabilities = Capabilities(revert=True, lint=True, rehearse=True)
    bookkeeping = ("alembic_version",)

    def can_revert(self) -> bool:
        return True

    @classmethod
    def discover(cls, settings: DatabaseConfig, release_dir: Path) -> list[MigrationSource]:
        return list(discover_revisions(release_dir, release_dir / settings.migrations / "versions"))

    def up_argv(self) -> list[str]:
        return ["flask", "db", "upgrade"]

    def status_argv(self) -> list[str]:
        return ["flask", "db", "current"]

    def parse_status(self, output: str, release_dir: Path) -> Status:
        current = [m.group(1) for line in output.splitlines() if (m := CURRENT.match(line.strip()))]
        head = current[-1] if current else None
        chain = [m.name for m in self.discover(self.settings, release_dir)]
        if head is None:
            return Status([], chain)
        if head not in chain:
            # Applied by a newer release (a rollback's target does not know it): the chain
            # up to it is unknown here, the current revision is what matters.
            return Status([head], None)
        upto = chain.index(head) + 1
        return Status(chain[:upto], chain[upto:])

    def plan(self, migrations: Sequence[MigrationSource]) -> MigrationPlan:
        plan = super().plan(migrations)
        # The revision files themselves, so the risk lint reads their upgrade().
        by_name = {m.name: m for m in migrations}
        plan.pending = [by_name.get(m.name, m) for m in plan.pending]
        return plan

    def revert(self, release_dir: Path, target: Any) -> None:
        self.run(["flask", "db", "downgrade", str(target or BASE)], release_dir, "downgrade")
