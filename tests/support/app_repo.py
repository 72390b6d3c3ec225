"""A real git repository of the example app, and the real `shiplane` CLI against it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "notes"
SHIPLANE = [sys.executable, "-m", "shiplane"]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@dataclass
class Run:
    code: int
    data: dict[str, Any]
    stdout: str
    stderr: str


@dataclass
class AppRepo:
    path: Path
    home: Path
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)
    name: str = "notes"

    def git(self, *args: str) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return proc.stdout.strip()

    def remote_branch(self, branch: str) -> str | None:
        """What the server's ``branch`` was when the client last fetched it back
        (``refs/remotes/shiplane/<branch>``), or None."""
        proc = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"refs/remotes/shiplane/{branch}"],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return proc.stdout.strip() or None

    def local_branches(self) -> str:
        """The user's own branches and where they point."""
        return self.git("for-each-ref", "--format=%(refname) %(objectname)", "refs/heads")

    @property
    def server_repo(self) -> Path:
        return self.root / "repo.git"

    def commit(self, message: str, files: dict[str, str] | None = None) -> str:
        for name, text in (files or {}).items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-qm", message)
        return self.git("rev-parse", "HEAD")

    def shiplane(
        self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 180
    ) -> Run:
        proc = subprocess.run(
            [*SHIPLANE, *args],
            cwd=self.path,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        try:
            data = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
        except ValueError:
            data = {}
        return Run(proc.returncode, data, proc.stdout, proc.stderr)

    def slow_build(self, seconds: int = 3) -> None:
        """Make the build step last ``seconds``: time to act while a deploy runs."""
        config = self.path / "shiplane.toml"
        config.write_text(
            config.read_text().replace(
                'build = ["python -m compileall -q app.py migrations"]',
                f'build = ["python -m compileall -q app.py migrations", "sleep {seconds}"]',
            )
        )

    def url(self, env: str, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.ports[env]}{path}"

    @property
    def root(self) -> Path:
        """The app's deploy root; the host's server lives at ``home``."""
        return self.home / "apps" / self.name

    def stop_server(self) -> None:
        subprocess.run(
            [*SHIPLANE, "server", "stop", "--root", str(self.home)],
            env=self.env,
            capture_output=True,
            timeout=60,
        )
        pid_file = self.home / "server.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)


def make_repo(tmp_path: Path, name: str = "notes", home: Path | None = None) -> AppRepo:
    """The example app in a new git repo; ``name`` and a shared ``home`` give a second app on
    the same host's server."""
    repo = tmp_path / name
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__"))
    ports = {"dev": free_port(), "prod": free_port()}
    config = repo / "shiplane.toml"
    config.write_text(
        config.read_text()
        .replace('name = "notes"', f'name = "{name}"')
        .replace("port = 8001", f"port = {ports['dev']}")
        .replace("port = 8000", f"port = {ports['prod']}")
        .replace("drain_timeout = 10.0", "drain_timeout = 5.0")
        .replace("timeout = 30.0", "timeout = 8.0")
    )
    home = home or tmp_path / "home"
    # The servers these tests start honour SHIPLANE_FAULT in a request (test-only).
    env = {**os.environ, **GIT_ENV, "SHIPLANE_HOME": str(home), "SHIPLANE_ALLOW_FAULTS": "1"}
    env.pop("SHIPLANE_FAULT", None)
    app = AppRepo(repo, home, ports, env, name)
    app.git("init", "-q", "-b", "main")
    app.commit("notes 1.0.0")
    app.git("branch", "dev")
    return app


def pids_under(root: Path) -> list[int]:
    """Processes whose working directory lies under ``root`` (app instances run in releases)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and cwd.startswith(str(root)):
            found.append(int(entry.name))
    return found


def wait_no_children(root: Path, timeout: float = 10) -> None:
    """The server's instances die with it (PDEATHSIG); wait until nothing of this test runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pids_under(root):
            return
        time.sleep(0.1)
    for pid in pids_under(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
