"""Failures of the machine under an operation (a full disk, a read-only or refused file, a
damaged database), told as what they are: the file, the cause, the fix, exit 7. Anything else
unexpected stays an internal error with its traceback in the crash log."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

from shiplane.errors import ShiplaneError, StateDamagedError, StorageError
from shiplane.layout import shiplane_home
from shiplane.state import integrity

LOW_SPACE = 64 * 1024  # bytes free under which a file system counts as full

_CAUSES: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("the disk is full", "free space on that file system, then run it again"),
    errno.EDQUOT: ("the disk quota is used up", "free space or raise the quota, then run again"),
    errno.EROFS: (
        "the file system is read-only",
        "remount it read-write (or move SHIPLANE_HOME), then run it again",
    ),
    errno.EACCES: (
        "permission denied",
        "give the user running shiplane access to it (or use its own SHIPLANE_HOME)",
    ),
    errno.EPERM: (
        "operation not permitted",
        "give the user running shiplane access to it (or use its own SHIPLANE_HOME)",
    ),
    errno.EIO: ("an I/O error (failing disk?)", "check the disk (dmesg), then run it again"),
}

# SQLite's names for the same causes, when it is SQLite that met them.
_SQLITE: dict[str, int] = {
    "SQLITE_FULL": errno.ENOSPC,
    "SQLITE_READONLY": errno.EROFS,
    "SQLITE_READONLY_DIRECTORY": errno.EROFS,
    "SQLITE_READONLY_DBMOVED": errno.EROFS,
    "SQLITE_PERM": errno.EACCES,
    "SQLITE_CANTOPEN": errno.EACCES,
    "SQLITE_IOERR": errno.EIO,
}


def translate(exc: BaseException) -> ShiplaneError | None:
    """The ShiplaneError ``exc`` stands for, or None when it is not the machine's doing."""
    if isinstance(exc, OSError) and exc.errno in _CAUSES:
        return storage(exc.errno, exc.filename)
    if isinstance(exc, sqlite3.DatabaseError):
        name = getattr(exc, "sqlite_errorname", None) or ""
        if name in integrity.CORRUPT:
            return StateDamagedError(
                f"a state database is damaged: {exc}",
                step="state",
                next_action=f"a person runs `{integrity.RESTORE}`",
            )
        for prefix, code in _SQLITE.items():
            if name == prefix or name.startswith(f"{prefix}_"):
                return storage(code, None, detail=str(exc))
    return None


def disk_full_instead(exc: ShiplaneError) -> ShiplaneError:
    """A usage error (exit 64) raised while SHIPLANE_HOME's disk is full is the disk's doing
    (a git push that "cannot create a temporary directory"): said as such, exit 7."""
    if exc.exit_code != 64 or isinstance(exc, StorageError):
        return exc
    full = _full_home()
    if full is None:
        return exc
    return StorageError(
        f"the disk is full ({full}): {exc.message}",
        step=exc.step or "storage",
        next_action=_CAUSES[errno.ENOSPC][1],
    )


def _full_home() -> Path | None:
    """SHIPLANE_HOME (or its nearest existing parent) when its file system has (almost) no
    room left; None when there is room, or when that cannot be told."""
    home = shiplane_home()
    for candidate in (home, *home.parents):
        try:
            free = shutil.disk_usage(candidate).free
        except OSError:
            continue
        return candidate if free < LOW_SPACE else None
    return None


def storage(code: int, filename: object, detail: str | None = None) -> StorageError:
    if code == errno.EIO and _full_home() is not None:
        code = errno.ENOSPC  # SQLite reports a full disk as "disk I/O error" at times
    cause, fix = _CAUSES[code]
    where = f" ({Path(str(filename))})" if filename else ""
    extra = f": {detail}" if detail else ""
    return StorageError(f"{cause}{where}{extra}", step="storage", next_action=fix)
