"""SQLite backups with the online backup API: consistent while the app keeps writing."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shiplane.errors import BackupError
from shiplane.migrate.schema import fingerprint

ARCHIVE = "database.db.gz"
MANIFEST = "manifest.json"


def _new_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _private_file(path: Path) -> int:
    return os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)


def create_backup(db_path: Path, backups_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Back up ``db_path`` into ``backups_dir/<id>/``; returns the manifest."""
    backup_id = _new_id()
    target = backups_dir / backup_id
    try:
        target.mkdir(parents=True, mode=0o700)
        archive = target / ARCHIVE
        empty = not db_path.exists()
        with tempfile.TemporaryDirectory(dir=backups_dir) as scratch:
            copy = Path(scratch) / "copy.db"
            source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) if not empty else None
            dest = sqlite3.connect(copy)
            try:
                if source is not None:
                    source.backup(dest)
            finally:
                dest.close()
                if source is not None:
                    source.close()
            schema = fingerprint(copy)
            with (
                copy.open("rb") as raw,
                os.fdopen(_private_file(archive), "wb") as out,
                gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6) as gz,
            ):
                shutil.copyfileobj(raw, gz, 1 << 20)
        manifest = {
            **meta,
            "id": backup_id,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": str(db_path),
            "empty": empty,
            "fingerprint": schema,
            "archive": ARCHIVE,
            "sha256": sha256_file(archive),
            "size": archive.stat().st_size,
        }
        with os.fdopen(_private_file(target / MANIFEST), "w") as handle:
            json.dump(manifest, handle, indent=2)
    except (OSError, sqlite3.Error) as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise BackupError(
            f"backing up {db_path.name} failed: {exc}",
            step="backup",
            next_action=f"check free space and permissions under {backups_dir}",
        ) from exc
    return manifest


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
        if entry.is_dir() and (entry / MANIFEST).is_file():
            found.append(read_manifest(entry))
    return found


def restore_backup(backup_dir: Path, db_path: Path) -> dict[str, Any]:
    """Verify the checksum, then copy the backup into the live database (online, atomic)."""
    manifest = read_manifest(backup_dir)
    archive = backup_dir / str(manifest.get("archive", ARCHIVE))
    if not archive.is_file() or sha256_file(archive) != manifest.get("sha256"):
        raise BackupError(
            f"backup {backup_dir.name} is corrupted (checksum mismatch); nothing was overwritten",
            step="restore",
            next_action="choose another backup (`shiplane backups ENV`)",
        )
    try:
        with tempfile.TemporaryDirectory(dir=backup_dir) as scratch:
            copy = Path(scratch) / "restore.db"
            with gzip.open(archive, "rb") as gz, copy.open("wb") as out:
                shutil.copyfileobj(gz, out, 1 << 20)
            source = sqlite3.connect(copy)
            try:
                check = source.execute("PRAGMA integrity_check").fetchone()[0]
                if check != "ok":
                    raise BackupError(
                        f"backup {backup_dir.name} fails integrity_check: {check}", step="restore"
                    )
                db_path.parent.mkdir(parents=True, exist_ok=True)
                dest = sqlite3.connect(db_path, timeout=30)
                try:
                    source.backup(dest)
                    live = dest.execute("PRAGMA integrity_check").fetchone()[0]
                finally:
                    dest.close()
            finally:
                source.close()
    except (OSError, sqlite3.Error, EOFError, gzip.BadGzipFile) as exc:
        raise BackupError(
            f"restoring backup {backup_dir.name} failed: {exc}", step="restore"
        ) from exc
    restored = fingerprint(db_path)
    expected = manifest.get("fingerprint")
    if live != "ok" or (expected is not None and restored != expected):
        raise BackupError(
            f"after restoring {backup_dir.name}: integrity_check {live!r}, schema {restored} "
            f"(backup recorded {expected})",
            step="restore",
            next_action="restore the pre-restore safety backup and look at the database",
        )
    return {**manifest, "verified": {"integrity_check": live, "schema": restored}}


def prune_backups(backups_dir: Path, keep: int, keep_days: float | None = None) -> list[str]:
    """Remove backups beyond the newest ``keep`` and those older than ``keep_days``; the newest
    backup always stays."""
    removed = []
    cutoff = datetime.now(UTC).timestamp() - keep_days * 86400 if keep_days else None
    for index, manifest in enumerate(list_backups(backups_dir)):
        created = datetime.fromisoformat(str(manifest["created_at"])).timestamp()
        too_old = cutoff is not None and created < cutoff
        if index > 0 and (index >= keep or too_old):
            shutil.rmtree(backups_dir / str(manifest["id"]), ignore_errors=True)
            removed.append(str(manifest["id"]))
    return removed
