"""Variables the server keeps per environment (`shiplane env set|unset|list`).

They are merged over the ``env`` table of shiplane.toml (a kept variable wins) for builds and
instances; a secret one reaches instances and one-off commands only, never a build, and its
value never leaves the server: listings show ``***`` and every text passes the env's Redactor.
Values are stored as given: state.db belongs to the server (mode 0600), like the env files it
already reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shiplane.state.db import StateDB, now


@dataclass(frozen=True)
class EnvVar:
    key: str
    value: str
    secret: bool


class EnvVarStore:
    """The env_vars table of one state.db. Callers validate keys first
    (``shiplane.operations.envvars``)."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def all(self, env: str) -> list[EnvVar]:
        rows = self.db.conn.execute(
            "SELECT key, value, secret FROM env_vars WHERE env = ? ORDER BY key", (env,)
        )
        return [EnvVar(str(r["key"]), str(r["value"]), bool(r["secret"])) for r in rows]

    def set(self, env: str, values: Mapping[str, str], *, secret: bool) -> None:
        """Set (or replace, secret flag included) every key of ``values`` in one transaction."""
        stamp = now()
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO env_vars (env, key, value, secret, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (env, key) DO UPDATE SET value = excluded.value,"
                " secret = excluded.secret, updated_at = excluded.updated_at",
                [(env, key, value, int(secret), stamp) for key, value in values.items()],
            )

    def unset(self, env: str, keys: Iterable[str]) -> list[str]:
        """Remove ``keys``; returns those that were set."""
        removed = []
        with self.db.transaction() as conn:
            for key in keys:
                cursor = conn.execute("DELETE FROM env_vars WHERE env = ? AND key = ?", (env, key))
                if cursor.rowcount:
                    removed.append(key)
        return removed

    def replace_all(self, env: str, variables: Iterable[EnvVar]) -> None:
        """Put back a snapshot taken with ``all`` (a change whose restart failed is undone)."""
        stamp = now()
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM env_vars WHERE env = ?", (env,))
            conn.executemany(
                "INSERT INTO env_vars (env, key, value, secret, updated_at) VALUES (?, ?, ?, ?, ?)",
                [(env, v.key, v.value, int(v.secret), stamp) for v in variables],
            )


def kept_layers(db: StateDB, env: str) -> tuple[dict[str, str], dict[str, str]]:
    """(plain variables, secrets) the server keeps for ``env``."""
    kept = EnvVarStore(db).all(env)
    return (
        {v.key: v.value for v in kept if not v.secret},
        {v.key: v.value for v in kept if v.secret},
    )
