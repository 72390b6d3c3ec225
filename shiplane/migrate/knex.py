"""The ``knex`` preset for Node apps: ``npx knex migrate:latest`` applies; reverting repeats
``migrate:down`` (one migration a call) until ``migrate:currentVersion`` reaches the recorded
version; ``migrate:list`` says what is applied and pending."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from shiplane.errors import MigrationError
from shiplane.migrate.base import Capabilities
from shiplane.migrate.command import CommandEngine, Status

KNEX = ["npx", "--no-install", "knex"]
CURRENT = re.compile(r"Current Version:\s*(\S+)")
SECTION = re.compile(r"Found \d+ (Completed|Pending) Migration file")
FILE = re.compile(r"^\s*(\S+\.(?:js|cjs|mjs|ts))\s*$")


def parse_list(output: str) -> Status:
    """``knex migrate:list``: "Found N Completed Migration file/files." then the files, then
    the same for Pending ("No Pending Migration files Found." when none)."""
    applied: list[str] = []
    pending: list[str] = []
    into: list[str] | None = None
    for line in output.splitlines():
        section = SECTION.search(line)
        if section:
            into = applied if section.group(1) == "Completed" else pending
            continue
        if "No Completed Migration" in line or "No Pending Migration" in line:
            into = None
            continue
        found = FILE.match(line)
        if found and into is not None:
            into.append(found.group(1))
    return Status(applied, pending)


def version_of(name: str | None) -> str | None:
    """knex's currentVersion is the file name's leading timestamp, "none" when empty."""
    if not name:
        return None
    return name.split("_", 1)[0]


class KnexEngine(CommandEngine):
    name = "knex"
    capabilities = Capabilities(revert=True, lint=False, rehearse=True)
    bookkeeping = ("knex_migrations", "knex_migrations_lock")

    def can_revert(self) -> bool:
        return True

    def up_argv(self) -> list[str]:
        return [*KNEX, "migrate:latest"]

    def status_argv(self) -> list[str]:
        return [*KNEX, "migrate:list"]

    def parse_status(self, output: str, release_dir: Path) -> Status:
        return parse_list(output)

    def position_of(self, status: Status) -> Any:
        return version_of(status.applied[-1] if status.applied else None)

    def position_at(self, status: Status, count: int) -> Any:
        return version_of(status.applied[count - 1] if count > 0 else None)

    def current_version(self, release_dir: Path) -> str | None:
        output = self.run([*KNEX, "migrate:currentVersion"], release_dir, "currentVersion").stdout
        found = CURRENT.search(output)
        return None if found is None or found.group(1) == "none" else found.group(1)

    def revert(self, release_dir: Path, target: Any) -> None:
        applied = len(self.read_status(release_dir).applied)
        # One migration per call; never more calls than migrations applied.
        for _call in range(applied + 1):
            if self.current_version(release_dir) == target:
                return
            self.run([*KNEX, "migrate:down"], release_dir, "migrate:down")
        raise MigrationError(
            f"knex migrate:down did not reach {target or 'none'}",
            step="migrate",
            next_action="roll back with --restore-db to restore the pre-deploy backup",
        )
