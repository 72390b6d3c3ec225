"""Commits a rollback took out of an environment (the ``rolled_back`` table of state.db).

A rollback records every commit it took out (``git rev-list target..rolled_back``); a later
deploy or promotion into that environment whose commit has one of them among its ancestors is
refused until the commit is reverted (a ``git revert`` commit clears it) or the deploy says
``--include-rolled-back`` (which clears it, recorded with the deployment that did). The table
is created here, not in the shared schema: only this store reads or writes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shiplane.state.db import StateDB, now

DDL = """
CREATE TABLE IF NOT EXISTS rolled_back (
    env TEXT NOT NULL,
    sha TEXT NOT NULL,
    rolled_back_by TEXT NOT NULL,
    at TEXT NOT NULL,
    cleared_by TEXT,
    cleared_at TEXT,
    cleared_how TEXT,
    PRIMARY KEY (env, sha)
)
"""


@dataclass(frozen=True)
class RolledBack:
    sha: str
    rolled_back_by: str
    at: str


class RolledBackStore:
    def __init__(self, db: StateDB) -> None:
        self.db = db
        db.conn.execute(DDL)

    def add(self, env: str, shas: Iterable[str], deployment_id: str) -> None:
        """Record ``shas`` as rolled back from ``env`` (again, if an earlier deploy cleared
        them: they are out once more)."""
        stamp = now()
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO rolled_back (env, sha, rolled_back_by, at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (env, sha) DO UPDATE SET rolled_back_by = excluded.rolled_back_by,"
                " at = excluded.at, cleared_by = NULL, cleared_at = NULL, cleared_how = NULL",
                [(env, sha, deployment_id, stamp) for sha in shas],
            )

    def active(self, env: str) -> list[RolledBack]:
        rows = self.db.conn.execute(
            "SELECT sha, rolled_back_by, at FROM rolled_back"
            " WHERE env = ? AND cleared_at IS NULL ORDER BY at, sha",
            (env,),
        )
        return [RolledBack(str(r["sha"]), str(r["rolled_back_by"]), str(r["at"])) for r in rows]

    def clear(self, env: str, shas: Iterable[str], by: str, how: str) -> None:
        """They may come back: ``by`` (a deployment id) brought them back on purpose, or
        serves them again (a rollback to a release that has them)."""
        stamp = now()
        with self.db.transaction() as conn:
            conn.executemany(
                "UPDATE rolled_back SET cleared_by = ?, cleared_at = ?, cleared_how = ?"
                " WHERE env = ? AND sha = ? AND cleared_at IS NULL",
                [(by, stamp, how, env, sha) for sha in shas],
            )

    def unclear(self, env: str, by: str) -> int:
        """Undo of ``clear`` by a deployment that was undone: they are out again."""
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE rolled_back SET cleared_by = NULL, cleared_at = NULL, cleared_how = NULL"
                " WHERE env = ? AND cleared_by = ?",
                (env, by),
            )
        return cursor.rowcount
