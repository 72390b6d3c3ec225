"""When no health route can be read from the source (a plain WSGI callable, a hand-written Node
server), init starts the app once and asks it: the first candidate path that answers 2xx is the
health path. The app runs on a copy of the tree in a temporary directory, so a SQLite file or a
cache it writes never lands in the user's repository, and it is stopped (its whole process
group) before init goes on."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from shiplane.procenv import app_python_layer, child_environment

START_TIMEOUT = 15.0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def _copy(repo: Path, into: Path) -> Path:
    tree = into / repo.name
    # node_modules is linked, not copied: it can be large, and the app only reads it.
    shutil.copytree(
        repo, tree, symlinks=True, ignore=shutil.ignore_patterns(".git", "node_modules", "*.db")
    )
    if (repo / "node_modules").is_dir():
        (tree / "node_modules").symlink_to(repo / "node_modules")
    return tree


def probe_health(
    repo: Path,
    run: str,
    python: str | None,
    env: dict[str, str],
    candidates: Sequence[str],
    timeout: float = START_TIMEOUT,
) -> tuple[str | None, str]:
    """(the first of ``candidates`` that answered 2xx, what was seen); None when the app did
    not start or no candidate answered."""
    port = _free_port()
    command = shlex.split(run.replace("{host}", "127.0.0.1").replace("{port}", str(port)))
    with tempfile.TemporaryDirectory(prefix="shiplane-init-") as temp:
        tree = _copy(repo, Path(temp))
        base = child_environment()
        child = child_environment(
            app_python_layer(python, tree, base),
            {"PORT": str(port), "HOST": "127.0.0.1"},
            {"DATABASE_URL": f"sqlite:///{Path(temp) / 'probe.db'}"},
            env,
        )
        try:
            proc = subprocess.Popen(
                command,
                cwd=tree,
                env=child,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            return None, f"could not start {command[0]!r} to probe ({exc.strerror})"
        try:
            return _ask(proc, port, candidates, timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _ask(
    proc: subprocess.Popen[bytes], port: int, candidates: Sequence[str], timeout: float
) -> tuple[str | None, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None, f"the app exited ({proc.returncode}) before it answered a probe"
        seen = {c: _answers(f"http://127.0.0.1:{port}{c}") for c in candidates}
        if all(code is None for code in seen.values()):
            time.sleep(0.1)
            continue
        for candidate, code in seen.items():
            if code is not None and 200 <= code < 300:
                return candidate, f"started the app once: GET {candidate} answered {code}"
        return None, "started the app once: " + ", ".join(
            f"GET {c} answered {code}" for c, code in seen.items()
        )
    return None, f"the app did not answer within {timeout:g}s"
