"""The per-environment deploy lock: exactly one operation per environment, stale-lock safe."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from shiplane.errors import LockHeldError
from shiplane.state import running
from shiplane.state.db import StateDB, now
from shiplane.state.procs import process_start


@dataclass(frozen=True)
class LockTaken:
    env: str
    deployment_id: str
    stale_holder: str | None  # a dead holder's deployment, which the caller must recover


def holder(db: StateDB, env: str) -> dict[str, Any] | None:
    row = db.conn.execute("SELECT * FROM locks WHERE env = ?", (env,)).fetchone()
    return dict(row) if row else None


def holder_alive(row: dict[str, Any]) -> bool:
    if row["host"] != socket.gethostname():
        return True
    return running.owner_alive(row["deployment_id"], row["pid"], row["pid_start"])


def acquire(db: StateDB, env: str, deployment_id: str) -> LockTaken:
    pid = os.getpid()
    with db.transaction() as conn:
        row = conn.execute("SELECT * FROM locks WHERE env = ?", (env,)).fetchone()
        stale = None
        if row is not None:
            current = dict(row)
            if holder_alive(current):
                raise LockHeldError(
                    f"environment {env!r} is locked by deployment {current['deployment_id']} "
                    f"(pid {current['pid']} on {current['host']}, since {current['acquired_at']})",
                    step="lock",
                    next_action=f"wait for {current['deployment_id']} to finish, then retry",
                )
            stale = str(current["deployment_id"])
        conn.execute(
            "INSERT OR REPLACE INTO locks (env, deployment_id, pid, pid_start, host, acquired_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (env, deployment_id, pid, process_start(pid), socket.gethostname(), now()),
        )
    running.claim(deployment_id)
    return LockTaken(env=env, deployment_id=deployment_id, stale_holder=stale)


def release(db: StateDB, env: str, deployment_id: str) -> None:
    db.conn.execute("DELETE FROM locks WHERE env = ? AND deployment_id = ?", (env, deployment_id))
