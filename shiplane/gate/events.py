"""What the gate decided, for history: refusals, approvals, overrides and pin changes, with
who asked. A refusal writes nothing else, so this row is its only trace."""

from __future__ import annotations

import json
from typing import Any

from shiplane.state.db import StateDB, now


def record(
    db: StateDB, env: str | None, command: str, outcome: str, actor: str, **detail: Any
) -> None:
    db.conn.execute(
        "INSERT INTO gate_events (env, command, outcome, actor, detail, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (env, command, outcome, actor, json.dumps(detail, default=str), now()),
    )


def recent(db: StateDB, env: str | None, limit: int) -> list[dict[str, Any]]:
    if env is None:
        rows = db.conn.execute(
            "SELECT * FROM gate_events ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
    else:
        rows = db.conn.execute(
            "SELECT * FROM gate_events WHERE env = ? ORDER BY id DESC LIMIT ?", (env, limit)
        ).fetchall()
    return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]
