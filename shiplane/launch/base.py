"""The launcher's interface: start a child as an environment's user, wait for it, signal its
process group. ``run_captured`` is the one way to run a command to completion with a timeout."""

from __future__ import annotations

import hashlib
import signal
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# Linux user names are at most 32 characters (useradd refuses longer ones).
MAX_USER_NAME = 32
USER_PREFIX = "shiplane-"


@dataclass(frozen=True, slots=True)
class RunAs:
    """Whose code it is: the environment whose OS user runs it in enforced mode."""

    app: str
    env: str

    @property
    def user(self) -> str:
        return app_user_name(self.app, self.env)


def app_user_name(app: str, env: str) -> str:
    name = f"{USER_PREFIX}{app}-{env}"
    if len(name) <= MAX_USER_NAME:
        return name
    # Long names keep a readable head and a digest that keeps them apart.
    digest = hashlib.sha256(f"{app}/{env}".encode()).hexdigest()[:8]
    return f"{name[: MAX_USER_NAME - 9]}-{digest}"


class Child(ABC):
    """A started child. Its process group is its own: signals reach its workers too."""

    pid: int
    stdout: IO[bytes] | None
    stderr: IO[bytes] | None

    @property
    @abstractmethod
    def returncode(self) -> int | None: ...

    @abstractmethod
    def wait(self, timeout: float | None = None) -> int:
        """The exit status; raises ``TimeoutError`` when ``timeout`` passes first."""

    @abstractmethod
    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the child's process group (nothing when it is gone)."""


# What a child's stdin/stdout/stderr is: a pipe to us, the null device, or stdout (stderr only).
PIPE = "pipe"
NULL = "null"
STDOUT = "stdout"


class Launcher(ABC):
    # True when children run as other OS users than the server (enforced mode).
    separates_users = False

    @abstractmethod
    def spawn(
        self,
        argv: list[str],
        *,
        run_as: RunAs | None,
        cwd: Path | str,
        env: dict[str, str],
        stdout: str = PIPE,
        stderr: str = PIPE,
    ) -> Child:
        """Start ``argv`` in a new session (its own process group), stdin from the null
        device, dying with the server. Raises ``OSError`` when it cannot start."""

    def prepare(self, path: Path, run_as: RunAs | None) -> None:
        """Let ``run_as`` own ``path`` (a release or an environment's shared dir) so it can
        build and write there; the server keeps group read access. Nothing in single-user
        mode, where everything is the server user's already."""
        del path, run_as


@dataclass(frozen=True, slots=True)
class Completed:
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def run_captured(
    launcher: Launcher,
    argv: list[str],
    *,
    run_as: RunAs | None,
    cwd: Path | str,
    env: dict[str, str],
    timeout: float,
) -> Completed:
    """Run to completion, output captured; past ``timeout`` the whole process group is
    killed (workers included) and ``returncode`` is None."""
    child = launcher.spawn(argv, run_as=run_as, cwd=cwd, env=env)
    chunks: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=_drain, args=(stream, name, chunks), daemon=True)
        for name, stream in (("stdout", child.stdout), ("stderr", child.stderr))
        if stream is not None
    ]
    for reader in readers:
        reader.start()
    code: int | None
    try:
        code = child.wait(timeout)
    except TimeoutError:
        child.signal_group(signal.SIGKILL)
        child.wait()
        code = None
    # The group may hold workers that keep the pipes open: they go with their leader.
    child.signal_group(signal.SIGKILL)
    for reader in readers:
        reader.join(5)
    return Completed(
        code,
        chunks.get("stdout", b"").decode(errors="replace"),
        chunks.get("stderr", b"").decode(errors="replace"),
    )


def _drain(stream: IO[bytes], name: str, into: dict[str, bytes]) -> None:
    with stream:
        into[name] = stream.read()
