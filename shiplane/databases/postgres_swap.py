"""A PostgreSQL restore that no writer slips into: load the archive into a new database, end
the other sessions on the live one and rename it aside (no one can connect to it by its name
from then on), compare it again, rename the new one into its place, drop the old one.

What a kill leaves, recovery finishes from the record kept in the load's workdir
(``SWAP_RECORD``): the live name missing means it was killed between the two renames, and the
old database goes back under it; otherwise the leftover copies are dropped. The old database
is dropped once the swap succeeded: the pre-restore backup, taken before, holds what it held
(``before_swap`` takes a new one if a write reached it after that backup).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import psycopg

from shiplane.databases.base import SWAP_RECORD, Database
from shiplane.errors import BackupError, ConfigError
from shiplane.faultpoints import sigkill_point


class PostgresDatabase(Protocol):
    """What the swap needs of databases/postgresql.py's class (which imports this module)."""

    name: str

    def describe(self) -> str: ...

    def _admin(self) -> psycopg.Connection[Any]: ...

    def load_into(self, archive: Path, database: str) -> None: ...

    def renamed(self, name: str) -> Database: ...

    def settle(self, record: dict[str, object]) -> str | None: ...


FREEZE_WAIT = 30.0  # seconds to get every other session off the live database
MAX_NAME = 63  # PostgreSQL's identifier length


def side_name(name: str, role: str, token: str) -> str:
    suffix = f"_{role}_{token}"
    return name[: MAX_NAME - len(suffix)] + suffix


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def check_privileges(database: PostgresDatabase) -> None:
    """Creating the new database needs CREATEDB; renaming the live one needs its ownership."""
    with database._admin() as conn:
        row = conn.execute(
            "SELECT r.rolsuper, r.rolcreatedb, pg_has_role(current_user, d.datdba, 'USAGE'),"
            " current_user, pg_get_userbyid(d.datdba) FROM pg_roles r, pg_database d"
            " WHERE r.rolname = current_user AND d.datname = %s",
            (database.name,),
        ).fetchone()
    if row is None:
        return  # no live database yet: the restore creates it
    superuser, createdb, owns, user, owner = row
    if superuser:
        return
    if not createdb:
        raise ConfigError(
            f"restoring {database.describe()} loads the backup into a new database and swaps "
            f"it in, and {user} may not create databases (no CREATEDB); nothing was changed",
            step="restore",
            next_action=f"as a superuser: ALTER ROLE {user} CREATEDB; then restore again",
        )
    if not owns:
        raise ConfigError(
            f"restoring {database.describe()} renames the live database, which is owned by "
            f"{owner}, not {user}; nothing was changed",
            step="restore",
            next_action=f"ALTER DATABASE {quoted(database.name)} OWNER TO {user} (or connect as "
            f"{owner}); then restore again",
        )


def load_and_swap(
    database: PostgresDatabase,
    archive: Path | None,
    workdir: Path,
    before_swap: Callable[[Database], None] | None,
) -> None:
    token = secrets.token_hex(3)
    live = database.name
    new, old = side_name(live, "restore", token), side_name(live, "old", token)
    record: dict[str, object] = {"live": live, "new": new, "old": old}
    _write_record(workdir / SWAP_RECORD, record)
    try:
        with database._admin() as conn:
            template = _template(conn, live)
            conn.execute(f"CREATE DATABASE {quoted(new)} TEMPLATE template0 {template}")
        if archive is not None:  # None: the backup predates the database, it comes back empty
            database.load_into(archive, new)
        with database._admin() as conn:
            existed = _freeze(conn, database, live, old)
        sigkill_point("restore-swap")  # tests: killed between the two renames
        if existed and before_swap is not None:
            before_swap(database.renamed(old))
        with database._admin() as conn:
            conn.execute(f"ALTER DATABASE {quoted(new)} RENAME TO {quoted(live)}")
    except BaseException:
        # Back to where it was: the live database under its name, the copy gone.
        database.settle(record)
        raise
    database.settle(record)  # drops the old database (the swap succeeded)


def _template(conn: psycopg.Connection[Any], live: str) -> str:
    """The live database's encoding and collation, so the copy sorts and compares the same."""
    row = conn.execute(
        "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database"
        " WHERE datname = %s",
        (live,),
    ).fetchone()
    if row is None:
        return ""
    encoding, collate, ctype = (str(v).replace("'", "''") for v in row)
    return f"ENCODING '{encoding}' LC_COLLATE '{collate}' LC_CTYPE '{ctype}'"


def _freeze(conn: psycopg.Connection[Any], database: PostgresDatabase, live: str, old: str) -> bool:
    """End every other session on ``live`` and rename it to ``old`` before one reconnects
    (a rename waits for no one: it fails while anyone is connected, so it is retried).
    Returns False when there was no live database."""
    deadline = time.monotonic() + FREEZE_WAIT
    while True:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (live,)).fetchone() is None:
            return False
        try:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (live,),
            )
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ConfigError(
                f"restoring {database.describe()} ends the other sessions on it, and some belong "
                f"to another role ({exc.diag.message_primary}); nothing was restored",
                step="restore",
                next_action="as a superuser: GRANT pg_signal_backend TO the role in "
                "database.url; then restore again",
            ) from exc
        try:
            conn.execute(f"ALTER DATABASE {quoted(live)} RENAME TO {quoted(old)}")
            return True
        except psycopg.errors.ObjectInUse as exc:
            if time.monotonic() >= deadline:
                raise BackupError(
                    f"{database.describe()}: other sessions kept reconnecting for "
                    f"{FREEZE_WAIT:g}s; nothing was restored",
                    step="restore",
                    next_action="stop what keeps connecting (a worker, a pool outside shiplane), "
                    "then restore again",
                ) from exc
            time.sleep(0.05)


def settle(database: PostgresDatabase, record: dict[str, object]) -> str | None:
    """Finish an interrupted or failed swap: the live name missing, the old database goes back
    under it (the restore did not happen); then the leftover copies are dropped."""
    live, new, old = (str(record.get(k, "")) for k in ("live", "new", "old"))
    if not live or not new or not old:
        return None
    done = []
    with database._admin() as conn:

        def exists(name: str) -> bool:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return found.fetchone() is not None

        if not exists(live) and exists(old):
            conn.execute(f"ALTER DATABASE {quoted(old)} RENAME TO {quoted(live)}")
            done.append(f"put {live} back (the restore had not swapped)")
        for leftover in (new, old):
            if exists(leftover):
                conn.execute(f"DROP DATABASE IF EXISTS {quoted(leftover)} WITH (FORCE)")
                done.append(f"dropped {leftover}")
    return "; ".join(done) or None


def _write_record(path: Path, record: dict[str, object]) -> None:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle)
        handle.flush()
        os.fsync(handle.fileno())
