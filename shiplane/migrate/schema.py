"""Schema drift: the live schema's fingerprint against the one shiplane last recorded."""

from __future__ import annotations

from typing import Any

from shiplane.databases import Database
from shiplane.state.db import StateDB, recorded_fingerprint


def schema_state(db: StateDB, env: str, database: Database) -> dict[str, Any]:
    current = database.fingerprint()
    recorded = recorded_fingerprint(db, env)
    return {
        "fingerprint": current,
        "recorded": recorded["fingerprint"] if recorded else None,
        "recorded_by": recorded["source"] if recorded else None,
        "drift": recorded is not None and recorded["fingerprint"] != current,
    }
