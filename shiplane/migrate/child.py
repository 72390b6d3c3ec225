"""Running shiplane's own migrations in a child process, as the environment's user.

A ``NNN_name.py`` migration is the app's code: in enforced mode it must not run inside the
server (which can read state.db and every environment's secrets). The server starts this module
through the launcher instead; the request (database URL included, so never on the command line,
which every user can read in /proc) arrives in the environment, the result leaves as one JSON
line on stdout.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from shiplane.config.models import DatabaseConfig
from shiplane.databases import open_database
from shiplane.errors import ShiplaneError
from shiplane.migrate.files import discover
from shiplane.migrate.runner import REQUEST_VARIABLE, Migrator


def main() -> int:
    request: dict[str, Any] = json.loads(os.environ.pop(REQUEST_VARIABLE))

    engine = Migrator(open_database(request["url"]), DatabaseConfig(), log=_log)
    migrations = list(discover(Path(request["directory"])))
    try:
        if request["direction"] == "up":
            labels = engine.up(migrations, request.get("to"), in_child=True)
        else:
            labels = engine.down(migrations, int(request["to"]), in_child=True)
    except ShiplaneError as exc:
        _emit({"error": exc.message, "next_action": exc.next_action})
        return 1
    _emit({"labels": labels})
    return 0


def _log(line: str) -> None:
    _emit({"log": line})


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
