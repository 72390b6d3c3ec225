"""`shiplane run ENV -- CMD ARGS...`: a one-off command (``manage.py createsuperuser
--noinput``, a data fix, a shell one-liner the app's own Python runs) in the serving release's
directory, with exactly the environment the app's instances get.

The server runs it as its own child (argument list, no shell, stdin closed, a timeout; in
enforced mode as the environment's user), so a client that goes away does not take it along,
and returns its exit status and output, redacted. shiplane's own exit code says whether the
command *ran* (0), not how it went: that is ``data.exit_status``.
"""

from __future__ import annotations

import time

from shiplane.config.redact import Redactor
from shiplane.databases import resolve_url
from shiplane.databases.env_database import database_url
from shiplane.errors import ConfigError, DeployFailedError
from shiplane.launch import launcher
from shiplane.launch.base import RunAs, run_captured
from shiplane.operations.session import Session
from shiplane.operations.settings import settings_for
from shiplane.pipeline.steps_rollback import serving_release
from shiplane.procenv import app_python_layer, child_environment
from shiplane.results import Result

DEFAULT_TIMEOUT = 600.0
# The output travels back as JSON over the control socket: a runaway command's megabytes of
# logging are cut, and the result says so.
MAX_OUTPUT = 1_000_000


def _with_app_python(env: dict[str, str], python: str | None, release: str) -> dict[str, str]:
    """`python`, `manage.py`'s imports, ... are the app's, as in its instances."""
    return {**env, **app_python_layer(python, release, env)}


def check_run(command: list[str], timeout: float = DEFAULT_TIMEOUT) -> None:
    if not command:
        raise ConfigError(
            "no command given", step="usage", next_action="shiplane run ENV -- CMD ARGS..."
        )
    if not timeout > 0:
        raise ConfigError(
            f"--timeout {timeout:g}: must be a positive number of seconds",
            step="usage",
            next_action="pass --timeout SECONDS (default 600)",
        )


def run_command(
    session: Session, env: str, command: list[str], timeout: float = DEFAULT_TIMEOUT
) -> Result:
    check_run(command, timeout)
    settings = settings_for(session.loaded, session.db, env)
    redact = settings.redactor()
    try:
        release = serving_release(session.db, env)
    except ConfigError as exc:
        # Not a usage error: the command is fine, there is just nothing to run it in.
        raise DeployFailedError(exc.message, step="run", next_action=exc.next_action) from exc
    own = {
        "SHIPLANE_ENV": env,
        "SHIPLANE_SHA": release["sha"],
        "SHIPLANE_RELEASE": release["name"],
    }
    url = database_url(session.layout, settings)
    if url:
        own["DATABASE_URL"] = resolve_url(url, settings.secrets)
    started = time.monotonic()
    try:
        # Its own session: a timeout kills everything the command started, not just its head.
        done = run_captured(
            launcher(),
            command,
            run_as=RunAs(session.loaded.config.app.name, env),
            cwd=release["path"],
            env=_with_app_python(
                child_environment(settings.variables, settings.secrets, own),
                session.loaded.config.app.python,
                release["path"],
            ),
            timeout=timeout,
        )
    except OSError as exc:
        raise DeployFailedError(
            f"could not start {redact(command[0])!r}: {exc.strerror or exc}",
            step="run",
            next_action="check the command's name and that it exists in the release "
            "(paths are relative to the release directory)",
        ) from exc
    timed_out = done.timed_out
    stdout, stderr = done.stdout, done.stderr
    result = Result(command="run", env=env)
    status = done.returncode
    result.data.update(
        command=[redact(part) for part in command],
        release=release["name"],
        sha=release["sha"],
        exit_status=status,
        succeeded=status == 0,
        timed_out=timed_out,
        duration_ms=int((time.monotonic() - started) * 1000),
        output={"stdout": _text(stdout, redact), "stderr": _text(stderr, redact)},
    )
    if timed_out:
        result.warnings.append(f"the command ran past --timeout {timeout:g}s and was killed")
    elif status != 0:
        result.warnings.append(f"the command ran and exited {status}")
    return result


def _text(text: str, redact: Redactor) -> str:
    if len(text) > MAX_OUTPUT:
        text = text[-MAX_OUTPUT:]
        text = f"[... cut to the last {MAX_OUTPUT} characters ...]\n{text}"
    return redact(text)
