"""Where an app's virtualenvs live: ``<app root>/venvs/<key>``, outside every release.

A virtualenv cannot be moved or copied once built (its scripts name their interpreter by
absolute path), so it is built where it stays, in ``venvs/.builds/<key>-<nonce>/``, and
published by renaming a symlink onto ``venvs/<key>`` (atomic): a build that is killed halfway
leaves a directory no name points at, which counts for nothing and is removed by the next
build or prune. A release points at its environment with its own symlink (``RELEASE_VENV``);
an environment no release points at any more is removed when releases are pruned.

One lock per app (``venvs/.lock``) covers building, linking into a release and pruning, so a
prune never removes an environment a deployment is about to use."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from shiplane.procenv import RELEASE_VENV

BUILDS = ".builds"


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        """The published name of an environment (a symlink to where it was built)."""
        return self.root / key

    def published(self, key: str) -> bool:
        return (self.path(key) / "pyvenv.cfg").is_file()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o711)
        with open(self.root / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def new_build(self, key: str) -> Path:
        """An empty directory to build ``key`` in (under the lock)."""
        builds = self.root / BUILDS
        builds.mkdir(parents=True, exist_ok=True, mode=0o711)
        path = builds / f"{key[:16]}-{secrets.token_hex(4)}"
        path.mkdir(mode=0o755)
        return path

    def publish(self, key: str, built: Path) -> Path:
        temporary = self.root / f".{key}.{secrets.token_hex(4)}"
        temporary.symlink_to(built)
        os.replace(temporary, self.path(key))
        return self.path(key)

    def clear_unfinished(self) -> list[str]:
        """Remove builds no published name points at: ones killed halfway (under the lock,
        nobody else is building)."""
        builds = self.root / BUILDS
        if not builds.is_dir():
            return []
        live = {os.path.realpath(p) for p in self.root.iterdir() if p.is_symlink()}
        removed = []
        for build in builds.iterdir():
            if os.path.realpath(build) not in live:
                shutil.rmtree(build, ignore_errors=True)
                removed.append(build.name)
        for stray in self.root.glob(".*.*"):  # a publishing symlink that was never renamed
            if stray.is_symlink():
                stray.unlink(missing_ok=True)
        return removed

    def link(self, release_dir: Path, key: str) -> None:
        """Point the release at environment ``key`` (replacing what it pointed at)."""
        temporary = release_dir / f"{RELEASE_VENV}.{secrets.token_hex(4)}"
        temporary.symlink_to(self.path(key))
        os.replace(temporary, release_dir / RELEASE_VENV)

    def referenced(self) -> set[str]:
        """Keys some release of some environment of the app (``venvs/..``) points at."""
        keys = set()
        for link in self.root.parent.glob(f"*/releases/*/{RELEASE_VENV}"):
            with contextlib.suppress(OSError):
                target = Path(os.readlink(link))
                if target.parent == self.root:
                    keys.add(target.name)
        return keys

    def prune(self) -> list[str]:
        """Remove the environments no release points at; returns their keys."""
        if not self.root.is_dir():
            return []
        removed = []
        with self.locked():
            used = self.referenced()
            for entry in sorted(self.root.iterdir()):
                if not entry.is_symlink() or entry.name.startswith(".") or entry.name in used:
                    continue
                built = Path(os.path.realpath(entry))
                entry.unlink()
                if built.parent == self.root / BUILDS:
                    shutil.rmtree(built, ignore_errors=True)
                removed.append(entry.name)
            self.clear_unfinished()
        return removed
