"""One small interface per database engine: connect, lock, fingerprint, dump, load, copy."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

MIGRATIONS_TABLE = "shiplane_migrations"
SWAP_RECORD = "swap.json"  # in a load's workdir: what recovery needs to finish or undo it
EMPTY = "empty"


class Database(ABC):
    kind: str
    placeholder: str  # DB-API paramstyle marker: "?" (sqlite3) or "%s" (psycopg)
    archive_name: str  # file name of a backup archive

    def __init__(self, url: str) -> None:
        self.url = url  # resolved: may hold a password, never log it

    @abstractmethod
    def describe(self) -> str:
        """For messages: no password."""

    @abstractmethod
    def exists(self) -> bool: ...

    @abstractmethod
    def connect(self) -> Any:
        """A DB-API connection whose ``execute`` runs one statement (sqlite3 and psycopg)."""

    @abstractmethod
    def transaction(self, conn: Any) -> AbstractContextManager[None]:
        """A transaction around a migration run, with the migration lock held."""

    @contextmanager
    def advisory_lock(self, conn: Any) -> Iterator[None]:
        """The migration lock while another program (Alembic) migrates; engines that lock
        otherwise need nothing here."""
        yield

    @abstractmethod
    def schema_sql(self, ignore: Collection[str] = ()) -> list[str]:
        """The schema as sorted, normalised lines, without shiplane's own table (nor the
        tables in ``ignore``)."""

    @abstractmethod
    def rows(self, sql: str) -> list[list[Any]]:
        """A read-only query."""

    @abstractmethod
    def columns(self, table: str) -> set[str]: ...

    @abstractmethod
    def tables(self) -> set[str]:
        """The app's tables (the engine's internal ones left out)."""

    @abstractmethod
    def dump(self, archive: Path) -> None:
        """Write a consistent copy of the database to ``archive`` (created mode 0600)."""

    @abstractmethod
    def load(
        self,
        archive: Path,
        workdir: Path | None = None,
        before_swap: Callable[[Database], None] | None = None,
    ) -> None:
        """Replace the database's content with ``archive``'s, all or nothing: a kill leaves
        the old content or the new. Scratch files go in ``workdir`` (default: beside
        ``archive``). An engine that loads into a copy and swaps it in (PostgreSQL) calls
        ``before_swap`` with the old database once no other session can reach it; raising
        there keeps it. SQLite compares under ``exclusive`` already and does not call it."""

    def check_restore(self) -> None:
        """Raise (ConfigError, exit 64) when this database cannot be restored as it stands,
        before anything is written: the missing privilege and the fix."""
        return None

    def settle(self, record: dict[str, object]) -> str | None:
        """Finish what a killed ``load`` left, from the record it kept in its ``workdir``
        (``SWAP_RECORD``); returns what it did."""
        return None

    @abstractmethod
    def clear(
        self,
        workdir: Path | None = None,
        before_swap: Callable[[Database], None] | None = None,
    ) -> None:
        """Drop every table (restoring a backup taken before the database existed); as
        ``load``, with nothing to load."""

    @abstractmethod
    def integrity(self) -> str:
        """ "ok" or what is wrong."""

    @abstractmethod
    def scratch_copy(self) -> AbstractContextManager[Database]:
        """A throw-away copy, for rehearsals."""

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """No other writer commits while the block runs (a compare-then-restore). The base
        takes nothing: PostgreSQL excludes writers in ``load`` instead (new database, other
        sessions ended, compared again in ``before_swap``, renamed into place)."""
        yield

    def fingerprint(self, ignore: Collection[str] = ()) -> str:
        """The schema's hash; ``ignore`` leaves tables out (migration engines' bookkeeping)."""
        lines = self.schema_sql(ignore) if self.exists() else []
        if not lines:
            return EMPTY
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]

    def has_rows(self, table: str) -> bool:
        try:
            return bool(self.rows(f'SELECT 1 FROM "{table}" LIMIT 1'))
        except Exception:  # a table that does not exist yet has no rows
            return False
