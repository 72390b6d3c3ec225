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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from shiplane import protection
from shiplane.caller import Caller
from shiplane.config import snapshot
from shiplane.config.checks_file import load_checks
from shiplane.config.loader import LoadedConfig, env_settings, load_config
from shiplane.errors import RefusedError, ShiplaneError
from shiplane.gate import events, guard
from shiplane.layout import Layout, ServerLayout, shiplane_home
from shiplane.lazy import lazy_module
from shiplane.operations import failures, stateless
from shiplane.operations.session import Presented, Session
from shiplane.results import Result
from shiplane.state import backups as state_copies
from shiplane.state import running
from shiplane.state.db import StateDB
from shiplane.state.tokens import TokenStore
from shiplane.targets.registry import open_target

if TYPE_CHECKING:
    from shiplane.operations import recover as _recover
    from shiplane.pipeline.context import Progress
else:
    # A client validating a request never recovers anything: the pipeline loads in the
    # server, when an operation runs (shiplane.lazy; CLI startup).
    _recover = lazy_module("shiplane.operations.recover")


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
    rule: Callable[[LoadedConfig, Caller, set[str]], None] | None = None,
    loaded: LoadedConfig | None = None,
    gated: Callable[[LoadedConfig, set[str]], bool] | None = None,
    gate: GateFacts | None = None,
    presented: Presented | None = None,
    without_state: Callable[[Session], Result] | None = None,
    needs_state: bool = True,
) -> Result:
    """Run ``body`` inside the boundary; never raises (a crash is logged, exit 3).

    The app's state.db is checked first (``shiplane.state.integrity``): a damaged one stops
    the operation (exit 7) unless it has a ``without_state`` body (a backup of the app's
    database needs no history); ``needs_state=False`` always runs that one (``state
    restore``). A deployment, or a changed pin, leaves a copy of state.db behind
    (``shiplane.state.backups``).

    ``loaded`` is a config a client sent (the server's case: ``config_path`` is then unused).
    Order matters: who asks is settled (token → role) and what they may do is checked before
    anything of the app is opened or created, and bad input before anything is written.
    What is gated comes from the config and from the protection pinned in state.db
    (``shiplane.gate``); a refusal is recorded there (history), since nothing else is.
    A request that ``gated`` says the role rules or the gate decide carries how binding they
    are on this host (``protection``), whatever its outcome."""
    marks: dict[str, str] = {}
    facts = gate or GateFacts()
    presented = presented or Presented()

    def call() -> Result:
        nonlocal loaded
        loaded = load_validated(config_path, env, loaded)
        layout = Layout.for_app(loaded.config.app.name)
        mode = protection.mode_of(layout.server)
        if without_state is not None and (not needs_state or stateless.damaged(layout)):
            who = _who(caller, token, presented, mode, layout)
            run = stateless.Run(command, who, loaded, layout, mode, presented, progress)
            return run.body(without_state, rule, check)
        who = caller
        subject_env = env
        # Read-only until the checks pass: a refusal creates no app of its own.
        app_db = StateDB(layout.state_db) if layout.state_db.is_file() else None
        try:
            pins = guard.read_pins(app_db)
            gated_set = guard.gated_envs(loaded, pins)
            if gated is not None and gated(loaded, gated_set):
                marks.update(protection.marks(layout.server))
            if subject_env is None and facts.env_of is not None:
                subject_env = facts.env_of(app_db)
            try:
                who = _who(caller, token, presented, mode, layout)
                if rule is not None:
                    rule(loaded, who, gated_set)
                guard.refuse(
                    loaded,
                    command,
                    subject_env,
                    pins,
                    mode,
                    force="--force" in facts.flags,
                    ref=facts.ref,
                )
                if check is not None:
                    check(loaded, who)
            except RefusedError as exc:
                if app_db is not None:
                    _record_refusal(app_db, subject_env, command, who, exc, facts)
                raise
        finally:
            if app_db is not None:
                app_db.close()
        layout.server.ensure()
        if loaded.sent is not None:
            # The server's own copy, for what reads a file later (an instance's env file).
            layout.ensure()
            snapshot.write(loaded)
        host = StateDB(layout.server.state_db)
        try:
            with open_app_root(layout) as db, running.operation_scope():
                session = Session(
                    who, loaded, layout, db, host, open_target(layout), progress,
                    presented=presented, mode=mode,
                )  # fmt: skip
                before = state_copies.changes(db)
                if recover:
                    session.recovered = _recover.recover_stale(session)
                guard.apply(db, loaded, command, subject_env, mode, who.label)
                try:
                    result = body(session)
                except RefusedError as exc:
                    _record_refusal(db, subject_env, command, session.caller, exc, facts)
                    raise
                finally:
                    copied = state_copies.after(db, before)
                if copied is not None:
                    result.warnings.append(copied)
                return result
        finally:
            host.close()

    return _marked(guarded(command, env, call), marks)


def _who(
    caller: Caller, token: str | None, presented: Presented, mode: str, layout: Layout
) -> Caller:
    if token is None and presented.internal:
        return caller  # the server's own watch: it is the server, its actor says so
    if token is None and presented.server_token and mode == "enforced":
        return _server_holder(caller)
    return identify_on(layout.server, token, caller, presented.peer_uid)


def _server_holder(claimed: Caller) -> Caller:
    """Whoever presents the server's own token on an enforced host: root or the server's
    user, the host's administrators (only they can read it). Their role is a person's; a
    person's decision still needs their factor."""
    return Caller(role="person", label=f"server:{claimed.label.partition(':')[2] or 'admin'}")


@dataclass(frozen=True)
class GateFacts:
    """What the gate needs of a request beyond the config: the person-only flags it passes,
    and how to find its environment when no argument names it (``approve ID``)."""

    flags: tuple[str, ...] = ()
    env_of: Callable[[StateDB | None], str | None] | None = None
    ref: str | None = None  # what a refused deploy asked for: the next action carries it on


def _record_refusal(
    db: StateDB, env: str | None, command: str, who: Caller, exc: RefusedError, facts: GateFacts
) -> None:
    events.record(
        db,
        env,
        command,
        "refused",
        who.label,
        step=exc.step,
        message=exc.message,
        flags=list(facts.flags),
        forced="--force" in facts.flags,
    )


def _marked(result: Result, marks: dict[str, str]) -> Result:
    result.data.update(marks)
    return result


def identify_on(
    server: ServerLayout, token: str | None, claimed: Caller, peer_uid: int | None = None
) -> Caller:
    """``identify`` against the host's token store, creating nothing: a host without one has
    no tokens."""
    if not server.state_db.is_file():
        return identify(None, token, claimed)
    host = StateDB(server.state_db)
    try:
        return identify(host, token, claimed, peer_uid)
    finally:
        host.close()


def identify(
    host: StateDB | None, token: str | None, claimed: Caller, peer_uid: int | None = None
) -> Caller:
    """Who asks. With a token, its role; without one, the caller's own word (single-user mode,
    advisory) until this host has live tokens: from then on a token is required. A word is
    not a credential: without a token the record says ``agent:NAME`` or ``unknown``, never a
    person (``person:NAME`` needs a person token, and the factor for a person's decision)."""
    if token is not None:
        if host is None:
            raise RefusedError(
                "the token presented (SHIPLANE_TOKEN) is not valid: this host has no tokens",
                step="auth",
                next_action="unset SHIPLANE_TOKEN, or ask a person for a token of this host",
            )
        return authenticate(host, token, claimed, peer_uid)
    if host is not None and any(not record.revoked for record in TokenStore(host).list()):
        raise RefusedError(
            "this host has client tokens: every request must present one (SHIPLANE_TOKEN)",
            step="auth",
            next_action="set SHIPLANE_TOKEN to your token (a person creates one with "
            "`shiplane tokens create --role agent|person`)",
        )
    return claimed


def authenticate(db: StateDB, token: str, claimed: Caller, peer_uid: int | None = None) -> Caller:
    """The caller a presented token stands for; its role is the token's, whatever the label
    claims. A token is bound to the OS user that first presents it (``peer_uid``, from the
    socket): on an enforced host a person's token is no use to an agent running as another
    user, even if it got hold of the string."""
    record = TokenStore(db).verify(token, peer_uid)
    if record is None:
        raise RefusedError(
            "the token presented (SHIPLANE_TOKEN) is not valid: unknown, malformed, revoked, or "
            "bound to another OS user",
            step="auth",
            next_action="ask a person for a token: shiplane tokens create --role agent",
        )
    return Caller.from_token(record, claimed.label)


def validate_only(
    command: str,
    config_path: Path | None,
    env: str | None,
    check: Callable[[LoadedConfig, Caller], None] | None,
    caller: Caller,
    loaded: LoadedConfig | None = None,
    gated: Callable[[LoadedConfig, set[str]], bool] | None = None,
) -> Result:
    """The checks ``run_operation`` makes before it opens the root, and nothing else. A
    refusal found here says how binding it is, like the server's. The gate itself is the
    server's to decide (it knows the pins, and records the refusal)."""
    loaded = load_validated(config_path, env, loaded)
    marks: dict[str, str] = {}
    if gated is not None and gated(loaded, guard.gated_envs(loaded, {})):
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
        return Result(command=command, env=env).fail(failures.disk_full_instead(exc))
    except Exception as exc:
        known = failures.translate(exc)
        if known is not None:
            return Result(command=command, env=env).fail(known)
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
