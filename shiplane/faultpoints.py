"""Test-only fault injection, shared by the pipeline and the layers below it (databases,
backups), so it depends on nothing.

``FAULT`` holds the faults of the operation running in this thread, comma-separated; the server
sets it per request, and only when it was started with SHIPLANE_ALLOW_FAULTS=1. The pipeline's
"step:kill|kill-after|fail" are read in pipeline/context.py; here, "point:sigkill" kills the
whole process at a named point, as `kill -9` would: nothing below runs, no handler, no
``finally``.
"""

from __future__ import annotations

import os
import signal
from contextvars import ContextVar

FAULT: ContextVar[str] = ContextVar("shiplane_fault", default="")


def sigkill_point(point: str) -> None:
    if f"{point}:sigkill" in FAULT.get().split(","):
        os.kill(os.getpid(), signal.SIGKILL)
