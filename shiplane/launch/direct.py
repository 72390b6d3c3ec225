"""Single-user mode: children run as the server's own user, started with ``subprocess``."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from shiplane.launch.base import NULL, PIPE, STDOUT, Child, Launcher, RunAs
from shiplane.procenv import die_with_parent

_STREAMS = {PIPE: subprocess.PIPE, NULL: subprocess.DEVNULL, STDOUT: subprocess.STDOUT}


class DirectChild(Child):
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.pid = process.pid
        self.stdout = process.stdout
        self.stderr = process.stderr

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float | None = None) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"pid {self.pid} still runs after {timeout}s") from None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


class DirectLauncher(Launcher):
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
        del run_as  # everything is the server user's in single-user mode
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=_STREAMS[stdout],
            stderr=_STREAMS[stderr],
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        return DirectChild(process)
