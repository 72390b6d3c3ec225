"""`shiplane logs --env ENV [--cursor C] [--lines N]`: the app's own output (what its
instances printed), read across the log's rotations (``shiplane.logs_read``)."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

from shiplane.errors import ConfigError
from shiplane.logs_read import Cursor, read_since, tail
from shiplane.operations.session import Session
from shiplane.results import Result

MAX_LINES = 10_000


def env_logs(session: Session, env: str, cursor: str | None = None, lines: int = 100) -> Result:
    """Without ``cursor``: the last ``lines`` lines of what serves. With one: what was written
    since, up to a bounded amount (ask again with the answer's cursor for the rest)."""
    if not 0 <= lines <= MAX_LINES:
        raise ConfigError(
            f"--lines {lines}: must be between 0 and {MAX_LINES}",
            step="usage",
            next_action="e.g. --lines 100",
        )
    if env not in session.loaded.config.environments:
        _unknown(session, env)
    state = session.db.env_state(env)
    if state is None or not state.get("release"):
        raise ConfigError(
            f"nothing has been deployed to {env!r} yet: no app output to show",
            step="usage",
            next_action=f"shiplane deploy {env}",
        )
    serving = str(state["release"])
    logs_dir = session.layout.logs(env)

    def log_of(release: str) -> Path:
        # A cursor names a release; only a name of the releases' kind reaches a path.
        if "/" in release or release.startswith("."):
            raise ConfigError(
                f"cursor names no release of {env}: {release[:80]!r}",
                step="usage",
                next_action=f"run `shiplane logs --env {env}` without --cursor",
            )
        return logs_dir / f"app-{release}.log"

    if cursor is None:
        chunk = tail(serving, log_of(serving), lines)
    else:
        chunk = read_since(log_of, Cursor.decode(cursor), serving)
    result = Result(command="logs", env=env)
    result.data.update(
        release=serving,
        log_path=str(log_of(serving)),
        log=chunk.text,
        cursor=chunk.cursor.encode(),
        # Rotated away before this reader got to it ([logs] keep is too small for the rate).
        lost=chunk.lost,
        next_action=f"shiplane logs --env {env} --cursor {chunk.cursor.encode()}",
    )
    if chunk.lost:
        result.warnings.append(
            "part of the log was rotated away before it was read: raise [logs] keep or "
            "max_bytes, or follow more often"
        )
    return result


def _unknown(session: Session, env: str) -> NoReturn:
    known = ", ".join(session.loaded.config.environments)
    raise ConfigError(
        f"no environment {env!r} in shiplane.toml (known: {known})",
        step="usage",
        next_action=f"use one of: {known}",
    )
