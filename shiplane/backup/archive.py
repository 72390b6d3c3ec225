"""Backups of any Database: an archive (sqlite: gzip of an online copy; postgresql: pg_dump -Fc)
and a manifest with the sha256 that restore checks before it overwrites anything."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shiplane.backup.encrypt import decrypt_file, encrypt_file
from shiplane.backup.leftovers import clean
from shiplane.config.encryption import BackupEncryption
from shiplane.databases import Database
from shiplane.databases.content import snapshot
from shiplane.databases.scratch import in_progress, scratch_dir, temp_name
from shiplane.errors import BackupError, ShiplaneError
from shiplane.faultpoints import sigkill_point

MANIFEST = "manifest.json"


def _new_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def create_backup(
    database: Database,
    backups_dir: Path,
    meta: dict[str, Any],
    encryption: BackupEncryption | None = None,
) -> dict[str, Any]:
    """Back up ``database`` into ``backups_dir/<id>/``; returns the manifest. With
    ``encryption`` the archive is kept only encrypted (age), and the manifest says so.

    It is written under a temp name (archive, then manifest) and renamed into place: a backup
    killed halfway is never listed, and recovery or the next prune removes what it left."""
    backup_id = _new_id()
    backups_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = backups_dir / temp_name("partial")
    try:
        with in_progress(partial):
            partial.mkdir(mode=0o700)
            manifest = _write(database, partial, backup_id, meta, encryption)
            _fsync(partial)
            partial.rename(backups_dir / backup_id)
            _fsync(backups_dir)
    except Exception as exc:  # OSError, sqlite3.Error, psycopg.Error, a failing pg_dump
        raise BackupError(
            f"backing up {database.describe()} failed: {exc}",
            step="backup",
            next_action=f"check free space and permissions under {backups_dir}",
        ) from exc
    return manifest


def _write(
    database: Database,
    target: Path,
    backup_id: str,
    meta: dict[str, Any],
    encryption: BackupEncryption | None,
) -> dict[str, Any]:
    archive = target / database.archive_name
    empty = not database.exists()
    # Taken before the dump: a write in between makes the live database differ from it,
    # so a restore refuses (safe) instead of passing over that write (unsafe).
    tables = {} if empty else snapshot(database)
    if empty:
        os.close(os.open(archive, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
    else:
        database.dump(archive)
    sigkill_point("backup-archive")  # tests: killed with the archive written, no manifest
    sealed: dict[str, Any] = {}
    if encryption is not None:
        archive = encrypt_file(archive, encryption)
        sealed = {"encrypted": "age", "recipient": encryption.recipient}
    _fsync(archive)
    manifest = {
        **meta,
        "id": backup_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "engine": database.kind,
        "source": database.describe(),
        "empty": empty,
        "fingerprint": database.fingerprint(),
        # Per table: columns, rows, content checksum. A restore compares the live
        # database with it first, so it never discards a write made since.
        "tables": tables,
        "archive": archive.name,
        "sha256": sha256_file(archive),
        "size": archive.stat().st_size,
        **sealed,
    }
    fd = os.open(target / MANIFEST, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(manifest, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    return manifest


def _fsync(path: Path) -> None:
    """Durable before the rename that publishes it (a power cut is a kill, too)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(backup_dir: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((backup_dir / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(
            f"backup {backup_dir.name}: manifest unreadable ({exc})",
            step="restore",
            next_action="choose another backup (`shiplane backups ENV`)",
        ) from exc
    return data


def list_backups(backups_dir: Path) -> list[dict[str, Any]]:
    if not backups_dir.is_dir():
        return []
    found = []
    for entry in sorted(backups_dir.iterdir(), reverse=True):
        # A dot-name is a backup still being written (or what a killed one left).
        if not entry.name.startswith(".") and entry.is_dir() and (entry / MANIFEST).is_file():
            found.append(read_manifest(entry))
    return found


def restore_backup(
    backup_dir: Path,
    database: Database,
    identity_file: Path | None = None,
    before_swap: Callable[[Database], None] | None = None,
) -> dict[str, Any]:
    """Verify the checksum, load the archive (decrypted with ``identity_file`` when the
    manifest says it is encrypted), then check integrity and the schema. ``before_swap``: see
    ``Database.load``."""
    manifest = read_manifest(backup_dir)
    archive = backup_dir / str(manifest.get("archive", database.archive_name))
    if not archive.is_file() or sha256_file(archive) != manifest.get("sha256"):
        raise BackupError(
            f"backup {backup_dir.name} is corrupted (checksum mismatch); nothing was overwritten",
            step="restore",
            next_action="choose another backup (`shiplane backups ENV`)",
        )
    if manifest.get("engine", database.kind) != database.kind:
        raise BackupError(
            f"backup {backup_dir.name} is a {manifest['engine']} backup, the database is "
            f"{database.kind}",
            step="restore",
        )
    # The plaintext of an encrypted backup and any scratch copy live in one directory beside
    # the backups, under a name recovery removes if this process is killed before it does.
    with scratch_dir(backup_dir.parent) as work:
        plain = archive
        if manifest.get("encrypted") and not manifest.get("empty"):
            plain = work / database.archive_name
            decrypt_file(archive, plain, identity_file, backup_dir.name)
        try:
            if manifest.get("empty"):
                database.clear(work, before_swap)  # the backup predates the database
            else:
                database.load(plain, work, before_swap)
            live = database.integrity()
        except ShiplaneError:
            raise  # a refusal from before_swap, a missing privilege: already explained
        except Exception as exc:
            raise BackupError(
                f"restoring backup {backup_dir.name} failed: {exc}", step="restore"
            ) from exc
    restored = database.fingerprint()
    expected = manifest.get("fingerprint")
    if live != "ok" or (expected is not None and restored != expected):
        raise BackupError(
            f"after restoring {backup_dir.name}: integrity {live!r}, schema {restored} "
            f"(backup recorded {expected})",
            step="restore",
            next_action="restore the pre-restore safety backup and look at the database",
        )
    return {**manifest, "verified": {"integrity": live, "schema": restored}}


def prune_backups(backups_dir: Path, keep: int, keep_days: float | None = None) -> list[str]:
    """Remove backups beyond the newest ``keep`` and those older than ``keep_days`` (the newest
    always stays), and what an interrupted backup or restore left (backup/leftovers.py)."""
    clean(backups_dir)
    removed = []
    cutoff = datetime.now(UTC).timestamp() - keep_days * 86400 if keep_days else None
    for index, manifest in enumerate(list_backups(backups_dir)):
        created = datetime.fromisoformat(str(manifest["created_at"])).timestamp()
        too_old = cutoff is not None and created < cutoff
        if index > 0 and (index >= keep or too_old):
            # Out of the listing in one rename, then removed: never half a backup listed.
            with in_progress(backups_dir / temp_name("partial")) as doomed:
                (backups_dir / str(manifest["id"])).rename(doomed)
            removed.append(str(manifest["id"]))
    return removed
