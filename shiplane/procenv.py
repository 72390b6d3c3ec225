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
# A release's link to the virtualenv the build made for it (shiplane.venvs): its python is
# the app's when ``[app] python`` names none.
RELEASE_VENV = ".shiplane-venv"

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


def release_venv(release_dir: Path | str) -> Path | None:
    """The virtualenv the build made for the release (its stable path under the app's
    ``venvs/``, not the link in the release), or None."""
    try:
        return Path(os.readlink(Path(release_dir) / RELEASE_VENV))
    except OSError:
        return None


def app_bin_dir(python: str | None, release_dir: Path | str) -> Path | None:
    """The bin dir of the app's interpreter (``[app] python``: a virtualenv dir or an
    interpreter, absolute or relative to the release; unset: the release's own virtualenv),
    or None when the app has none."""
    if python is None:
        venv = release_venv(release_dir)
        return venv / "bin" if venv is not None else None
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
    if python is None:
        # The environment the build made is the app's whole Python: nothing of shiplane's
        # (its pip would install into shiplane's environment) is found after it.
        own = str(Path(sys.executable).parent)
        path = os.pathsep.join(entry for entry in path.split(os.pathsep) if entry != own)
    layer = {"PATH": str(bin_dir) + os.pathsep + path}
    if (bin_dir.parent / "pyvenv.cfg").is_file():
        layer["VIRTUAL_ENV"] = str(bin_dir.parent)
    return layer
