"""Every operation once: what it runs and what it checks before any write (the api calls these)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shiplane import policy
from shiplane.caller import Caller
from shiplane.config.loader import LoadedConfig
from shiplane.errors import ConfigError
from shiplane.operations import database as _database
from shiplane.operations import deploy as _deploy
from shiplane.operations import migrations as _migrations
from shiplane.operations import promote as _promote
from shiplane.operations import recover as _recover
from shiplane.operations import rollback as _rollback
from shiplane.operations import status as _status
from shiplane.operations import tokens as _tokens
from shiplane.operations import verify as _verify
from shiplane.operations.session import Session
from shiplane.results import Result


@dataclass(frozen=True)
class Operation:
    body: Callable[..., Result]  # body(session, **args)
    check: Callable[..., None] | None = None  # check(loaded, caller, **args): before any write
    recover: bool = True
    command: Callable[[dict[str, Any]], str] | None = None  # the result's command, if not the name


def _check_deploy(
    loaded: LoadedConfig,
    caller: Caller,
    env: str,
    force: bool = False,
    **_: Any,
) -> None:
    _deploy.check_deploy(loaded, env, force, caller.person_verified)


def _deploy_body(
    s: Session,
    env: str,
    ref: str | None = None,
    force: bool = False,
    accept_drift: bool = False,
    source: dict[str, Any] | None = None,
) -> Result:
    del ref  # the client resolved it into ``source``
    return _deploy.deploy(s, env, source, force, accept_drift)


def _migrate_body(
    s: Session, env: str, action: str = "status", to: int | None = None, dry_run: bool = False
) -> Result:
    return _migrations.migrate(s, env, action, to, dry_run)


def _check_tokens_create(
    _loaded: LoadedConfig, caller: Caller, role: str, label: str | None = None, **_: Any
) -> None:
    policy.check_allowed(caller, "tokens create", gated=False)
    _tokens.check_create(role, label)


OPERATIONS: dict[str, Operation] = {
    "deploy": Operation(_deploy_body, check=_check_deploy),
    "verify": Operation(lambda s, env, only=None: _verify.verify(s, env, only)),
    "report": Operation(lambda s, verification_id: _verify.show_report(s, verification_id)),
    "promote": Operation(
        lambda s, env, approve=False: _promote.promote(s, env, approve),
        check=lambda loaded, _caller, env, **_: _promote.check_promote(loaded, env),
    ),
    "approve": Operation(lambda s, promotion_id: _promote.approve(s, promotion_id)),
    "reject": Operation(lambda s, promotion_id: _promote.reject(s, promotion_id)),
    "rollback": Operation(
        lambda s, env, to=None, restore_db=False: _rollback.rollback(s, env, to, restore_db)
    ),
    "status": Operation(lambda s, env=None: _status.status(s, env)),
    "history": Operation(
        lambda s, env=None, limit=20: _status.history(s, env, limit), recover=False
    ),
    "logs": Operation(
        lambda s, deployment_id, offset=0: _status.logs(s, deployment_id, offset), recover=False
    ),
    "migrate": Operation(
        _migrate_body,
        check=lambda _loaded, _caller, action="status", to=None, **_: _migrations.check_migrate(
            action, to
        ),
        command=lambda args: f"migrate {args.get('action', 'status')}",
    ),
    "backup": Operation(lambda s, env: _database.backup(s, env)),
    "backups": Operation(lambda s, env: _database.backups(s, env), recover=False),
    # Recovery runs first, so a later recovery cannot put a pre-deploy backup back over this.
    "restore": Operation(lambda s, env, backup_id: _database.restore(s, env, backup_id)),
    "recover": Operation(_recover.recover),
    # Tokens touch no deployment: a stale one is not these commands' to resolve.
    "tokens_create": Operation(
        lambda s, role, label=None: _tokens.create(s, role, label),
        check=_check_tokens_create,
        recover=False,
        command=lambda _args: "tokens create",
    ),
    "tokens_list": Operation(
        _tokens.list_tokens,
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


def _prepare(
    name: str, caller: Caller, args: dict[str, Any]
) -> tuple[Operation, str, Callable[[LoadedConfig], None] | None]:
    operation = OPERATIONS.get(name)
    if operation is None:
        raise ConfigError(
            f"no operation {name!r}", next_action=f"use one of: {', '.join(OPERATIONS)}"
        )
    command = operation.command(args) if operation.command else name
    check = operation.check

    def checked(loaded: LoadedConfig) -> None:
        if check is not None:
            check(loaded, caller, **args)

    return operation, command, checked


# Arguments that make an allowed operation a person's decision.
PERSON_FLAG_ARGS = {
    "force": "--force",
    "approve": "--approve",
    "discard_writes": "--discard-writes",
}


def rule_for(command: str, args: dict[str, Any]) -> Callable[[LoadedConfig, Caller], None]:
    """The role rule for this request (shiplane.policy), for a caller known by its token."""

    def rule(loaded: LoadedConfig, caller: Caller) -> None:
        env = args.get("env")
        environment = loaded.config.environments.get(env) if env else None
        flags = [flag for key, flag in PERSON_FLAG_ARGS.items() if args.get(key)]
        gated = environment is not None and environment.gated
        policy.check_allowed(caller, command, gated, flags=flags, env=env)

    return rule


def prepare(
    name: str, caller: Caller, args: dict[str, Any]
) -> tuple[Operation, str, Callable[[LoadedConfig], None]]:
    """The operation, the command its result names, and its pre-write check bound to ``args``."""
    operation = OPERATIONS.get(name)
    if operation is None:
        raise ConfigError(
            f"no operation {name!r}", next_action=f"use one of: {', '.join(OPERATIONS)}"
        )
    command = operation.command(args) if operation.command else name
    check = operation.check

    def checked(loaded: LoadedConfig) -> None:
        if check is not None:
            check(loaded, caller, **args)

    return operation, command, checked
