"""What an undo does with a schema a migration changed, so it never discards a write a client
saw succeed (docs: "An acknowledged write is sacred").

- No migration ran: nothing is restored, ever.
- Before the switch no client wrote through the new code: ``down`` is safe.
- After it (smoke, recovery, ``rollback``) the old code goes back first and the schema stays
  when the old release passes its checks on it (the migration was additive).
- Otherwise ``down`` runs inside the front door's hold, after checking on a scratch copy that
  what it drops holds no data (exit 6 listing it, unless ``--discard-writes``; what it discards
  is backed up first).
- A migration that cannot be reverted: the backup is restored only when nothing was written
  since it was taken; otherwise the new schema stays and the undo ends with exit 5.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from shiplane.backup import create_backup, restore_backup
from shiplane.backup.archive import read_manifest
from shiplane.backup.encrypt import for_env, identity_of
from shiplane.config.checks import Check, HttpCheck
from shiplane.config.encryption import BackupEncryption
from shiplane.databases import Database
from shiplane.databases.content import dropped_data, written_since
from shiplane.errors import MigrationError, RefusedError, RollbackFailedError
from shiplane.migrate.base import MigrationEngine, MigrationSource
from shiplane.pipeline.context import Context
from shiplane.targets.pausing import pause_workers, resume_workers
from shiplane.verify.runner import load_checks, run_checks
from shiplane.verify.target import make_target

DEFAULT_HOLD = 30.0  # seconds a request may wait while a schema change runs


def hold_budget(ctx: Context) -> float:
    """How long a request may wait at the front door while the schema changes:
    ``--hold-timeout``, else the env's ``front_door.hold_timeout`` when the config sets it,
    else DEFAULT_HOLD (the door's own default bound is for holds without a schema change)."""
    given = ctx.options.get("hold_timeout")
    if given:
        return float(given)
    door = ctx.settings.env_config.front_door
    return float(door.hold_timeout) if "hold_timeout" in door.model_fields_set else DEFAULT_HOLD


def now() -> float:
    return time.monotonic()


def switch_attempted(ctx: Context) -> bool:
    """Whether this deployment's switch step ran at all (done, undone, failed, or started when
    the process died): from then on clients may have written through the new code."""
    return any(
        s["name"] == "switch" and s["status"] != "skipped" for s in ctx.db.steps(ctx.deployment_id)
    )


def compat_checks(ctx: Context) -> list[Check]:
    """The old release's checks on the current schema: its health route and the `smoke`
    group, the read-only ones that run through the front door."""
    health = HttpCheck(kind="http", name="health", group="smoke", path=ctx.config.app.health)
    return [health, *(c for c in load_checks(ctx.loaded) if c.group == "smoke")]


def old_code_fits(ctx: Context, base_url: str, sha: str, release_dir: str | None) -> list[str]:
    """The checks the release at ``release_dir`` fails when run against ``base_url`` on the
    schema as it is now ([] = it runs on it: the schema may stay)."""
    target = make_target(
        ctx.loaded,
        ctx.layout,
        ctx.settings,
        sha=sha,
        release_dir=release_dir,
        phase="compat",
        base_url=base_url,
    )
    results = run_checks(compat_checks(ctx), target)
    return [f"{r.name} ({r.message})" for r in results if r.status == "failed"]


@contextmanager
def hold(ctx: Context, record: dict[str, Any]) -> Iterator[None]:
    """New requests wait at the front door (bounded) and in-flight ones finish while the block
    runs; ``record["hold_seconds"]`` says how long clients waited."""
    timeout = hold_budget(ctx)
    traffic = ctx.traffic()
    started = time.monotonic()
    paused = pause_workers(ctx.target, ctx.env)  # they write too: not while the schema changes
    settled = traffic.hold(timeout)
    ctx.log(f"hold: new requests wait (at most {timeout:g}s); in-flight settled: {settled}")
    try:
        yield
    finally:
        traffic.release()
        if paused:
            resume_workers(ctx.target, ctx.env)
        record["hold_seconds"] = round(time.monotonic() - started, 3)
        ctx.log(f"hold released after {record['hold_seconds']}s")


def guard_down(
    ctx: Context,
    database: Database,
    engine: MigrationEngine,
    migrations: Sequence[MigrationSource],
    position: Any,
    record: dict[str, Any],
) -> None:
    """Before a ``down`` that clients may have written past: run it on a scratch copy, and
    refuse (exit 6) when what it drops holds data, unless ``--discard-writes``; then the data
    is backed up first (``record["discarded_backup"]``)."""
    with database.scratch_copy() as copy:
        try:
            engine.on(copy).revert_to(migrations, position)
        except MigrationError:
            # No down to check (an engine that cannot revert, an irreversible migration): the
            # real one fails the same way and the undo falls back to restore_if_unchanged,
            # which refuses over any write since the backup.
            return
        lost = dropped_data(database, copy, engine.bookkeeping)
    if not lost:
        return
    record["would_discard"] = lost
    if not ctx.options.get("discard_writes"):
        raise RefusedError(
            "reverting the schema would discard data written since the migration: "
            + "; ".join(lost),
            step="migrate",
            next_action=f"keep the new schema (deploy a fix), or run `shiplane rollback "
            f"{ctx.env} --discard-writes` (what it drops is backed up first)",
        )
    manifest = create_backup(
        database,
        ctx.layout.backups(ctx.env),
        {"env": ctx.env, "reason": "pre-down", "deployment_id": ctx.deployment_id},
        backup_encryption(ctx),
    )
    record["discarded_backup"] = manifest["id"]
    ctx.log(f"--discard-writes: {'; '.join(lost)} saved in backup {manifest['id']}")


def restore_if_unchanged(
    ctx: Context, database: Database, backup_id: str, why: str, ignore: Sequence[str] = ()
) -> str:
    """A schema that cannot be reverted: restore ``backup_id`` only when the database holds
    nothing written since it was taken; otherwise keep the new schema, exit 5. Compared and
    restored under the same exclusion as every checked restore (backup/checked.py), and
    decrypted with the env's identity when the backup is encrypted."""
    directory = ctx.layout.backups(ctx.env) / backup_id
    manifest = read_manifest(directory)
    tables = manifest.get("tables")

    def refuse_if_written(live: Database) -> None:
        written = (
            written_since(tables, live, ignore)
            if tables is not None
            else ["(the backup predates per-table checksums: cannot tell)"]
        )
        if written:
            raise RollbackFailedError(
                f"{why}, and the database was written since backup {backup_id}: "
                + "; ".join(written)
                + ". The new schema stays (a restore would discard those writes)",
                step="migrate",
                next_action=f"keep the new schema and deploy a fix (`shiplane deploy "
                f"{ctx.env}`); or, losing those writes, `shiplane restore {ctx.env} {backup_id} "
                "--discard-writes`",
            )

    database.check_restore()
    with database.exclusive():
        refuse_if_written(database)
        restore_backup(directory, database, identity_of(backup_encryption(ctx)), refuse_if_written)
    return f"database restored from backup {backup_id} (unchanged since it was taken)"


def backup_encryption(ctx: Context) -> BackupEncryption | None:
    """The env's backup encryption: backups taken in an undo are sealed like the others, and
    encrypted ones are opened with its identity."""
    encryption = ctx.settings.env_config.backup_encryption
    return None if encryption is None else for_env(encryption, ctx.layout.server.root)
