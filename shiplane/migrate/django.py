"""The ``django`` preset: ``manage.py migrate`` applies; ``showmigrations --plan`` says what is
applied and pending, in dependency order; reverting runs ``manage.py migrate APP TARGET`` for
each app whose latest applied migration differs from the recorded position.

A position is ``{app: latest applied migration}``; an app missing from it goes to ``zero``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from shiplane.migrate.base import Capabilities
from shiplane.migrate.command import CommandEngine, Status

# "[X]  notes.0001_initial" (applied) / "[ ]  tags.0002_colour" (pending); with --plan and
# verbosity 2, " ... (applied at ...)" or dependencies may follow.
LINE = re.compile(r"^\[(?P<mark>[X ])\]\s+(?P<app>[\w]+)\.(?P<name>[\w]+)")
ZERO = "zero"


def latest_per_app(labels: list[str]) -> dict[str, str]:
    latest: dict[str, str] = {}
    for label in labels:
        app, name = label.split(".", 1)
        latest[app] = name
    return latest


class DjangoEngine(CommandEngine):
    name = "django"
    capabilities = Capabilities(revert=True, lint=False, rehearse=True)
    bookkeeping = ("django_migrations",)

    def can_revert(self) -> bool:
        return True

    def up_argv(self) -> list[str]:
        return ["python", "manage.py", "migrate", "--noinput"]

    def status_argv(self) -> list[str]:
        return ["python", "manage.py", "showmigrations", "--plan"]

    def parse_status(self, output: str, release_dir: Path) -> Status:
        applied: list[str] = []
        pending: list[str] = []
        for line in output.splitlines():
            found = LINE.match(line.strip())
            if found:
                label = f"{found['app']}.{found['name']}"
                (applied if found["mark"] == "X" else pending).append(label)
        return Status(applied, pending)

    def position_of(self, status: Status) -> Any:
        return latest_per_app(status.applied)

    def position_at(self, status: Status, count: int) -> Any:
        return latest_per_app(status.applied[:count])

    def revert(self, release_dir: Path, target: Any) -> None:
        wanted: dict[str, str] = dict(target or {})
        # Newest first: unapplying an app's migration unapplies what depends on it, in any
        # app, so each round re-reads the status and at most every app takes one call.
        for _round in range(len(wanted) + 64):
            status = self.read_status(release_dir)
            changed = [
                label
                for label in reversed(status.applied)
                if latest_per_app(status.applied)[label.split(".", 1)[0]] == label.split(".", 1)[1]
                and wanted.get(label.split(".", 1)[0], ZERO) != label.split(".", 1)[1]
            ]
            if not changed:
                return
            app = changed[0].split(".", 1)[0]
            argv = ["python", "manage.py", "migrate", app, wanted.get(app, ZERO), "--noinput"]
            self.run(argv, release_dir, f"migrate {app} {wanted.get(app, ZERO)}")
