"""Every operation once: what it runs and what it checks before any write (the api calls these)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shiplane import ids, policy
from shiplane.caller import Caller
from shiplane.config.loader import LoadedConfig
from shiplane.errors import ConfigError
from shiplane.lazy import lazy_module
from shiplane.operations.request_rules import (
    PERSON_FLAG_ARGS,
    gate_facts_for,
    gated_for,
    rule_for,
)
from shiplane.operations.session import Session
from shiplane.results import Result

# The api reads the request rules from here, as before they had their own module.
__all__ = [
    "OPERATIONS",
    "PERSON_FLAG_ARGS",
    "Operation",
    "check_hold_timeout",
    "gate_facts_for",
    "gated_for",
    "prepare",
    "rule_for",
]

if TYPE_CHECKING:
    from shiplane.operations import database as _database
    from shiplane.operations import deploy as _deploy
    from shiplane.operations import env_logs as _env_logs
    from shiplane.operations import envvars as _envvars
    from shiplane.operations import maintenance as _maintenance
    from shiplane.operations import migrations as _migrations
    from shiplane.operations import notify_test as _notify_test
    from shiplane.operations import promote as _promote
    from shiplane.operations import protect as _protect
    from shiplane.operations import recover as _recover
    from shiplane.operations import restart as _restart
    from shiplane.operations import rollback as _rollback
    from shiplane.operations import run_command as _run_command
    from shiplane.operations import scale as _scale
    from shiplane.operations import state_restore as _state_restore
    from shiplane.operations import status as _status
    from shiplane.operations import tokens as _tokens
    from shiplane.operations import verify as _verify
else:
    # CLI startup: a client checking `status` imports neither the pipeline nor the checks
    # (shiplane.lazy); each operation's module loads when the operation is called.
    _database = lazy_module("shiplane.operations.database")
    _deploy = lazy_module("shiplane.operations.deploy")
    _env_logs = lazy_module("shiplane.operations.env_logs")
    _envvars = lazy_module("shiplane.operations.envvars")
    _maintenance = lazy_module("shiplane.operations.maintenance")
    _migrations = lazy_module("shiplane.operations.migrations")
    _notify_test = lazy_module("shiplane.operations.notify_test")
    _promote = lazy_module("shiplane.operations.promote")
    _protect = lazy_module("shiplane.operations.protect")
    _recover = lazy_module("shiplane.operations.recover")
    _restart = lazy_module("shiplane.operations.restart")
    _rollback = lazy_module("shiplane.operations.rollback")
    _scale = lazy_module("shiplane.operations.scale")
    _run_command = lazy_module("shiplane.operations.run_command")
    _state_restore = lazy_module("shiplane.operations.state_restore")
    _status = lazy_module("shiplane.operations.status")
    _tokens = lazy_module("shiplane.operations.tokens")
    _verify = lazy_module("shiplane.operations.verify")


@dataclass(frozen=True)
class Operation:
    body: Callable[..., Result]  # body(session, **args)
    check: Callable[..., None] | None = None  # check(loaded, caller, **args): before any write
    recover: bool = True
    command: Callable[[dict[str, Any]], str] | None = None  # the result's command, if not the name
    # Run instead of ``body`` while the app's state.db is damaged (None: such an operation
    # stops, exit 7); with ``needs_state=False``, always (``state restore`` replaces it).
    without_state: Callable[..., Result] | None = None
    needs_state: bool = True


def _check_deploy(
    loaded: LoadedConfig,
    caller: Caller,
    env: str,
    force: bool = False,
    ref: str | None = None,
    **_: Any,
) -> None:
    del caller  # the gate itself is decided in the server (shiplane.gate.guard)
    _deploy.check_deploy(loaded, env, force, ref)


def _deploy_body(
    s: Session,
    env: str,
    ref: str | None = None,
    force: bool = False,
    accept_drift: bool = False,
    source: dict[str, Any] | None = None,
    include_rolled_back: bool = False,
    redeploy: bool = False,
    hold_timeout: float | None = None,
    wait_drain: bool = False,
    wait_watch: bool = False,
) -> Result:
    del ref  # the client resolved it into ``source``
    return _deploy.deploy(
        s,
        env,
        source,
        force,
        accept_drift,
        include_rolled_back,
        redeploy=redeploy,
        hold_timeout=hold_timeout,
        wait_drain=wait_drain,
        wait_watch=wait_watch,
    )


def _promote_body(
    s: Session,
    env: str,
    approve: bool = False,
    include_rolled_back: bool = False,
    redeploy: bool = False,
    hold_timeout: float | None = None,
    wait_drain: bool = False,
    wait_watch: bool = False,
) -> Result:
    return _promote.promote(
        s,
        env,
        approve,
        include_rolled_back,
        redeploy,
        hold_timeout,
        wait_drain,
        wait_watch=wait_watch,
    )


def _rollback_body(
    s: Session,
    env: str,
    to: str | None = None,
    restore_db: bool = False,
    discard_writes: bool = False,
    hold_timeout: float | None = None,
    wait_drain: bool = False,
    keep_schema: bool = False,
) -> Result:
    return _rollback.rollback(
        s,
        env,
        to,
        restore_db,
        discard_writes,
        hold_timeout=hold_timeout,
        wait_drain=wait_drain,
        keep_schema=keep_schema,
    )


def check_hold_timeout(value: Any) -> None:
    """``--hold-timeout``: a number of seconds above zero (ConfigError, exit 64, otherwise)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ConfigError(
            f"--hold-timeout {value!r}: must be a number of seconds above 0",
            step="usage",
            next_action="e.g. --hold-timeout 60 (how long a request may wait during a hold)",
        )


def _check_hold(_loaded: LoadedConfig, _caller: Caller, hold_timeout: Any = None, **_: Any) -> None:
    check_hold_timeout(hold_timeout)


def _check_promote(
    loaded: LoadedConfig, _caller: Caller, env: str, hold_timeout: Any = None, **_: Any
) -> None:
    check_hold_timeout(hold_timeout)
    _promote.check_promote(loaded, env)


def _migrate_body(
    s: Session,
    env: str,
    action: str = "status",
    to: int | None = None,
    dry_run: bool = False,
    source: dict[str, Any] | None = None,
) -> Result:
    return _migrations.migrate(s, env, action, to, dry_run, source)


def _logs_body(
    s: Session,
    deployment_id: str | None = None,
    offset: int = 0,
    env: str | None = None,
    cursor: str | None = None,
    lines: int = 100,
) -> Result:
    """One deployment's log, or (``env``) the app's own output."""
    if env is not None:
        return _env_logs.env_logs(s, env, cursor, lines)
    if deployment_id is None:
        raise ConfigError(
            "which log? a deployment id, or --env ENV for the app's output",
            step="usage",
            next_action="shiplane history   # lists deployment ids",
        )
    return _status.logs(s, deployment_id, offset)


def _check_tokens_create(
    _loaded: LoadedConfig, caller: Caller, role: str, label: str | None = None, **_: Any
) -> None:
    policy.check_allowed(caller, "tokens create", gated=False)
    _tokens.check_create(role, label)


OPERATIONS: dict[str, Operation] = {
    "deploy": Operation(_deploy_body, check=_check_hold),
    "verify": Operation(lambda s, env, only=None: _verify.verify(s, env, only)),
    "report": Operation(lambda s, verification_id: _verify.show_report(s, verification_id)),
    "promote": Operation(
        _promote_body,
        check=_check_promote,
    ),
    "approve": Operation(
        lambda s, promotion_id, include_rolled_back=False: _promote.approve(
            s, promotion_id, include_rolled_back
        )
    ),
    "reject": Operation(lambda s, promotion_id: _promote.reject(s, promotion_id)),
    "rollback": Operation(
        _rollback_body,
        check=_check_hold,
    ),
    "status": Operation(lambda s, env=None: _status.status(s, env)),
    "history": Operation(
        lambda s, env=None, limit=20: _status.history(s, env, limit), recover=False
    ),
    "logs": Operation(_logs_body, recover=False),
    "migrate": Operation(
        _migrate_body,
        check=lambda _loaded, _caller, action="status", to=None, **_: _migrations.check_migrate(
            action, to
        ),
        command=lambda args: f"migrate {args.get('action', 'status')}",
    ),
    "backup": Operation(
        lambda s, env: _database.backup(s, env),
        without_state=lambda s, env: _database.backup_without_state(s, env),
    ),
    "backups": Operation(lambda s, env: _database.backups(s, env), recover=False),
    # Recovery runs first, so a later recovery cannot put a pre-deploy backup back over this.
    "restore": Operation(
        lambda s, env, backup_id, discard_writes=False: _database.restore(
            s, env, backup_id, discard_writes
        )
    ),
    "recover": Operation(
        lambda s, **args: _recover.recover(s, **args),
        command=lambda args: "recover resolve" if args.get("resolve") else "recover",
    ),
    "state_restore": Operation(
        lambda s, **args: _state_restore.state_restore(s, **args),
        without_state=lambda run, **args: _state_restore.state_restore(run, **args),
        needs_state=False,
        recover=False,
        command=lambda _args: "state restore",
    ),
    "restart": Operation(lambda s, env, wait_drain=False: _restart.restart(s, env, wait_drain)),
    "notify_test": Operation(
        lambda s, env=None: _notify_test.notify_test(s, env), command=lambda _args: "notify test"
    ),
    "scale": Operation(
        lambda s, env, assignments: _scale.scale(s, env, assignments),
        check=lambda _loaded, _caller, assignments, **_: _scale.check_scale(assignments),
    ),
    "env_set": Operation(
        lambda s, env, assignments, secret=False: _envvars.env_set(s, env, assignments, secret),
        check=lambda _loaded, _caller, assignments, secret=False, **_: _envvars.check_set(
            assignments, secret
        ),
        command=lambda _args: "env set",
    ),
    "env_unset": Operation(
        lambda s, env, keys: _envvars.env_unset(s, env, keys),
        check=lambda _loaded, _caller, keys, **_: _envvars.check_unset(keys),
        command=lambda _args: "env unset",
    ),
    # A listing writes nothing and shows no secret: no stale work is its to resolve.
    "env_list": Operation(
        lambda s, env: _envvars.env_list(s, env), recover=False, command=lambda _args: "env list"
    ),
    # timeout=None is run_command.DEFAULT_TIMEOUT, read when the operation runs (the module
    # loads lazily, see above).
    "run": Operation(
        lambda s, env, command, timeout=None: _run_command.run_command(
            s, env, command, _run_command.DEFAULT_TIMEOUT if timeout is None else timeout
        ),
        check=lambda _loaded, _caller, command, timeout=None, **_: _run_command.check_run(
            command, _run_command.DEFAULT_TIMEOUT if timeout is None else timeout
        ),
    ),
    # Changes no deployment: stale work is not its to resolve (and must not delay the page).
    "maintenance": Operation(
        lambda s, env, state: _maintenance.maintenance(s, env, state),
        check=lambda _loaded, _caller, env, state, **_: _maintenance.check_maintenance(env, state),
        recover=False,
        command=lambda args: f"maintenance {args.get('state')}",
    ),
    "protect": Operation(lambda s, env: _protect.protect(s, env), recover=False),
    "approvers_add": Operation(
        lambda s, approver_name, kind, value=None: _protect.approvers_add(
            s, approver_name, kind, value
        ),
        check=lambda _loaded, _caller, approver_name, kind, value=None, **_: _protect.check_add(
            approver_name, kind, value
        ),
        recover=False,
        command=lambda _args: "approvers add",
    ),
    "approvers_list": Operation(
        _protect.approvers_list, recover=False, command=lambda _args: "approvers list"
    ),
    "approvers_remove": Operation(
        lambda s, approver_name: _protect.approvers_remove(s, approver_name),
        recover=False,
        command=lambda _args: "approvers remove",
    ),
    # A challenge grants nothing by itself: anyone may ask for one.
    "challenge": Operation(
        lambda s, action, env=None, promotion_id=None, sha=None, subject=None: _protect.challenge(
            s, action, env, promotion_id, sha, subject
        ),
        recover=False,
    ),
    # Tokens touch no deployment: a stale one is not these commands' to resolve.
    "tokens_create": Operation(
        lambda s, role, label=None: _tokens.create(s, role, label),
        check=_check_tokens_create,
        recover=False,
        command=lambda _args: "tokens create",
    ),
    "tokens_list": Operation(
        lambda s: _tokens.list_tokens(s),
        check=lambda _loaded, caller, **_: policy.check_allowed(caller, "tokens list", False),
        recover=False,
        command=lambda _args: "tokens list",
    ),
    "tokens_revoke": Operation(
        lambda s, token_id: _tokens.revoke(s, token_id),
        check=lambda _loaded, caller, **_: policy.check_allowed(caller, "tokens revoke", False),
        recover=False,
        command=lambda _args: "tokens revoke",
    ),
}


def prepare(
    name: str, args: dict[str, Any]
) -> tuple[Operation, str, Callable[[LoadedConfig, Caller], None]]:
    """The operation, the command its result names, and its pre-write check bound to ``args``.
    Arguments the operation does not take are a usage error here, before anything runs."""
    operation = OPERATIONS.get(name)
    if operation is None:
        raise ConfigError(
            f"no operation {name!r}", next_action=f"use one of: {', '.join(OPERATIONS)}"
        )
    try:
        inspect.signature(operation.body).bind(None, **args)
    except TypeError as exc:
        raise ConfigError(
            f"operation {name}: {exc}", step="usage", next_action=f"see `shiplane {name} --help`"
        ) from None
    ids.check_arguments(args)  # before the operation's own checks: a bad id names nothing
    command = operation.command(args) if operation.command else name
    check = operation.check

    def checked(loaded: LoadedConfig, caller: Caller) -> None:
        if check is not None:
            check(loaded, caller, **args)

    return operation, command, checked
