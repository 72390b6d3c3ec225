"""The operation boundary: load and validate, open the root, recover stale work, run, and turn
every outcome into a Result with its exit code. Every public operation passes through here.

Bad input is found before anything is written: the config (and whatever ``check`` looks at)
is validated first, and only then is the deploy root opened.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from shiplane import protection
from shiplane.caller import Caller
from shiplane.config import snapshot
from shiplane.config.loader import LoadedConfig, env_settings, load_config
from shiplane.errors import RefusedError, ShiplaneError
from shiplane.layout import Layout, ServerLayout, shiplane_home
from shiplane.operations.recover import recover_stale
from shiplane.operations.session import Session
from shiplane.pipeline.context import Progress
from shiplane.results import Result
from shiplane.state import running
from shiplane.state.db import StateDB
from shiplane.state.tokens import TokenStore
from shiplane.targets.registry import open_target
from shiplane.verify.runner import load_checks


def load_validated(
    config_path: Path | None, env: str | None = None, loaded: LoadedConfig | None = None
) -> LoadedConfig:
    """Load the config (or take the one a client sent) and check it and the env, before
    anything is written to disk."""
    if loaded is None:
        loaded = load_config(config_path)
    load_checks(loaded)  # a bad checks file is a config error too, found before any work
    if env is not None:
        env_settings(loaded, env)
    return loaded


@contextmanager
def open_app_root(layout: Layout) -> Iterator[StateDB]:
    """The app's deploy root (created on first use) and its state.db."""
    layout.ensure()
    db = StateDB(layout.state_db)
    try:
        yield db
    finally:
        db.close()


def run_operation(
    command: str,
    caller: Caller,
    body: Callable[[Session], Result],
    *,
    config_path: Path | None = None,
    env: str | None = None,
    check: Callable[[LoadedConfig, Caller], None] | None = None,
    progress: Progress | None = None,
    recover: bool = True,
    token: str | None = None,
    rule: Callable[[LoadedConfig, Caller], None] | None = None,
    loaded: LoadedConfig | None = None,
    gated: Callable[[LoadedConfig], bool] | None = None,
) -> Result:
    """Run ``body`` inside the boundary; never raises (a crash is logged, exit 3).

    ``loaded`` is a config a client sent (the server's case: ``config_path`` is then unused).
    Order matters: who asks is settled (token → role) and what they may do is checked before
    anything of the app is opened or created, and bad input before anything is written.
    A request that ``gated`` says the role rules or the gate decide carries how binding they
    are on this host (``protection``), whatever its outcome."""
    marks: dict[str, str] = {}

    def call() -> Result:
        nonlocal loaded
        loaded = load_validated(config_path, env, loaded)
        layout = Layout.for_app(loaded.config.app.name)
        if gated is not None and gated(loaded):
            marks.update(protection.marks(layout.server))
        who = identify_on(layout.server, token, caller)
        if rule is not None:
            rule(loaded, who)
        if check is not None:
            check(loaded, who)
        layout.server.ensure()
        if loaded.sent is not None:
            # The server's own copy, for what reads a file later (an instance's env file).
            layout.ensure()
            snapshot.write(loaded)
        host = StateDB(layout.server.state_db)
        try:
            with open_app_root(layout) as db, running.operation_scope():
                session = Session(who, loaded, layout, db, host, open_target(layout), progress)
                if recover:
                    session.recovered = recover_stale(session)
                return body(session)
        finally:
            host.close()

    return _marked(guarded(command, env, call), marks)


def _marked(result: Result, marks: dict[str, str]) -> Result:
    result.data.update(marks)
    return result


def identify_on(server: ServerLayout, token: str | None, claimed: Caller) -> Caller:
    """``identify`` against the host's token store, creating nothing: a host without one has
    no tokens."""
    if not server.state_db.is_file():
        return identify(None, token, claimed)
    host = StateDB(server.state_db)
    try:
        return identify(host, token, claimed)
    finally:
        host.close()


def identify(host: StateDB | None, token: str | None, claimed: Caller) -> Caller:
    """Who asks. With a token, its role; without one, the caller's own word (single-user mode,
    advisory) until this host has live tokens: from then on a token is required."""
    if token is not None:
        if host is None:
            raise RefusedError(
                "the token presented (SHIPLANE_TOKEN) is not valid: this host has no tokens",
                step="auth",
                next_action="unset SHIPLANE_TOKEN, or ask a person for a token of this host",
            )
        return authenticate(host, token, claimed)
    if host is not None and any(not record.revoked for record in TokenStore(host).list()):
        raise RefusedError(
            "this host has client tokens: every request must present one (SHIPLANE_TOKEN)",
            step="auth",
            next_action="set SHIPLANE_TOKEN to your token (a person creates one with "
            "`shiplane tokens create --role agent|person`)",
        )
    return claimed


def authenticate(db: StateDB, token: str, claimed: Caller) -> Caller:
    """The caller a presented token stands for; its role is the token's, whatever the label
    claims."""
    record = TokenStore(db).verify(token)
    if record is None:
        raise RefusedError(
            "the token presented (SHIPLANE_TOKEN) is not valid: unknown, malformed or revoked",
            step="auth",
            next_action="ask a person for a token: shiplane tokens create --role agent",
        )
    return Caller.from_token(record, claimed.label, person_verified=claimed.person_verified)


def validate_only(
    command: str,
    config_path: Path | None,
    env: str | None,
    check: Callable[[LoadedConfig, Caller], None] | None,
    caller: Caller,
    loaded: LoadedConfig | None = None,
    gated: Callable[[LoadedConfig], bool] | None = None,
) -> Result:
    """The checks ``run_operation`` makes before it opens the root, and nothing else. A
    refusal found here (the gate, in the client) says how binding it is, like the server's."""
    loaded = load_validated(config_path, env, loaded)
    marks: dict[str, str] = {}
    if gated is not None and gated(loaded):
        marks = protection.marks(Layout.for_app(loaded.config.app.name).server)
    try:
        if check is not None:
            check(loaded, caller)
    except ShiplaneError as exc:
        return _marked(Result(command=command, env=env).fail(exc), marks)
    return Result(command=command, env=env)


def guarded(command: str, env: str | None, call: Callable[[], Result]) -> Result:
    """``call()``, with every error mapped to a Result: the one place exit codes come from."""
    try:
        return call()
    except ShiplaneError as exc:
        return Result(command=command, env=env).fail(exc)
    except Exception as exc:
        crash = log_crash(command)
        return Result(command=command, env=env).fail(
            InternalError(
                f"internal error: {type(exc).__name__} (traceback in {crash})",
                next_action="run `shiplane status`; report the traceback",
            )
        )


class InternalError(ShiplaneError):
    exit_code = 3


def log_crash(command: str) -> Path:
    """Where the traceback went: the home's crash.log, or, for a client that may not write
    there (an enforced host's clients), one in its own temp dir."""
    entry = f"--- {datetime.now(UTC).isoformat()} {command}\n{traceback.format_exc()}"
    for crash in (
        shiplane_home() / "crash.log",
        Path(tempfile.gettempdir()) / f"shiplane-{os.getuid()}" / "crash.log",
    ):
        try:
            crash.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with crash.open("a") as handle:
                handle.write(entry)
            return crash
        except OSError:
            continue
    return crash
