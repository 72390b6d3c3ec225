"""The commands that build a virtualenv: uv when it is on PATH (fast, its own cache), else
``python -m venv`` and pip. Both share a wheel cache under the server's root, so building an
environment again with unchanged dependencies needs no download and no compile."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from shiplane.venvs.sources import Dependencies

# pip's own noise in an unattended build: no prompt, no "new version available" line.
PIP_QUIET = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
OWN_REQUIREMENTS = ".shiplane-requirements.txt"


@dataclass(frozen=True)
class Plan:
    tool: str  # "uv" | "pip"
    commands: list[list[str]]
    env: dict[str, str] = field(default_factory=dict)


def find_uv(path: str) -> str | None:
    return shutil.which("uv", path=path)


def plan(deps: Dependencies, venv: Path, release_dir: Path, cache: Path, uv: str | None) -> Plan:
    """How to make ``venv`` hold ``deps`` (of ``release_dir``). ``venv`` is its final path:
    a virtualenv cannot move after it is built (its scripts name their interpreter by path)."""
    python = str(venv / "bin" / "python")
    listed = venv / OWN_REQUIREMENTS  # pyproject.toml's dependencies, as pip/uv take them
    if uv is not None:
        env = {"UV_CACHE_DIR": str(cache / "uv"), "UV_NO_PROGRESS": "1"}
        make = [uv, "venv", "--quiet", "--python", sys.executable, str(venv)]
        if deps.kind == "uv.lock":
            env["UV_PROJECT_ENVIRONMENT"] = str(venv)
            sync = [uv, "sync", "--frozen", "--no-dev", "--no-install-project", "--quiet"]
            return Plan("uv", [make, sync], env)
        install = [uv, "pip", "install", "--quiet", "--python", python]
        return Plan("uv", [make, *_installs(deps, install, release_dir, listed)], env)
    env = {"PIP_CACHE_DIR": str(cache / "pip"), **PIP_QUIET}
    if own_pip_targets_others():
        # shiplane's pip installs into the new environment (`pip --python`): no pip of its own
        # to bootstrap there (ensurepip is most of a small app's build), as with uv.
        make = [sys.executable, "-m", "venv", "--without-pip", str(venv)]
        install = [sys.executable, "-m", "pip", "--python", python, "install", "--quiet"]
    else:
        make = [sys.executable, "-m", "venv", str(venv)]
        install = [python, "-m", "pip", "install", "--quiet"]
    return Plan("pip", [make, *_installs(deps, install, release_dir, listed)], env)


def own_pip_targets_others() -> bool:
    """Whether shiplane's interpreter has a pip that can install into another (22.3+)."""
    try:
        version = importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return False
    parts = version.split(".")
    try:
        return (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0) >= (22, 3)
    except ValueError:
        return False


def _installs(
    deps: Dependencies, install: list[str], release_dir: Path, listed: Path
) -> list[list[str]]:
    if deps.kind == "requirements.txt":
        return [[*install, "-r", str(release_dir / "requirements.txt")]]
    if not deps.requirements:
        return []
    # Only the dependencies: the app's own code lives in the release, not in the environment
    # (installing it would tie the environment to one commit).
    return [[*install, "-r", str(listed)]]


def write_requirements(deps: Dependencies, venv: Path) -> None:
    """pyproject.toml's dependency list as a requirements file inside the new environment."""
    if deps.kind != "requirements.txt" and deps.requirements:
        (venv / OWN_REQUIREMENTS).write_text("\n".join(deps.requirements) + "\n")
