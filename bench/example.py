"""Shared by the benchmarks: the example app in a fresh git repo, deployed to dev."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHIPLANE = [sys.executable, "-m", "shiplane"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Example:
    repo: Path
    env: dict[str, str]
    port: int

    def shiplane(self, *args: str) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        proc = subprocess.run(
            [*SHIPLANE, *args, "--json"],
            cwd=self.repo,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        elapsed = time.perf_counter() - started
        data = json.loads(proc.stdout)
        if proc.returncode != 0:
            raise SystemExit(f"shiplane {' '.join(args)} failed: {data['error']}")
        return elapsed, data

    def git(self, *args: str) -> None:
        subprocess.run(["git", *args], cwd=self.repo, env=self.env, check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run(
            [*SHIPLANE, "server", "stop"],
            cwd=self.repo,
            env=self.env,
            capture_output=True,
            timeout=120,
        )


def example(work: Path, checks: bool = True, interval: str = "0.05") -> Example:
    repo = work / "notes"
    shutil.copytree(ROOT / "examples" / "notes", repo)
    port = free_port()
    config = repo / "shiplane.toml"
    text = (
        config.read_text()
        .replace("port = 8001", f"port = {port}")
        .replace("port = 8000", f"port = {free_port()}")
        .replace("interval = 0.2", f"interval = {interval}")
    )
    config.write_text(text if checks else text.split("# Checks:")[0])
    return committed(repo, work, port)


def committed(repo: Path, work: Path, port: int) -> Example:
    """``repo`` as a git repository on branch dev with one commit, its server under ``work``."""
    env = {
        **os.environ,
        "SHIPLANE_HOME": str(work / "home"),
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@x",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@x",
    }
    app = Example(repo, env, port)
    app.git("init", "-q", "-b", "dev")
    app.git("add", "-A")
    app.git("commit", "-qm", "v1")
    return app
