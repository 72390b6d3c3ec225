"""The fault-injection harness: a client loop against the front door, and database snapshots."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.app_repo import GIT_ENV


@dataclass
class ClientLoop:
    url: str
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    versions: set[str] = field(default_factory=set)


@contextmanager
def client_loop(url: str) -> Iterator[ClientLoop]:
    """Requests the front door without pause for as long as the block runs."""
    loop = ClientLoop(url)
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                try:
                    response = client.get(url)
                    if response.status_code == 200:
                        loop.ok += 1
                        loop.versions.add(response.json()["version"])
                    else:
                        loop.failures.append(f"HTTP {response.status_code}")
                except httpx.HTTPError as exc:
                    loop.failures.append(type(exc).__name__)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield loop
    finally:
        stop.set()
        thread.join(timeout=30)


def db_state(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    try:
        schema = sorted(r[0] or "" for r in conn.execute("SELECT sql FROM sqlite_master"))
        rows = conn.execute("SELECT id, title, body, tags FROM notes ORDER BY id").fetchall()
    finally:
        conn.close()
    return {"schema": schema, "rows": rows}


def without_checks(config: Path) -> None:
    """The harness is about the pipeline, not the app's checks: keep only the implicit version
    check, which keeps 15 x 2 deploys inside the suite's time budget. Committed: a deploy
    runs the checks of the commit it ships, not the working tree's."""
    config.write_text(config.read_text().split("# Checks:")[0])
    env = {**os.environ, **GIT_ENV}

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], cwd=config.parent, env=env, capture_output=True, text=True, timeout=30
        )

    git("commit", "-qam", "without checks").check_returncode()
    # The example's dev starts where main is: keep it so (a test checking out dev expects
    # main's history there, without a merge on the next deploy).
    current = git("rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    if current != "dev" and git("merge-base", "--is-ancestor", "dev", "HEAD").returncode == 0:
        git("branch", "-f", "dev", "HEAD").check_returncode()
