"""What a database holds, table by table, so an undo can tell whether a client wrote since.

A ``Snapshot`` is per table: the columns, the row count and a content checksum over those
columns. It is taken with every backup (the manifest keeps it) and compared with the live
database before anything is restored: a restore over a database that changed since its backup
would discard writes that clients saw succeed. The same module finds what a ``down`` would
drop (columns and tables that exist now and not after it) and whether those hold data.

The checksum is over the rows sorted by every column, so it is a fingerprint of the content
as a multiset and needs no primary key; it reads the whole table, which is what a restore
costs anyway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import Any, TypedDict

from shiplane.databases.base import MIGRATIONS_TABLE, Database


class TableSummary(TypedDict):
    columns: list[str]
    rows: int
    checksum: str


Snapshot = dict[str, TableSummary]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _digest(rows: list[list[Any]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(repr(tuple(row)).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:32]


def content(database: Database, table: str, columns: list[str]) -> tuple[int, str]:
    """(rows, checksum) of ``table`` restricted to ``columns``."""
    if not columns:
        rows = database.rows(f"SELECT count(*) FROM {_quote(table)}")
        return int(rows[0][0]), ""
    names = ", ".join(_quote(c) for c in columns)
    order = ", ".join(str(i + 1) for i in range(len(columns)))
    rows = database.rows(f"SELECT {names} FROM {_quote(table)} ORDER BY {order}")
    return len(rows), _digest(rows)


def snapshot(database: Database, ignore: Collection[str] = ()) -> Snapshot:
    """Every table but the migration engines' bookkeeping, summarised."""
    if not database.exists():
        return {}
    skip = {MIGRATIONS_TABLE, *ignore}
    found: Snapshot = {}
    for table in sorted(database.tables()):
        if table in skip:
            continue
        columns = sorted(database.columns(table))
        rows, checksum = content(database, table, columns)
        found[table] = {"columns": columns, "rows": rows, "checksum": checksum}
    return found


def written_since(before: Snapshot, database: Database, ignore: Collection[str] = ()) -> list[str]:
    """What changed in ``database`` since ``before`` was taken, one line per table: rows
    added, changed or deleted in a table the snapshot has (over its columns then), values in
    columns it had not, rows in tables it had not. [] means a restore discards nothing."""
    if not database.exists():
        return []
    skip = {MIGRATIONS_TABLE, *ignore}
    changed: list[str] = []
    for table in sorted(database.tables()):
        if table in skip:
            continue
        live = database.columns(table)
        old = before.get(table)
        if old is None:
            rows, _ = content(database, table, [])
            if rows:
                changed.append(f"{table} ({rows} rows, a table the backup does not have)")
            continue
        kept = [c for c in old["columns"] if c in live]
        rows, checksum = content(database, table, kept)
        # A column dropped since is not a write (the restore brings it back with its values);
        # the snapshot's checksum covers all its columns, so only the row count compares.
        if kept != old["columns"]:
            if rows != old["rows"]:
                changed.append(f"{table} ({old['rows']} rows in the backup, {rows} now)")
            continue
        if rows != old["rows"] or checksum != old["checksum"]:
            changed.append(f"{table} ({old['rows']} rows in the backup, {rows} now)")
            continue
        added = [c for c in live if c not in old["columns"]]
        filled = non_null(database, table, added)
        if filled:
            changed.append(f"{table} (values in {', '.join(filled)})")
    return changed


def non_null(database: Database, table: str, columns: Collection[str]) -> list[str]:
    """The ``columns`` of ``table`` that hold at least one non-null value, with a count."""
    found = []
    for column in sorted(columns):
        count = database.rows(
            f"SELECT count(*) FROM {_quote(table)} WHERE {_quote(column)} IS NOT NULL"
        )[0][0]
        if count:
            found.append(f"{table}.{column} ({count} values)")
    return found


def dropped_data(live: Database, after: Database, ignore: Collection[str] = ()) -> list[str]:
    """What ``after`` (a copy of ``live`` once a ``down`` ran on it) no longer holds: rows of
    tables it dropped, non-null values of columns it dropped. A column whose values reappear
    under another name in the same table was renamed, not dropped, and is left out."""
    skip = {MIGRATIONS_TABLE, *ignore}
    remaining = set(after.tables())
    lost: list[str] = []
    for table in sorted(set(live.tables()) - skip):
        if table not in remaining:
            rows, _ = content(live, table, [])
            if rows:
                lost.append(f"{table} ({rows} rows in a table the down drops)")
            continue
        now, then = live.columns(table), after.columns(table)
        gone, appeared = sorted(now - then), sorted(then - now)
        renamed = {
            column
            for column in gone
            if any(
                content(live, table, [column]) == content(after, table, [new]) for new in appeared
            )
        }
        lost.extend(non_null(live, table, [c for c in gone if c not in renamed]))
    return lost
