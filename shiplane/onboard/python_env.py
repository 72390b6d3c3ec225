"""Where a Python app's interpreter comes from: a virtualenv the user already has, or the one
shiplane's build makes from requirements.txt, pyproject.toml or uv.lock (shared by releases with
the same dependencies), or (poetry) one the build commands make in each release."""

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


# What the build's own virtualenv (shiplane.venvs) is made from, and with what.
BUILT = "shiplane builds it once per content ({what} + python, in the app's venvs/ dir, not in"
BUILT += " the release) with {tool}; releases with an unchanged {what} share it"


def _built(what: str, source: str) -> PythonEnv:
    tool = "uv when on PATH, else pip"
    return PythonEnv(None, [], f"{what}: " + BUILT.format(what=what, tool=tool), source)


def fresh_venv(repo: Path) -> PythonEnv | None:
    """A virtualenv for each release from the dependency files: the one shiplane's build
    makes when ``[app] python`` is unset, or (poetry) one the build commands make in it."""
    if (repo / "uv.lock").is_file():
        return _built("uv.lock", "uv")
    pyproject = _pyproject(repo) if (repo / "pyproject.toml").is_file() else None
    tool = pyproject.get("tool") if pyproject else None
    if (repo / "poetry.lock").is_file() or (isinstance(tool, dict) and "poetry" in tool):
        # poetry installs into an existing .venv in the project directory.
        build = [f"python -m venv {VENV}", "poetry install --no-root --only main --no-interaction"]
        return PythonEnv(VENV, build, "poetry: poetry install into .venv", "poetry")
    if (repo / "requirements.txt").is_file():
        return _built("requirements.txt", "requirements.txt")
    if pyproject is not None and "project" in pyproject:
        return _built("pyproject.toml [project] dependencies", "pyproject")
    return None


def python_env(repo: Path, environ: dict[str, str] | None = None) -> PythonEnv:
    environ = dict(os.environ) if environ is None else environ
    venv = existing_venv(repo, environ)
    if venv is not None:
        fresh = fresh_venv(repo)
        instead = (
            "; remove python for one per release, built from your dependencies" if fresh else ""
        )
        why = f"your virtualenv {venv} (not in git, so no release has a copy{instead})"
        return PythonEnv(str(venv), [], why, "virtualenv")
    fresh = fresh_venv(repo)
    if fresh is not None:
        return fresh
    return PythonEnv(None, [], "no requirements.txt or pyproject.toml: the PATH's python", "none")
