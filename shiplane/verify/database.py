"""`sql` and `schema` checks, read-only against the environment's database."""

from __future__ import annotations

from typing import Any

from shiplane.config.checks import SchemaCheck, SqlCheck
from shiplane.databases import Database
from shiplane.migrate.registry import engine_for
from shiplane.verify.target import CheckFailed, Skipped, Target


def _database(target: Target) -> Database:
    if target.database is None or not target.database.exists():
        raise Skipped("the environment has no database")
    return target.database


def run_sql(check: SqlCheck, target: Target) -> str:
    try:
        rows = _database(target).rows(check.query)
    except Skipped:
        raise
    except Exception as exc:  # sqlite3.Error / psycopg.Error: report, not crash
        raise CheckFailed(f"query failed: {exc}") from exc
    single = len(rows) == 1 and len(rows[0]) == 1 and not isinstance(check.expect, list)
    got: Any = rows[0][0] if single else rows
    if got != check.expect:
        raise CheckFailed(f"query gave {got!r}, expected {check.expect!r}", {"rows": rows[:10]})
    return f"{len(rows)} row(s) as expected"


def run_schema(check: SchemaCheck, target: Target) -> str:
    database = _database(target)
    problems = []
    for table, wanted in check.tables.items():
        have = database.columns(table)
        if not have:
            problems.append(f"table {table} is missing")
            continue
        missing = [c for c in wanted if c not in have]
        if missing:
            problems.append(f"{table} lacks column(s) {', '.join(missing)}")
    if check.migrations_match and target.release_dir is not None and target.config is not None:
        plan = engine_for(target.config, database).status(target.release_dir).to_dict()
        if plan["pending"] or plan["unknown"] or plan["edited"]:
            problems.append(
                f"applied migrations differ from the release's: pending {plan['pending']}, "
                f"unknown {plan['unknown']}, edited {plan['edited']}"
            )
    if problems:
        raise CheckFailed("; ".join(problems))
    return f"{len(check.tables)} table(s) and migrations as expected"
