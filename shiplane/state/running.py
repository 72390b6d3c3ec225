"""What this process is working on right now: deployments and lock owners.

The server runs many operations in one process, so "its pid is alive" no longer proves that a
deployment or a lock is live: an operation that ended without settling them (a crash inside the
server) leaves its pid alive. Work registers here while it runs; whatever state.db says this
process owns but is not registered here was abandoned, and recovery may take it over.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from shiplane.state.procs import process_alive

_guard = threading.Lock()
_live: set[str] = set()
# The ids the current operation claimed, so its end releases them however it ends.
_claimed: ContextVar[list[str] | None] = ContextVar("shiplane_claimed", default=None)


def claim(owner_id: str) -> None:
    with _guard:
        _live.add(owner_id)
    claimed = _claimed.get()
    if claimed is not None:
        claimed.append(owner_id)


def drop(owner_id: str) -> None:
    with _guard:
        _live.discard(owner_id)


@contextmanager
def operation_scope() -> Iterator[None]:
    """Everything claimed inside is dropped when the operation ends, also by an exception that
    skipped its own cleanup."""
    token = _claimed.set([])
    try:
        yield
    finally:
        for owner_id in _claimed.get() or []:
            drop(owner_id)
        _claimed.reset(token)


def owner_alive(owner_id: str, pid: int | None, start: str | None = None) -> bool:
    if pid is None:
        return False
    if pid == os.getpid():
        with _guard:
            return owner_id in _live
    return process_alive(pid, start)


def busy() -> list[str]:
    """What this process is working on now (deployments, lock owners)."""
    with _guard:
        return sorted(_live)
