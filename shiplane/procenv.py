"""The environment every child process shiplane starts gets: build commands, migrations, test
suites and app instances alike."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

PR_SET_PDEATHSIG = 1

# A client's credentials and test switches must never reach what the server starts: a build or
# an app an agent wrote could read a person's token, or turn fault injection on.
PRIVATE = ("SHIPLANE_FAULT", "SHIPLANE_TOKEN", "SHIPLANE_ACTOR", "SHIPLANE_ALLOW_FAULTS")


def child_environment(*layers: Mapping[str, str]) -> dict[str, str]:
    """shiplane's own environment with its Python's bin dir first on PATH (so the tools
    installed beside shiplane are found), then ``layers`` applied in order."""
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    for layer in layers:
        env.update(layer)
    return env


def die_with_parent() -> None:
    """A ``preexec_fn``: the child gets SIGTERM when the server that started it dies (even by
    SIGKILL), so nothing it started outlives it holding the database."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def app_bin_dir(python: str | None, release_dir: Path | str) -> Path | None:
    """The bin dir of the app's interpreter (``[app] python``: a virtualenv dir or an
    interpreter, absolute or relative to the release), or None when the app has none."""
    if python is None:
        return None
    path = Path(python)
    if not path.is_absolute():
        path = Path(release_dir) / path
    return path / "bin" if path.is_dir() else path.parent


def app_python_layer(
    python: str | None, release_dir: Path | str, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """PATH (and VIRTUAL_ENV) so that ``python``, ``flask``, ``gunicorn`` ... are the app's:
    its bin dir goes first, in front of ``base``'s PATH (shiplane's children's own)."""
    bin_dir = app_bin_dir(python, release_dir)
    if bin_dir is None:
        return {}
    path = (base or child_environment()).get("PATH", "")
    layer = {"PATH": str(bin_dir) + os.pathsep + path}
    if (bin_dir.parent / "pyvenv.cfg").is_file():
        layer["VIRTUAL_ENV"] = str(bin_dir.parent)
    return layer
