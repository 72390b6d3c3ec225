"""The framework example apps (examples/flask_notes, examples/django_notes, examples/knex_notes)
in real git repositories, with their requirements in a virtualenv (node_modules for the Node
one) built once and kept across test runs."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.app_repo import GIT_ENV, ROOT, AppRepo, free_port

VENVS = ROOT / ".cache" / "example-venvs"
NODE_MODULES = ROOT / ".cache" / "example-node-modules"


def example_venv(requirements: Path) -> Path:
    """A virtualenv with ``requirements`` installed, keyed by their hash; an exclusive lock
    keeps two xdist workers from building the same one (the second waits, then reuses it)."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    venv = VENVS / digest
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f"{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".ready").is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            subprocess.run(
                [str(venv / "bin" / "pip"), "install", "-q", "-r", str(requirements)],
                check=True,
                timeout=900,
            )
            (venv / ".ready").write_text("ok\n")
    return venv


def example_node_modules(example: Path) -> Path:
    """``npm ci`` of ``example``'s package-lock.json into a cache directory keyed by the lock's
    hash (locked like the virtualenvs); returns its node_modules, which a release links."""
    lock_file = example / "package-lock.json"
    digest = hashlib.sha256(lock_file.read_bytes()).hexdigest()[:16]
    cache = NODE_MODULES / digest
    NODE_MODULES.mkdir(parents=True, exist_ok=True)
    with open(NODE_MODULES / f"{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cache / ".ready").is_file():
            shutil.rmtree(cache, ignore_errors=True)
            cache.mkdir()
            for name in ("package.json", "package-lock.json"):
                shutil.copy(example / name, cache / name)
            # No install scripts: the example's packages are pure JavaScript.
            npm_ci = ["npm", "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"]
            subprocess.run(npm_ci, cwd=cache, check=True, timeout=600, capture_output=True)
            (cache / ".ready").write_text("ok\n")
    return cache / "node_modules"


def make_example_repo(
    tmp_path: Path, example: str, venv: Path | None, database_url: str | None = None
) -> AppRepo:
    """examples/<example> as a git repo on branch main (dev beside it), on free ports, with
    ``[app] python`` pointing at ``venv``, no build beyond what the test adds, and the given
    database URL (default: the example's SQLite file)."""
    source = ROOT / "examples" / example
    repo = tmp_path / example
    shutil.copytree(
        source, repo, ignore=shutil.ignore_patterns("__pycache__", "*.db", "node_modules")
    )
    ports = {"dev": free_port(), "prod": free_port()}
    config = repo / "shiplane.toml"
    text = config.read_text()
    if venv is not None:
        text = re.sub(r'(?m)^python = ".*"$', f'python = "{venv}"', text)
    text = re.sub(r"(?m)^build = \[.*\]$", "build = []", text)
    text = re.sub(
        r"(?m)^(\[environments\.dev\]\n(?:.*\n)*?)port = \d+", rf"\g<1>port = {ports['dev']}", text
    )
    text = re.sub(
        r"(?m)^(\[environments\.prod\]\n(?:.*\n)*?)port = \d+",
        rf"\g<1>port = {ports['prod']}",
        text,
    )
    if database_url is not None:
        text = re.sub(r'(?m)^url = ".*"$', f'url = "{database_url}"', text)
    config.write_text(text)
    home = tmp_path / "home"
    env = {**os.environ, **GIT_ENV, "SHIPLANE_HOME": str(home)}
    env.pop("SHIPLANE_FAULT", None)
    app = AppRepo(repo, home, ports, env, re.search(r'(?m)^name = "(.*)"$', text).group(1))  # type: ignore[union-attr]
    app.git("init", "-q", "-b", "main")
    app.commit(f"{example} 1.0")
    app.git("branch", "dev")
    app.git("checkout", "-q", "dev")
    return app


def example_without_config(tmp_path: Path, example: str) -> AppRepo:
    """examples/<example> without its shiplane.toml, committed on main in a new git repo, as
    a new user's app is before `shiplane init` (free ports chosen for init to be given)."""
    repo = tmp_path / example
    shutil.copytree(
        ROOT / "examples" / example,
        repo,
        ignore=shutil.ignore_patterns("__pycache__", "*.db", "shiplane.toml", "staticfiles"),
    )
    home = tmp_path / "home"
    env = {**os.environ, **GIT_ENV, "SHIPLANE_HOME": str(home)}
    env.pop("SHIPLANE_FAULT", None)
    env.pop("VIRTUAL_ENV", None)
    app = AppRepo(repo, home, {"dev": free_port(), "prod": free_port()}, env, example)
    app.git("init", "-q", "-b", "main")
    app.commit(f"{example} without shiplane.toml")
    return app
