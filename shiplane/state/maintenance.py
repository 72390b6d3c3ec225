"""Maintenance mode per environment (the ``maintenance`` table of state.db).

Every ``shiplane maintenance ENV on|off`` is a row: who, when, on or off. The latest row of an
environment is its state, so the table is both the switch the server reads when it opens a
front door (after a deploy or a restart maintenance stays as it was) and the history
``shiplane history`` shows. A row that turns maintenance on also holds a random ``bypass``:
requests that carry it (the deploy's own smoke checks) pass the maintenance page, so a deploy
during maintenance is still checked through the front door. It is not a credential: it opens
nothing but what the public sees when maintenance is off. The table is created here, not in
the shared schema: only this store reads or writes it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from shiplane.frontdoor.replies import MAINTENANCE_BYPASS
from shiplane.state.db import StateDB, now

DDL = """
CREATE TABLE IF NOT EXISTS maintenance (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    env TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    bypass TEXT
)
"""
BYPASS_HEADER = MAINTENANCE_BYPASS.decode()


@dataclass(frozen=True)
class Maintenance:
    enabled: bool
    since: str | None = None  # when it was last turned on or off
    by: str | None = None
    bypass: str | None = None  # set while enabled

    def to_dict(self) -> dict[str, Any]:
        return {"on": self.enabled, "since": self.since, "by": self.by}


class MaintenanceStore:
    def __init__(self, db: StateDB) -> None:
        self.db = db
        db.conn.execute(DDL)

    def current(self, env: str) -> Maintenance:
        row = self.db.conn.execute(
            "SELECT enabled, actor, at, bypass FROM maintenance WHERE env = ?"
            " ORDER BY id DESC LIMIT 1",
            (env,),
        ).fetchone()
        if row is None:
            return Maintenance(enabled=False)
        return Maintenance(bool(row["enabled"]), row["at"], row["actor"], row["bypass"])

    def set(self, env: str, enabled: bool, actor: str) -> Maintenance:
        """Record the switch (also when it was already so: the history shows every call)."""
        bypass = secrets.token_urlsafe(24) if enabled else None
        current = self.current(env)
        if enabled and current.enabled and current.bypass:
            bypass = current.bypass  # a deploy under way keeps passing with the one it read
        self.db.conn.execute(
            "INSERT INTO maintenance (env, enabled, actor, at, bypass) VALUES (?, ?, ?, ?, ?)",
            (env, int(enabled), actor, now(), bypass),
        )
        return self.current(env)

    def history(self, env: str | None, limit: int) -> list[dict[str, Any]]:
        query = "SELECT env, enabled, actor, at FROM maintenance"
        params: list[Any] = []
        if env is not None:
            query += " WHERE env = ?"
            params.append(env)
        rows = self.db.conn.execute(query + " ORDER BY id DESC LIMIT ?", [*params, limit])
        return [
            {"env": r["env"], "on": bool(r["enabled"]), "by": r["actor"], "at": r["at"]}
            for r in rows
        ]


def bypass_headers(db: StateDB, env: str) -> dict[str, str]:
    """What a check through the front door sends to pass the maintenance page (none when off)."""
    current = MaintenanceStore(db).current(env)
    if not current.enabled or not current.bypass:
        return {}
    return {BYPASS_HEADER: current.bypass}
