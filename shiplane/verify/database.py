"""`sql` and `schema` checks, read-only against the environment's database."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from shiplane.migrate import SqliteMigrator, discover
from shiplane.verify.models import SchemaCheck, SqlCheck
from shiplane.verify.target import CheckFailed, Skipped, Target


def _read_only(db_path: Path | None) -> sqlite3.Connection:
    if db_path is None or not db_path.exists():
        raise Skipped("the environment has no database")
    return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)


def run_sql(check: SqlCheck, target: Target) -> str:
    conn = _read_only(target.db_path)
    try:
        rows = [list(r) for r in conn.execute(check.query).fetchall()]
    except sqlite3.Error as exc:
        raise CheckFailed(f"query failed: {exc}") from exc
    finally:
        conn.close()
    got: Any = (
        rows[0][0]
        if len(rows) == 1 and len(rows[0]) == 1 and not isinstance(check.expect, list)
        else rows
    )
    if got != check.expect:
        raise CheckFailed(f"query gave {got!r}, expected {check.expect!r}", {"rows": rows[:10]})
    return f"{len(rows)} row(s) as expected"


def run_schema(check: SchemaCheck, target: Target) -> str:
    conn = _read_only(target.db_path)
    try:
        problems = []
        for table, wanted in check.tables.items():
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({_quote(table)})")}
            if not have:
                problems.append(f"table {table} is missing")
                continue
            missing = [c for c in wanted if c not in have]
            if missing:
                problems.append(f"{table} lacks column(s) {', '.join(missing)}")
    finally:
        conn.close()
    if check.migrations_match and target.release_dir is not None and target.db_path is not None:
        files = discover(target.release_dir / target.migrations)
        plan = SqliteMigrator(target.db_path).plan(files).to_dict()
        if plan["pending"] or plan["unknown"] or plan["edited"]:
            problems.append(
                f"applied migrations differ from the release's: pending {plan['pending']}, "
                f"unknown {plan['unknown']}, edited {plan['edited']}"
            )
    if problems:
        raise CheckFailed("; ".join(problems))
    return f"{len(check.tables)} table(s) and migrations as expected"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
