"""state.db: one SQLite file (WAL) holding deployments, their steps, releases, locks, the
hashes of client tokens (queries in shiplane/state/tokens.py) and the variables the server keeps
per environment (queries in shiplane/state/envvars.py)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shiplane.state import integrity
from shiplane.state.schema import ADDED_COLUMNS, SCHEMA


def _create(path: Path) -> None:
    """A new state.db appears whole: built aside, then linked into place. Another process
    never sees it empty (an empty state.db is a damaged one: ``integrity``)."""
    scratch = path.with_name(f".{path.name}.new-{os.getpid()}-{secrets.token_hex(3)}")
    os.close(os.open(scratch, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        conn = sqlite3.connect(scratch, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
        finally:
            conn.close()
        # Another process may have created it first: theirs is as good.
        with contextlib.suppress(FileExistsError):
            os.link(scratch, path)
    finally:
        for leftover in (scratch, Path(f"{scratch}-wal"), Path(f"{scratch}-shm")):
            leftover.unlink(missing_ok=True)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class StateDB:
    """A thin, typed wrapper; every write is its own short transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        integrity.check(path)  # damaged, empty or lost: never opened, never recreated
        if not path.exists():
            _create(path)
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA busy_timeout=30000")
            self.conn.executescript(SCHEMA)
            self._add_missing_columns()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            if getattr(exc, "sqlite_errorname", None) in integrity.CORRUPT:
                raise integrity.damaged(path, str(exc)) from exc
            raise

    def _add_missing_columns(self) -> None:
        """Columns added after a state.db was created (CREATE TABLE IF NOT EXISTS keeps it)."""
        for table, column, kind in ADDED_COLUMNS:
            present = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                try:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                except sqlite3.OperationalError as exc:
                    # Another process opening the same new file added it between our look
                    # and our ALTER (five clients deploying a new app at once).
                    if "duplicate column" not in str(exc):
                        raise

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # deployments -------------------------------------------------------------------------
    def create_deployment(self, **fields: Any) -> None:
        fields.setdefault("started_at", now())
        fields.setdefault("status", "running")
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        self.conn.execute(
            f"INSERT INTO deployments ({columns}) VALUES ({marks})", [*fields.values()]
        )

    def update_deployment(self, deployment_id: str, **fields: Any) -> None:
        if "error" in fields and isinstance(fields["error"], dict):
            fields["error"] = json.dumps(fields["error"])
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self.conn.execute(
            f"UPDATE deployments SET {assignments} WHERE id = ?", [*fields.values(), deployment_id]
        )

    def deployment(self, deployment_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT * FROM deployments WHERE id = ?", (deployment_id,)
        ).fetchone()
        return _deployment_dict(row) if row else None

    def deployments(self, env: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        if env is None:
            rows = self.conn.execute(
                "SELECT * FROM deployments ORDER BY started_at DESC, id DESC LIMIT ?", (limit,)
            )
        else:
            rows = self.conn.execute(
                "SELECT * FROM deployments WHERE env = ? ORDER BY started_at DESC, id DESC LIMIT ?",
                (env, limit),
            )
        return [_deployment_dict(r) for r in rows]

    def running_deployments(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM deployments WHERE status = 'running'")
        return [_deployment_dict(r) for r in rows]

    # steps -------------------------------------------------------------------------------
    def step_started(self, deployment_id: str, seq: int, name: str, data: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO steps (deployment_id, seq, name, status, started_at, data)"
            " VALUES (?, ?, ?, 'started', ?, ?)",
            (deployment_id, seq, name, now(), json.dumps(data)),
        )

    def step_finished(
        self,
        deployment_id: str,
        seq: int,
        status: str,
        duration_ms: int,
        data: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        if data is None:
            self.conn.execute(
                "UPDATE steps SET status=?, finished_at=?, duration_ms=?, error=?"
                " WHERE deployment_id=? AND seq=?",
                (status, now(), duration_ms, error, deployment_id, seq),
            )
        else:
            self.conn.execute(
                "UPDATE steps SET status=?, finished_at=?, duration_ms=?, error=?, data=?"
                " WHERE deployment_id=? AND seq=?",
                (status, now(), duration_ms, error, json.dumps(data), deployment_id, seq),
            )

    def set_step_status(self, deployment_id: str, seq: int, status: str) -> None:
        self.conn.execute(
            "UPDATE steps SET status=? WHERE deployment_id=? AND seq=?",
            (status, deployment_id, seq),
        )

    def steps(self, deployment_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT * FROM steps WHERE deployment_id = ? ORDER BY seq", (deployment_id,)
        )
        return [{**dict(r), "data": json.loads(r["data"])} for r in rows]

    # releases and what serves ------------------------------------------------------------
    def add_release(
        self, env: str, name: str, sha: str, path: str, deployment_id: str | None = None
    ) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO releases (env, name, sha, path, created_at, deployment_id)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (env, name, sha, path, now(), deployment_id),
        )

    def releases(self, env: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT * FROM releases WHERE env = ? ORDER BY created_at DESC, name DESC", (env,)
        )
        return [dict(r) for r in rows]

    def delete_release(self, env: str, name: str) -> None:
        self.conn.execute("DELETE FROM releases WHERE env = ? AND name = ?", (env, name))

    def env_state(self, env: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM env_state WHERE env = ?", (env,)).fetchone()
        return {**dict(row), "spec": json.loads(row["spec"])} if row else None

    def all_env_states(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM env_state ORDER BY env")
        return [{**dict(r), "spec": json.loads(r["spec"])} for r in rows]

    def set_serving_instance(self, env: str, instance_id: str) -> None:
        self.conn.execute("UPDATE env_state SET instance_id = ? WHERE env = ?", (instance_id, env))

    def set_env_state(self, env: str, **fields: Any) -> None:
        fields["spec"] = json.dumps(fields.get("spec", {}))
        fields["updated_at"] = now()
        columns = ", ".join(["env", *fields])
        marks = ", ".join("?" for _ in range(len(fields) + 1))
        self.conn.execute(
            f"INSERT OR REPLACE INTO env_state ({columns}) VALUES ({marks})",
            [env, *fields.values()],
        )

    def set_env_spec(self, env: str, spec: dict[str, Any]) -> None:
        """What serves stays; only its spec changes (``shiplane scale``: worker counts)."""
        self.conn.execute(
            "UPDATE env_state SET spec = ?, updated_at = ? WHERE env = ?",
            (json.dumps(spec), now(), env),
        )

    # promotions --------------------------------------------------------------------------
    def create_promotion(self, **fields: Any) -> None:
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        self.conn.execute(
            f"INSERT INTO promotions ({columns}) VALUES ({marks})", [*fields.values()]
        )

    def promotion(self, promotion_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM promotions WHERE id = ?", (promotion_id,)).fetchone()
        return dict(row) if row else None

    def set_promotion_deployment(self, promotion_id: str, deployment_id: str) -> None:
        self.conn.execute(
            "UPDATE promotions SET deployment_id = ? WHERE id = ?", (deployment_id, promotion_id)
        )

    def decide_promotion(self, promotion_id: str, status: str, actor: str | None) -> None:
        self.conn.execute(
            "UPDATE promotions SET status = ?, decided_by = COALESCE(?, decided_by),"
            " decided_at = COALESCE(decided_at, ?) WHERE id = ?",
            (status, actor, now(), promotion_id),
        )

    # verifications -----------------------------------------------------------------------
    def add_verification(self, **fields: Any) -> None:
        fields["results"] = json.dumps(fields["results"])
        fields["passed"] = int(fields["passed"])
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        self.conn.execute(
            f"INSERT INTO verifications ({columns}) VALUES ({marks})", [*fields.values()]
        )

    def verification(self, verification_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT * FROM verifications WHERE id = ?", (verification_id,)
        ).fetchone()
        return _verification_dict(row) if row else None

    def latest_verification(
        self, env: str, sha: str, *, passing_with: str | None = None
    ) -> dict[str, Any] | None:
        """The newest `shiplane verify` (through the front door) of ``sha`` in ``env``; with
        ``passing_with``, the newest passing full run with that checks hash."""
        query = "SELECT * FROM verifications WHERE env = ? AND sha = ? AND phase = 'serving'"
        params: list[Any] = [env, sha]
        if passing_with is not None:
            query += " AND config_hash = ? AND passed = 1 AND only_group IS NULL"
            params.append(passing_with)
        row = self.conn.execute(query + " ORDER BY created_epoch DESC LIMIT 1", params).fetchone()
        return _verification_dict(row) if row else None

    # locks -------------------------------------------------------------------------------
    def locks(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.conn.execute("SELECT * FROM locks")]


def record_fingerprint(db: StateDB, env: str, fingerprint: str, source: str) -> None:
    """The schema as shiplane left it (after a deploy, migrate, restore): drift is a change
    nobody recorded here."""
    db.conn.execute(
        "INSERT INTO fingerprints (env, fingerprint, source, recorded_at) VALUES (?, ?, ?, ?)",
        (env, fingerprint, source, now()),
    )


def recorded_fingerprint(db: StateDB, env: str) -> dict[str, Any] | None:
    row = db.conn.execute(
        "SELECT * FROM fingerprints WHERE env = ? ORDER BY recorded_at DESC, rowid DESC LIMIT 1",
        (env,),
    ).fetchone()
    return dict(row) if row else None


def _deployment_dict(row: sqlite3.Row) -> dict[str, Any]:
    result = dict(row)
    if result.get("error"):
        try:
            result["error"] = json.loads(result["error"])
        except ValueError:
            result["error"] = {"message": result["error"]}
    result["forced"] = bool(result.get("forced"))
    return result


def _verification_dict(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data["passed"] = bool(data["passed"])
    data["results"] = json.loads(data["results"])
    data["age_s"] = round(time.time() - data.pop("created_epoch"), 1)
    return data
