"""Alembic adapter (``database.engine = "alembic"``): the app's own Alembic environment runs
``upgrade``/``downgrade`` in the release dir with DATABASE_URL set; shiplane adds what Alembic
lacks: checksums of applied revision files (an edited applied revision is refused), the
PostgreSQL advisory lock around the run, and the same plan/lint/rehearse interface."""

from __future__ import annotations

import ast
import configparser
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shiplane.config.models import DatabaseConfig
from shiplane.errors import MigrationError
from shiplane.migrate.base import (
    AppliedMigration,
    Capabilities,
    MigrationEngine,
    MigrationPlan,
    MigrationSource,
    own,
)
from shiplane.migrate.files import syntax_error
from shiplane.migrate.tools import run_tool
from shiplane.state.db import now

CHECKSUMS = "shiplane_alembic_checksums"
REVISION = re.compile(r"^revision\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", re.M)
DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(None|['\"]([^'\"]+)['\"])", re.M)


@dataclass(frozen=True)
class Revision:
    version: int  # position in the chain, 1 = first
    name: str  # the Alembic revision id
    path: Path
    checksum: str
    down: str | None
    root: Path  # the release dir, where alembic.ini is

    @property
    def label(self) -> str:
        return self.name

    @property
    def annotations(self) -> set[str]:
        text = self.path.read_text()
        found = set()
        if re.search(r"^EXPAND_CONTRACT\s*=\s*True", text, re.M):
            found.add("expand-contract")
        if re.search(r"^IRREVERSIBLE\s*=\s*True", text, re.M):
            found.add("irreversible")
        return found

    @property
    def irreversible(self) -> bool:
        return "irreversible" in self.annotations

    def _function(self, name: str) -> str:
        text = self.path.read_text()
        try:
            tree = ast.parse(text)
        except SyntaxError as exc:
            raise syntax_error(self.path, exc) from None
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return ast.get_source_segment(text, node) or ""
        return ""

    def up_source(self) -> str:
        return self._function("upgrade")

    def has_down(self) -> bool:
        body = self._function("downgrade")
        return bool(body) and not re.search(r"^\s*(pass|\.\.\.)\s*$", body.split(":", 1)[1], re.M)

    def statements(self, direction: str) -> list[str]:
        # upgrade() is Python calling op.*: its SQL exists only once Alembic runs it.
        return []


def discover_revisions(root: Path, versions_dir: Path) -> list[Revision]:
    """The revision files as a linear chain from base to head."""
    found: dict[str | None, tuple[str, Path, str]] = {}
    if not versions_dir.is_dir():
        return []
    for path in sorted(versions_dir.glob("*.py")):
        text = path.read_text()
        revision = REVISION.search(text)
        down = DOWN_REVISION.search(text)
        if revision is None or down is None:
            continue
        parent = down.group(2) if down.group(1) != "None" else None
        if parent in found:
            raise MigrationError(
                f"{path.name} and {found[parent][1].name} both follow {parent}: branched history",
                step="migrate",
                next_action="merge the Alembic heads (alembic merge heads)",
            )
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        found[parent] = (revision.group(1), path, checksum)
    chain: list[Revision] = []
    follows: str | None = None
    while follows in found:
        revision_id, path, checksum = found[follows]
        chain.append(Revision(len(chain) + 1, revision_id, path, checksum, follows, root))
        follows = revision_id
    return chain


def script_location(settings: DatabaseConfig, release_dir: Path) -> Path:
    """Where the revisions are: alembic.ini's ``script_location`` (``%(here)s`` is the ini's
    own dir), else ``database.migrations``."""
    ini = release_dir / settings.alembic_ini
    if ini.is_file():
        parser = configparser.ConfigParser(defaults={"here": str(ini.parent)})
        try:
            parser.read(ini, encoding="utf-8")
            location = parser.get("alembic", "script_location", fallback=None)
        except configparser.Error as exc:
            raise MigrationError(
                f"{settings.alembic_ini}: not a readable ini file ({exc})",
                step="migrate",
                next_action=f"fix {settings.alembic_ini}",
            ) from None
        if location:
            # "package:dir" names a package resource; shiplane reads files, so only a path.
            path = Path(location)
            return path if path.is_absolute() else ini.parent / path
    return release_dir / settings.migrations


class AlembicMigrator(MigrationEngine):
    name = "alembic"
    capabilities = Capabilities(revert=True, lint=True, rehearse=True)
    bookkeeping = ("alembic_version", CHECKSUMS)

    @classmethod
    def discover(cls, settings: DatabaseConfig, release_dir: Path) -> list[MigrationSource]:
        versions = script_location(settings, release_dir) / "versions"
        return list(discover_revisions(release_dir, versions))

    def _current(self) -> str | None:
        if not self.database.exists() or "version_num" not in self.database.columns(
            "alembic_version"
        ):
            return None
        rows = self.database.rows("SELECT version_num FROM alembic_version")
        return str(rows[0][0]) if rows else None

    def _recorded(self) -> dict[str, tuple[str, str]]:
        if CHECKSUMS not in self._tables():
            return {}
        rows = self.database.rows(f"SELECT revision, checksum, applied_at FROM {CHECKSUMS}")
        return {r[0]: (r[1], r[2]) for r in rows}

    def _tables(self) -> set[str]:
        return {CHECKSUMS} if self.database.columns(CHECKSUMS) else set()

    def applied(self, migrations: Sequence[MigrationSource] = ()) -> list[AppliedMigration]:
        current = self._current()
        recorded = self._recorded()
        chain = list(migrations)
        names = [r.name for r in chain]
        upto = names.index(current) + 1 if current in names else 0
        return [
            {
                "version": r.version,
                "name": r.name,
                "label": r.label,
                "checksum": recorded.get(r.name, (r.checksum, ""))[0],
                "applied_at": recorded.get(r.name, ("", ""))[1],
            }
            for r in chain[:upto]
        ]

    def plan(self, migrations: Sequence[MigrationSource]) -> MigrationPlan:
        revisions = list(migrations)
        current = self._current()
        applied = self.applied(revisions)
        done = {a["name"] for a in applied}
        edited = [
            r.label
            for r in revisions
            if r.name in done and self._recorded().get(r.name, (r.checksum,))[0] != r.checksum
        ]
        unknown = (
            []
            if current is None or current in {r.name for r in revisions}
            else [
                AppliedMigration(version=0, name=current, label=current, checksum="", applied_at="")
            ]
        )
        return MigrationPlan(
            applied=applied,
            pending=[r for r in revisions if r.name not in done],
            edited=edited,
            unknown=unknown,
        )

    def check_not_edited(self, plan: MigrationPlan) -> None:
        if plan.edited:
            raise MigrationError(
                f"applied Alembic revision(s) {', '.join(plan.edited)} were edited after they ran",
                step="migrate",
                next_action="restore the original file(s) and add a new revision for the change",
            )

    def up(self, migrations: Sequence[MigrationSource], to: int | None = None) -> list[str]:
        revisions = own(migrations, Revision, self.name)
        plan = self.plan(revisions)
        self.check_not_edited(plan)
        pending = [r for r in plan.pending if to is None or r.version <= to]
        if not pending:
            return []
        self._alembic(revisions[0].root, "upgrade", pending[-1].name)
        self._record(revisions, pending[-1].name)
        return [r.label for r in pending]

    def down(self, migrations: Sequence[MigrationSource], to: int) -> list[str]:
        revisions = own(migrations, Revision, self.name)
        applied = self.applied(revisions)
        targets = [
            r for r in revisions if r.version > to and r.name in {a["name"] for a in applied}
        ]
        if not targets:
            return []
        one_way = [r.label for r in targets if r.irreversible or not r.has_down()]
        if one_way:
            raise MigrationError(
                f"{', '.join(one_way)} cannot be downgraded (irreversible or no downgrade())",
                step="migrate",
                next_action="roll back with --restore-db to restore the pre-deploy backup",
            )
        target = revisions[to - 1].name if to > 0 else "base"
        self._alembic(revisions[0].root, "downgrade", target)
        self._record(revisions, None if to == 0 else target)
        return [r.label for r in reversed(targets)]

    def _alembic(self, root: Path, command: str, revision: str) -> None:
        # The app's interpreter ([app] python) when it has one: Alembic and the app's models
        # are installed there, not beside shiplane.
        python = self.tools.interpreter(root)
        argv = [python, "-m", "alembic", "-c", self.settings.alembic_ini, command, revision]
        run_tool(
            self.database,
            self.tools,
            argv,
            cwd=root,
            run_as=self.run_as,
            log=self.log,
            what=f"alembic {command} {revision}",
        )

    def _record(self, revisions: list[Revision], head: str | None) -> None:
        """Checksums of every revision up to ``head``, for the edited-after-apply check."""
        names = [r.name for r in revisions]
        upto = names.index(head) + 1 if head in names else 0
        mark = self.database.placeholder
        conn = self.database.connect()
        try:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {CHECKSUMS} (revision TEXT PRIMARY KEY,"
                " checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            recorded = self._recorded()
            conn.execute(f"DELETE FROM {CHECKSUMS}")
            for revision in revisions[:upto]:
                checksum, applied_at = recorded.get(revision.name, (revision.checksum, now()))
                conn.execute(
                    f"INSERT INTO {CHECKSUMS} (revision, checksum, applied_at)"
                    f" VALUES ({mark}, {mark}, {mark})",
                    (revision.name, checksum, applied_at or now()),
                )
        finally:
            conn.close()
