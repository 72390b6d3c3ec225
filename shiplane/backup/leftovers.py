"""What a killed backup or restore leaves in a backups directory, and clearing it.

Everything a backup or restore writes there before it is complete goes under a dot-name that
says who wrote it: ``.<kind>-<pid>-<start>-<token>`` (a backup being written, a scratch copy,
a decrypted archive). A backup appears under its id only by one rename, manifest included, so
a directory without a manifest is never a backup: it is what a shiplane before these names
left behind. ``clean`` removes what no live writer owns; recovery and prune call it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from shiplane.databases.scratch import KINDS, is_active
from shiplane.state.procs import process_alive

MANIFEST = "manifest.json"


def _owned_by_the_living(name: str) -> bool:
    kind, _, rest = name[1:].partition("-")
    pid_text, _, rest = rest.partition("-")
    start, _, _token = rest.partition("-")
    if kind not in KINDS or not pid_text.isdigit():
        return True  # not one of ours: never touched
    pid = int(pid_text)
    if pid == os.getpid():
        return is_active(name)
    return process_alive(pid, None if start == "0" else start)


def remove(path: Path) -> None:
    """Remove a file or a directory tree (what ``clean`` and a failed backup leave)."""
    _remove(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean(backups_dir: Path) -> list[str]:
    """Remove what an interrupted backup or restore left in ``backups_dir``: temp names whose
    writer is gone, and directories without a manifest. Returns the names removed."""
    if not backups_dir.is_dir():
        return []
    removed = []
    for entry in sorted(backups_dir.iterdir()):
        if entry.name.startswith("."):
            if entry.name[1:].partition("-")[0] in KINDS and not _owned_by_the_living(entry.name):
                _remove(entry)
                removed.append(entry.name)
        elif entry.is_dir() and not (entry / MANIFEST).is_file():
            _remove(entry)
            removed.append(entry.name)
    return removed
