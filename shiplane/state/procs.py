"""Is a process alive? pid plus its start time, so a reused pid is not mistaken for the owner."""

from __future__ import annotations

import os
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; split after its last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def process_start(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields else None


def process_alive(pid: int, start: str | None = None) -> bool:
    fields = _stat_fields(pid)
    if fields is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if fields[0] in ("Z", "X"):
        return False
    return start is None or fields[19] == start


def process_stopped(pid: int) -> bool:
    """Stopped by a signal (SIGSTOP, SIGTSTP) or a tracer: alive, holding its locks and its
    socket, but answering nothing until it is continued."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] in ("T", "t")
