"""Names for what a backup or restore writes before it is complete, so that what a killed one
leaves can be told from what a live one is writing (backup/leftovers.py clears the former).

A name is ``.<kind>-<pid>-<start>-<token>``: the writer's pid and its start time (a reused pid
is not mistaken for it), and, since the server runs many operations in one process, a
registry of the names this process is writing now.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shiplane.state.procs import process_start

KINDS = ("partial", "scratch", "plain")  # a backup being written, a scratch copy, a decryption

_active: set[str] = set()
_guard = threading.Lock()


def temp_name(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown temp kind {kind!r}")
    return f".{kind}-{os.getpid()}-{process_start(os.getpid()) or 0}-{secrets.token_hex(4)}"


def is_active(name: str) -> bool:
    with _guard:
        return name in _active


@contextmanager
def in_progress(path: Path) -> Iterator[Path]:
    """``path`` (named by ``temp_name``) is being written by this process: a cleaner leaves it
    alone until the block ends; the block removes whatever is still there."""
    with _guard:
        _active.add(path.name)
    try:
        yield path
    finally:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        finally:
            with _guard:
                _active.discard(path.name)


@contextmanager
def scratch_dir(parent: Path) -> Iterator[Path]:
    """A private scratch directory in ``parent``, removed at the end of the block."""
    path = parent / temp_name("scratch")
    with in_progress(path):
        path.mkdir(mode=0o700, parents=True)
        yield path
