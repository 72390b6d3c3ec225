"""What a killed backup or restore leaves in a backups directory, and clearing it.

Everything a backup or restore writes there before it is complete goes under a dot-name that
says who wrote it: ``.<kind>-<pid>-<start>-<token>`` (a backup being written, a scratch copy,
a decrypted archive). A backup appears under its id only by one rename, manifest included, so
a directory without a manifest is never a backup: it is what a shiplane before these names
left behind. ``clean`` removes what no live writer owns; recovery and prune call it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from shiplane.databases.base import SWAP_RECORD, Database
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


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean(backups_dir: Path, database: Database | None = None) -> list[str]:
    """Remove what an interrupted backup or restore left in ``backups_dir``: temp names whose
    writer is gone, and directories without a manifest. A restore's workdir that kept a swap
    record (PostgreSQL) is settled first, with ``database``; without it, it stays for
    recovery. Returns what was done, one line each."""
    if not backups_dir.is_dir():
        return []
    done = []
    for entry in sorted(backups_dir.iterdir()):
        if entry.name.startswith("."):
            if entry.name[1:].partition("-")[0] not in KINDS:
                continue
            if _owned_by_the_living(entry.name):
                continue
            record = entry / SWAP_RECORD
            if record.is_file():
                if database is None:
                    continue
                settled = database.settle(_read_record(record))
                if settled:
                    done.append(settled)
            _remove(entry)
            done.append(f"removed {entry.name}")
        elif entry.is_dir() and not (entry / MANIFEST).is_file():
            _remove(entry)
            done.append(f"removed {entry.name} (no manifest: an interrupted backup)")
    return done


def _read_record(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
