"""The environment every child process shiplane starts gets: build commands, migrations, test
suites and app instances alike."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

# Test-only fault injection must never reach a child: it would kill the app, not shiplane.
_PRIVATE = ("SHIPLANE_FAULT",)


def child_environment(*layers: Mapping[str, str]) -> dict[str, str]:
    """shiplane's own environment with its Python's bin dir first on PATH (so the tools
    installed beside shiplane are found), then ``layers`` applied in order."""
    env = {k: v for k, v in os.environ.items() if k not in _PRIVATE}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    for layer in layers:
        env.update(layer)
    return env
