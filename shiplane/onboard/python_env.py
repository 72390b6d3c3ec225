"""Where a Python app's interpreter comes from: a virtualenv the user already has, or one the
build makes in each release from requirements.txt or pyproject.toml (uv, poetry, pip)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from shiplane.onboard.facts import PythonEnv
from shiplane.onboard.source import read

VENV = ".venv"


def _is_venv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file() and (path / "bin" / "python").exists()


def _tracked(repo: Path, path: Path) -> bool:
    """Whether git tracks anything under ``path`` (an untracked dir is not in a release)."""
    try:
        proc = subprocess.run(
            ["git", "ls-files", "--", str(path)],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return bool(proc.stdout.strip())


def existing_venv(repo: Path, environ: dict[str, str]) -> Path | None:
    """The active virtualenv ($VIRTUAL_ENV), else .venv/ or venv/ in the repository."""
    active = environ.get("VIRTUAL_ENV")
    candidates = [Path(active)] if active else []
    candidates += [repo / ".venv", repo / "venv"]
    own = Path(sys.prefix).resolve()
    for candidate in candidates:
        # shiplane's own virtualenv is never the app's: their dependencies must not mix.
        if candidate.resolve() == own:
            continue
        if _is_venv(candidate) and not _tracked(repo, candidate):
            return candidate.absolute()
    return None


def _pyproject(repo: Path) -> dict[str, object]:
    try:
        return tomllib.loads(read(repo / "pyproject.toml"))
    except tomllib.TOMLDecodeError:
        return {}


def fresh_venv(repo: Path) -> PythonEnv | None:
    """A virtualenv the build makes in the release from the dependency files."""
    make = f"python -m venv {VENV}"
    pip = f"{VENV}/bin/pip install -q"
    if (repo / "uv.lock").is_file():
        return PythonEnv(VENV, ["uv sync --frozen --no-dev"], "uv.lock: uv sync", "uv")
    pyproject = _pyproject(repo) if (repo / "pyproject.toml").is_file() else None
    tool = pyproject.get("tool") if pyproject else None
    if (repo / "poetry.lock").is_file() or (isinstance(tool, dict) and "poetry" in tool):
        # poetry installs into an existing .venv in the project directory.
        build = [make, "poetry install --no-root --only main --no-interaction"]
        return PythonEnv(VENV, build, "poetry: poetry install into .venv", "poetry")
    if isinstance(tool, dict) and "uv" in tool:
        return PythonEnv(VENV, ["uv sync --no-dev"], "pyproject.toml [tool.uv]: uv sync", "uv")
    if (repo / "requirements.txt").is_file():
        build = [make, f"{pip} -r requirements.txt"]
        return PythonEnv(VENV, build, "requirements.txt: pip into .venv", "requirements.txt")
    if pyproject is not None and "project" in pyproject:
        build = [make, f"{pip} ."]
        return PythonEnv(VENV, build, "pyproject.toml [project]: pip install .", "pyproject")
    return None


def python_env(repo: Path, environ: dict[str, str] | None = None) -> PythonEnv:
    environ = dict(os.environ) if environ is None else environ
    venv = existing_venv(repo, environ)
    if venv is not None:
        fresh = fresh_venv(repo)
        instead = f"; for one per release: {fresh.build} with python = {VENV!r}" if fresh else ""
        why = f"your virtualenv {venv} (not in git, so no release has a copy{instead})"
        return PythonEnv(str(venv), [], why, "virtualenv")
    fresh = fresh_venv(repo)
    if fresh is not None:
        return fresh
    return PythonEnv(None, [], "no requirements.txt or pyproject.toml: the PATH's python", "none")
