"""What an environment costs the host while it runs: memory (serving + standby processes, from
/proc) and, on PostgreSQL, the connection budget its instances draw on (a standby's pool
counts against ``max_connections`` as much as the serving one's)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from shiplane.databases import resolve_url
from shiplane.server.standby import Standby
from shiplane.targets.processes import ManagedProcess

PAGE = os.sysconf("SC_PAGE_SIZE")
BUDGET_TIMEOUT = 2  # seconds: status must not hang on a database that does not answer
# `stat` fields after the command name: state is the 3rd field of the line, pgrp the 5th,
# rss (pages) the 24th.
PGRP, RSS = 5 - 3, 24 - 3


def group_rss(pgid: int) -> int:
    """Resident bytes of every process in group ``pgid`` (an instance and its workers)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone since the listing, or not ours to read
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > RSS and int(fields[PGRP]) == pgid:
            total += int(fields[RSS]) * PAGE
    return total


def _rss(instance: ManagedProcess | None) -> int:
    process = instance.process if instance is not None else None
    if process is None or process.returncode is not None:
        return 0
    return group_rss(process.pid)


def memory(serving: ManagedProcess | None, standby: ManagedProcess | None) -> dict[str, int]:
    """RSS in bytes of the serving instance's processes, the standby's, and both."""
    mine, kept = _rss(serving), _rss(standby)
    return {"serving_rss_bytes": mine, "standby_rss_bytes": kept, "rss_bytes": mine + kept}


BUDGET_SQL = """
SELECT current_setting('max_connections')::int,
       count(*) FILTER (WHERE backend_type = 'client backend'),
       count(*) FILTER (WHERE backend_type = 'client backend' AND datname = current_database())
FROM pg_stat_activity WHERE pid <> pg_backend_pid()
"""


def _budget(url: str) -> dict[str, Any]:
    import psycopg  # only a PostgreSQL env's status needs the driver

    try:
        with psycopg.connect(url, connect_timeout=BUDGET_TIMEOUT) as conn:
            row = conn.execute(BUDGET_SQL).fetchone()
    except psycopg.Error as exc:
        # The class only: a driver message may carry the host and the user.
        return {"error": f"cannot read the connection budget ({type(exc).__name__})"}
    assert row is not None
    maximum, used, database = (int(v) for v in row)
    return {"max_connections": maximum, "connections": used, "database_connections": database}


async def runtime(
    serving: ManagedProcess | None,
    standby: Standby | None,
    health: Callable[[ManagedProcess], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """An env's ``standby`` (None without one), ``memory`` and ``connections``, for status."""
    kept = standby.instance if standby is not None else None
    return {
        "standby": standby.describe(await health(kept)) if standby and kept else None,
        "memory": await asyncio.to_thread(memory, serving, kept),
        "connections": await connection_budget(serving),
    }


async def connection_budget(serving: ManagedProcess | None) -> dict[str, Any] | None:
    """``max_connections`` and the connections in use now (standbys' included; this query's
    own not), for a PostgreSQL env; None for any other."""
    url = serving.spec.database_url if serving is not None else None
    if serving is None or not url or not url.startswith(("postgresql://", "postgres://")):
        return None
    return await asyncio.to_thread(_budget, resolve_url(url, serving.secrets))
