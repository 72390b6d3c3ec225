"""Schema fingerprints: a hash of the live schema, to see drift and to check round trips."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path
from typing import Any

from shiplane.migrate.runner import TABLE
from shiplane.state.db import StateDB, recorded_fingerprint

EMPTY = "empty"


def schema_sql(db_path: Path) -> list[str]:
    """The schema as normalised SQL, without SQLite internals and shiplane's own table."""
    if not db_path.exists():
        return []
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
            " AND name NOT LIKE 'sqlite_%' AND tbl_name != ?",
            (TABLE,),
        ).fetchall()
    finally:
        conn.close()
    return sorted(f"{kind} {name}: {_normalise(sql)}" for kind, name, sql in rows)


def _normalise(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def fingerprint(db_path: Path) -> str:
    statements = schema_sql(db_path)
    if not statements:
        return EMPTY
    return hashlib.sha256("\n".join(statements).encode()).hexdigest()[:16]


def schema_state(db: StateDB, env: str, db_path: Path) -> dict[str, Any]:
    """The live schema's fingerprint against the one shiplane last recorded."""
    current = fingerprint(db_path)
    recorded = recorded_fingerprint(db, env)
    return {
        "fingerprint": current,
        "recorded": recorded["fingerprint"] if recorded else None,
        "recorded_by": recorded["source"] if recorded else None,
        "drift": recorded is not None and recorded["fingerprint"] != current,
    }
