"""What a release's virtualenv is made from, and the key it is stored under.

The key is the sha256 of the dependency file(s) and of the interpreter that builds the
environment: two releases with the same lock file on the same Python share one virtualenv, and
a changed pin or a Python upgrade makes a new one."""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from shiplane.errors import BuildError

# Bumped when the way an environment is built changes, so old ones are not taken for new ones.
FORMAT = b"shiplane-venv/1"


@dataclass(frozen=True)
class Dependencies:
    """The app's dependencies as one of the installers takes them."""

    kind: str  # "requirements.txt" | "pyproject.toml" | "uv.lock"
    files: tuple[str, ...]  # release-relative, hashed in this order
    requirements: tuple[str, ...] = ()  # pyproject.toml: [project].dependencies

    def key(self, release_dir: Path, python: str = sys.executable) -> str:
        digest = hashlib.sha256(FORMAT)
        for name in self.files:
            digest.update(b"\0" + name.encode() + b"\0")
            digest.update((release_dir / name).read_bytes())
        digest.update(b"\0" + python_tag(python).encode())
        return digest.hexdigest()


def python_tag(python: str = sys.executable) -> str:
    """The interpreter a virtualenv is built on: version and the base install it points at
    (a virtualenv's python links to it, so replacing it breaks the environment)."""
    base = getattr(sys, "_base_executable", python) if python == sys.executable else python
    return (
        f"{platform.python_implementation()}-{platform.python_version()}:{os.path.realpath(base)}"
    )


def dependencies(release_dir: Path) -> Dependencies | None:
    """The release's dependency files, or None when it has none (the app runs on the PATH's
    python, as before). uv.lock wins over requirements.txt over pyproject.toml's [project]."""
    pyproject = release_dir / "pyproject.toml"
    if (release_dir / "uv.lock").is_file() and pyproject.is_file():
        return Dependencies("uv.lock", ("uv.lock", "pyproject.toml"), _declared(pyproject) or ())
    if (release_dir / "requirements.txt").is_file():
        _check_not_the_app(release_dir / "requirements.txt")
        return Dependencies("requirements.txt", ("requirements.txt",))
    if pyproject.is_file():
        declared = _declared(pyproject)
        if declared is not None:
            return Dependencies("pyproject.toml", ("pyproject.toml",), declared)
    return None


def _check_not_the_app(requirements: Path) -> None:
    """A line that installs the release's own directory (``-e .``, ``./``) would tie a shared
    environment to one release's files (an editable install points into it)."""
    text = requirements.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if words and words[0] in ("-e", "--editable"):
            words = words[1:]
        if words and (words[0] in (".", "..") or words[0].startswith(("./", "../"))):
            raise BuildError(
                f"requirements.txt line {number}: {line.strip()!r} installs the app's own"
                " directory into the virtualenv that releases with this file share",
                next_action="remove the line (the release directory is the app's working"
                " directory: its code imports as it is), or set [app] python and build your own",
            )


def _declared(pyproject: Path) -> tuple[str, ...] | None:
    """[project].dependencies; None for a pyproject.toml without [project] (a tools-only file:
    ruff, pytest), which is no dependency file."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(
            f"{pyproject.name}: cannot read it to build the virtualenv: {exc}",
            next_action="fix pyproject.toml and commit",
        ) from exc
    project = data.get("project")
    if not isinstance(project, dict):
        return None
    declared = project.get("dependencies", [])
    if not isinstance(declared, list) or not all(isinstance(d, str) for d in declared):
        raise BuildError(
            f"{pyproject.name}: [project].dependencies = {declared!r} is not a list of strings",
            next_action='write it as dependencies = ["flask>=3.0", ...] and commit',
        )
    return tuple(declared)
