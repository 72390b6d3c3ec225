"""How a migration process of the app starts: in the release directory, with the app's own
interpreter first on PATH, the environment's variables and env-file secrets, and DATABASE_URL;
through the launcher (the environment's OS user in enforced mode), under the database's
migration lock, its whole output in the deployment log with secrets masked."""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from shiplane.databases.base import Database
from shiplane.errors import MigrationError
from shiplane.launch import launcher
from shiplane.launch.base import Completed, RunAs, run_captured
from shiplane.procenv import app_bin_dir, app_python_layer, child_environment

TIMEOUT = 3600.0
# A traceback's verdict: "ValueError: ...", "django.db.utils.OperationalError: ...",
# "sqlalchemy.exc.ProgrammingError: (psycopg.errors...) ...", "Error: ..." (Click, knex).
# Also inside a log line: "ERROR [flask_migrate] Error: Can't locate revision ...".
EXCEPTION_LINE = re.compile(r"(^|\s)([A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)|Error):(\s|$)")


@dataclass(frozen=True)
class AppTools:
    """What an environment gives the app's migration tools; engines get it from the pipeline.

    Without it (a status read outside a deploy) a tool still runs, with shiplane's Python and
    DATABASE_URL only."""

    release_dir: Path | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    python: str | None = None  # [app] python: an interpreter or a virtualenv dir (None: the
    # release's own virtualenv, when its build made one; shiplane.venvs)
    redact: Callable[[str], str] = field(default=lambda text: text, repr=False)

    def at(self, release_dir: Path) -> AppTools:
        return replace(self, release_dir=release_dir)

    def bin_dir(self, release_dir: Path) -> Path | None:
        """The directory whose python/flask/alembic the app's migrations must use."""
        return app_bin_dir(self.python, release_dir)

    def interpreter(self, release_dir: Path) -> str:
        found = self.bin_dir(release_dir)
        return str(found / "python") if found else sys.executable


def exception_line(output: str) -> str:
    """The line that says what went wrong: the last one that looks like ``SomeError: ...``,
    else the last non-empty line (a tool that prints no traceback)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if EXCEPTION_LINE.search(line):
            return line
    return lines[-1] if lines else "no output"


def run_tool(
    database: Database,
    tools: AppTools,
    argv: list[str],
    *,
    cwd: Path,
    run_as: RunAs | None,
    log: Callable[[str], None],
    what: str,
    check: bool = True,
) -> Completed:
    """Run one migration command to completion; MigrationError when it fails (``check``)."""
    bin_dir = tools.bin_dir(cwd)
    own = {"DATABASE_URL": database.url}
    env = child_environment(tools.variables, tools.secrets, own)
    if bin_dir is not None:
        if not bin_dir.is_dir() and tools.python is None:
            raise MigrationError(
                f"the release's virtualenv {bin_dir.parent} is gone",
                step="migrate",
                next_action="deploy again: the build makes it from the dependency files",
            )
        if not bin_dir.is_dir():
            raise MigrationError(
                f"app.python = {tools.python!r}: {bin_dir} is not a directory",
                step="migrate",
                next_action="point app.python at the app's virtualenv dir or its bin/python",
            )
        env.update(app_python_layer(tools.python, cwd, env))
    # The launcher looks argv[0] up itself; resolve it on the child's PATH so `flask` is the
    # app's flask, not whatever shiplane's own PATH finds first.
    found = shutil.which(argv[0], path=env["PATH"]) if "/" not in argv[0] else argv[0]
    if found is None:
        raise MigrationError(
            f"{what}: {argv[0]!r} is not on the app's PATH",
            step="migrate",
            next_action="install it in the app's environment and set app.python to it",
        )
    argv = [found, *argv[1:]]
    log("$ " + tools.redact(shlex.join([Path(argv[0]).name, *argv[1:]])))
    conn = database.connect()
    try:
        # Two deploys, or a deploy and `shiplane migrate`, never run tools on one database.
        with database.advisory_lock(conn):
            done = run_captured(launcher(), argv, run_as=run_as, cwd=cwd, env=env, timeout=TIMEOUT)
    except OSError as exc:
        raise MigrationError(
            f"{what} could not start: {exc.strerror or exc}",
            step="migrate",
            next_action="install the tool in the app's environment and set app.python to it",
        ) from exc
    finally:
        conn.close()
    output = (done.stdout + done.stderr).strip()
    if output:
        log(tools.redact(output))
    if done.timed_out:
        raise MigrationError(
            f"{what} ran past {TIMEOUT:g}s and was stopped",
            step="migrate",
            next_action="make the migration faster, or run it by hand in a maintenance window",
        )
    if check and done.returncode != 0:
        line = tools.redact(exception_line(done.stdout + "\n" + done.stderr))
        raise MigrationError(
            f"{what} failed (exit {done.returncode}): {line}",
            step="migrate",
            next_action="fix the migration in a new commit and deploy again; the full output "
            "is in the deployment log",
        )
    return done
