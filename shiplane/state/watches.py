"""The watch after each switch, as state.db keeps it: one row per watched deployment.

States: ``running`` until ``ends_epoch``; then ``clean`` (nothing went wrong: the deploy may
count as promotion evidence), ``rolled_back`` (the server put the previous release back,
``rollback_id`` names that rollback), ``alert`` (it went bad, but going back would need a
destructive schema change: it keeps serving and a person decides), ``superseded`` (another
switch came first) or ``interrupted`` (the server stopped during the watch; a restarted
server does not resume it: what it counted died with it).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from shiplane.state.db import StateDB, now

ENDED = ("clean", "rolled_back", "alert", "superseded", "interrupted")
# How long the watch's rollback waits for a deploy lock another operation holds.
LOCK_PATIENCE = 120.0


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


class WatchStore:
    def __init__(self, db: StateDB) -> None:
        self.db = db

    def begin(self, deployment_id: str, env: str, instance_id: str, seconds: float) -> None:
        self.db.conn.execute(
            "INSERT OR REPLACE INTO watches (deployment_id, env, instance_id, state,"
            " started_at, ends_epoch) VALUES (?, ?, ?, 'running', ?, ?)",
            (deployment_id, env, instance_id, now(), time.time() + seconds),
        )

    def end(
        self,
        deployment_id: str,
        state: str,
        reason: str | None = None,
        rollback_id: str | None = None,
        **detail: Any,
    ) -> None:
        """Close a running watch (a watch that ended already keeps its verdict)."""
        assert state in ENDED, state
        self.db.conn.execute(
            "UPDATE watches SET state = ?, reason = ?, rollback_id = ?, ended_at = ?,"
            " ended_epoch = ?, detail = ? WHERE deployment_id = ? AND state = 'running'",
            (
                state,
                reason,
                rollback_id,
                now(),
                time.time(),
                json.dumps(detail, default=str),
                deployment_id,
            ),
        )

    def interrupt_running(self) -> list[str]:
        """End every running watch as interrupted (a server starting again); their ids."""
        ids = [
            str(r["deployment_id"])
            for r in self.db.conn.execute(
                "SELECT deployment_id FROM watches WHERE state = 'running'"
            )
        ]
        for deployment_id in ids:
            self.end(deployment_id, "interrupted", "the server stopped during the watch")
        return ids

    def get(self, deployment_id: str) -> dict[str, Any] | None:
        row = self.db.conn.execute(
            "SELECT * FROM watches WHERE deployment_id = ?", (deployment_id,)
        ).fetchone()
        return _described(dict(row)) if row else None

    def latest(self, env: str) -> dict[str, Any] | None:
        row = self.db.conn.execute(
            "SELECT * FROM watches WHERE env = ? ORDER BY started_at DESC, rowid DESC LIMIT 1",
            (env,),
        ).fetchone()
        return _described(dict(row)) if row else None


def _described(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the JSON shows it: times as ISO 8601, the detail as an object."""
    return {
        "deployment_id": row["deployment_id"],
        "env": row["env"],
        "instance_id": row["instance_id"],
        "state": row["state"],
        "reason": row["reason"],
        "started_at": row["started_at"],
        "ends_at": iso(row["ends_epoch"]),
        "ended_at": row["ended_at"],
        "ended_epoch": row["ended_epoch"],
        "rollback_id": row["rollback_id"],
        "detail": json.loads(row["detail"] or "{}"),
    }
