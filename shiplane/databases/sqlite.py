"""SQLite: a file; online backup API for dumps, loads and copies."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shiplane.databases.base import MIGRATIONS_TABLE, Database
from shiplane.databases.scratch import scratch_dir
from shiplane.faultpoints import sigkill_point


def _private(path: Path) -> int:
    return os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)


class SqliteDatabase(Database):
    kind = "sqlite"
    placeholder = "?"
    archive_name = "database.db.gz"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.path = Path(url.removeprefix("sqlite:///"))
        self._held: sqlite3.Connection | None = None  # the write lock of ``exclusive``

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """One connection holds ``BEGIN IMMEDIATE`` for the block: readers go on (they compare
        and back up), the app's writers wait on their busy timeout, and ``load`` writes through
        this connection, so the restore commits as one transaction or not at all."""
        conn = self.connect()
        conn.execute("BEGIN IMMEDIATE")
        self._held = conn
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            self._held = None
            conn.close()

    def describe(self) -> str:
        return f"sqlite {self.path}"

    def exists(self) -> bool:
        return self.path.exists()

    def connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextmanager
    def transaction(self, conn: Any) -> Iterator[None]:
        # IMMEDIATE takes the write lock now: it is the migration lock, too.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _read(self) -> sqlite3.Connection:
        # A read-only connection cannot roll back a hot journal a killed writer left, and
        # fails ("readonly database"): roll it back first.
        if self._journal.is_file() and self._journal.stat().st_size:
            self.settle({})
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)

    @property
    def _journal(self) -> Path:
        return self.path.with_name(self.path.name + "-journal")

    def settle(self, record: dict[str, object]) -> str | None:
        """Roll back what a writer killed mid-transaction left in the journal: the first
        read-write connection that reads does it (a live writer's journal is not hot: it
        holds the lock, and this read waits for it)."""
        if not self.path.exists() or not self._journal.is_file():
            return None
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
        return f"rolled back the journal of {self.path.name}"

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A read connection; inside ``exclusive`` the held one, so the checks after a restore
        see what it wrote (a new connection would see the database before it, uncommitted)."""
        if self._held is not None:
            yield self._held
            return
        conn = self._read()
        try:
            yield conn
        finally:
            conn.close()

    def schema_sql(self, ignore: Collection[str] = ()) -> list[str]:
        skip = [MIGRATIONS_TABLE, *ignore]
        marks = ", ".join("?" for _ in skip)
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
                f" AND name NOT LIKE 'sqlite_%' AND tbl_name NOT IN ({marks})",
                skip,
            ).fetchall()
        return sorted(f"{kind} {name}: {_normalise(sql)}" for kind, name, sql in rows)

    def rows(self, sql: str) -> list[list[Any]]:
        with self._reading() as conn:
            return [list(r) for r in conn.execute(sql).fetchall()]

    def columns(self, table: str) -> set[str]:
        if not self.exists():
            return set()
        quoted = '"' + table.replace('"', '""') + '"'
        return {row[1] for row in self.rows(f"PRAGMA table_info({quoted})")}

    def tables(self) -> set[str]:
        if not self.exists():
            return set()
        rows = self.rows(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        return {str(r[0]) for r in rows}

    def dump(self, archive: Path) -> None:
        with scratch_dir(archive.parent) as scratch:
            copy = scratch / "copy.db"
            self._copy_to(copy)
            with (
                copy.open("rb") as raw,
                os.fdopen(_private(archive), "wb") as out,
                # Level 1: a pre-deploy backup sits on the deploy's critical path; level 6 took
                # 4x as long for a few percent less (bench/backup.py).
                gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as gz,
            ):
                shutil.copyfileobj(raw, gz, 1 << 20)

    def load(
        self,
        archive: Path,
        workdir: Path | None = None,
        before_swap: Callable[[Database], None] | None = None,
    ) -> None:
        """Inside ``exclusive`` (every checked restore), through its connection: one
        transaction, so a kill leaves a hot journal that the next opener rolls back (``settle``
        and ``_read`` make sure of it). Never by renaming a file over the database: the app's
        open connections would go on writing to the old one, and those writes would vanish."""
        with scratch_dir(workdir or archive.parent) as scratch:
            copy = scratch / "restore.db"
            with gzip.open(archive, "rb") as gz, copy.open("wb") as out:
                shutil.copyfileobj(gz, out, 1 << 20)
            source = sqlite3.connect(copy)
            try:
                check = source.execute("PRAGMA integrity_check").fetchone()[0]
                if check != "ok":
                    raise sqlite3.DatabaseError(f"the backup fails integrity_check: {check}")
                if self._held is not None:
                    _replace_in_transaction(source, self._held)
                    return
                self.path.parent.mkdir(parents=True, exist_ok=True)
                dest = sqlite3.connect(self.path, timeout=30)
                try:
                    source.backup(dest)  # online and atomic for the app's connections
                finally:
                    dest.close()
            finally:
                source.close()

    def clear(
        self,
        workdir: Path | None = None,
        before_swap: Callable[[Database], None] | None = None,
    ) -> None:
        if self._held is not None:  # inside ``exclusive``: through its connection, or it waits
            nothing = sqlite3.connect(":memory:")
            try:
                _replace_in_transaction(nothing, self._held)
            finally:
                nothing.close()
            return
        conn = self.connect()
        try:
            tables = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
            conn.execute("PRAGMA foreign_keys = OFF")
            for (name,) in tables:
                conn.execute('DROP TABLE IF EXISTS "' + name.replace('"', '""') + '"')
        finally:
            conn.close()

    def integrity(self) -> str:
        return str(self.rows("PRAGMA integrity_check")[0][0])

    def _copy_to(self, target: Path) -> None:
        dest = sqlite3.connect(target)
        try:
            if self.exists():
                source = self._read()
                try:
                    source.backup(dest)
                finally:
                    source.close()
        finally:
            dest.close()

    @contextmanager
    def scratch_copy(self) -> Iterator[Database]:
        # Beside the database, in the environment's shared dir: in enforced mode the
        # environment's user runs the rehearsal's migrations, and that dir is open to it.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(
            prefix=".shiplane-rehearsal-", dir=self.path.parent
        ) as scratch:
            copy = Path(scratch) / "rehearsal.db"
            self._copy_to(copy)
            # Group bits are the ACL mask: without them the shared dir's default ACL entry
            # for the environment's user counts for nothing (mkdtemp makes 0700, SQLite 0644).
            os.chmod(scratch, 0o2770)
            copy.chmod(0o660)
            yield SqliteDatabase(f"sqlite:///{copy}")


def _replace_in_transaction(source: sqlite3.Connection, dest: sqlite3.Connection) -> None:
    """Make ``dest`` (inside its open transaction) hold what ``source`` holds: drop every
    object, create the source's tables, copy their rows, then its indexes, views, triggers."""

    def objects(conn: sqlite3.Connection) -> list[tuple[str, str, str | None]]:
        return [
            (str(kind), str(name), sql)
            for kind, name, sql in conn.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
                " ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END"
            )
        ]

    dest.execute("PRAGMA defer_foreign_keys = ON")
    for kind, name, _ in reversed(objects(dest)):
        if kind in ("table", "view", "trigger"):
            dest.execute(f"DROP {kind.upper()} IF EXISTS {_quoted(name)}")
    created = objects(source)
    for kind, name, sql in created:
        if kind == "table" and sql:
            dest.execute(sql)
            marks = None
            for row in source.execute(f"SELECT * FROM {_quoted(name)}"):
                marks = marks or ", ".join("?" for _ in row)
                dest.execute(f"INSERT INTO {_quoted(name)} VALUES ({marks})", row)
    sigkill_point("restore-load")  # tests: killed mid-transaction, a hot journal left
    has_sequence = source.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
    ).fetchone()
    if has_sequence:
        dest.execute("DELETE FROM sqlite_sequence")
        for name, seq in source.execute("SELECT name, seq FROM sqlite_sequence"):
            dest.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, seq))
    for kind, _name, sql in created:
        if kind != "table" and sql:
            dest.execute(sql)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _normalise(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()
