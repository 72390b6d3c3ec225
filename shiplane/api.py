"""The public operations: the one boundary the CLI, the server (and later the MCP server and the
dashboard) call. Each takes the Caller, validates before it writes, recovers stale work, and
returns a Result whose exit code says what happened; none of them raises.

``OPERATIONS`` names each operation once: what it runs, what it checks before any write. The
server runs them (``call``); a client checks a request first (``validate``) so that bad input
never reaches, or starts, a server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shiplane.errors import ConfigError
from shiplane.operations import boundary as _boundary
from shiplane.operations import database as _database
from shiplane.operations import deploy as _deploy
from shiplane.operations import init as _init
from shiplane.operations import migrations as _migrations
from shiplane.operations import promote as _promote
from shiplane.operations import recover as _recover
from shiplane.operations import rollback as _rollback
from shiplane.operations import server as _server
from shiplane.operations import status as _status
from shiplane.operations import verify as _verify

if TYPE_CHECKING:
    from pathlib import Path

    from shiplane.caller import Caller
    from shiplane.config.loader import LoadedConfig
    from shiplane.operations.session import Session
    from shiplane.pipeline.context import Progress
    from shiplane.results import Result

__all__ = [
    "OPERATIONS",
    "Operation",
    "approve",
    "backup",
    "backups",
    "call",
    "deploy",
    "history",
    "init",
    "logs",
    "migrate",
    "promote",
    "recover",
    "reject",
    "report",
    "restore",
    "rollback",
    "server",
    "status",
    "validate",
    "verify",
]


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
    ref: str | None = None,
    force: bool = False,
    **_: Any,
) -> None:
    _deploy.check_deploy(loaded, env, ref, force, caller.person_verified)


def _deploy_body(
    s: Session, env: str, ref: str | None = None, force: bool = False, accept_drift: bool = False
) -> Result:
    return _deploy.deploy(s, env, ref, force, accept_drift)


def _migrate_body(
    s: Session, env: str, action: str = "status", to: int | None = None, dry_run: bool = False
) -> Result:
    return _migrations.migrate(s, env, action, to, dry_run)


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


def call(
    name: str,
    caller: Caller,
    *,
    config_path: Path | None = None,
    progress: Progress | None = None,
    **args: Any,
) -> Result:
    """Run operation ``name`` with ``args`` (its keyword arguments) for ``caller``."""

    def run() -> Result:
        operation, command, checked = _prepare(name, caller, args)
        return _boundary.run_operation(
            command,
            caller,
            lambda s: operation.body(s, **args),
            config_path=config_path,
            env=args.get("env"),
            check=checked,
            progress=progress,
            recover=operation.recover,
        )

    return _boundary.guarded(name, args.get("env"), run)


def validate(
    name: str, caller: Caller, *, config_path: Path | None = None, **args: Any
) -> Result | None:
    """What ``call`` checks before it writes, and nothing else: a failed Result, or None."""

    def run() -> Result:
        _operation, command, checked = _prepare(name, caller, args)
        return _boundary.validate_only(command, config_path, args.get("env"), checked)

    checked = _boundary.guarded(name, args.get("env"), run)
    return None if checked.ok else checked


def deploy(
    caller: Caller,
    env: str,
    *,
    ref: str | None = None,
    force: bool = False,
    accept_drift: bool = False,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    return call(
        "deploy",
        caller,
        config_path=config_path,
        progress=progress,
        env=env,
        ref=ref,
        force=force,
        accept_drift=accept_drift,
    )


def verify(
    caller: Caller, env: str, *, only: str | None = None, config_path: Path | None = None
) -> Result:
    return call("verify", caller, config_path=config_path, env=env, only=only)


def report(caller: Caller, verification_id: str, *, config_path: Path | None = None) -> Result:
    return call("report", caller, config_path=config_path, verification_id=verification_id)


def promote(
    caller: Caller,
    env: str,
    *,
    approve: bool = False,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    return call(
        "promote", caller, config_path=config_path, progress=progress, env=env, approve=approve
    )


def approve(
    caller: Caller,
    promotion_id: str,
    *,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    return call(
        "approve", caller, config_path=config_path, progress=progress, promotion_id=promotion_id
    )


def reject(caller: Caller, promotion_id: str, *, config_path: Path | None = None) -> Result:
    return call("reject", caller, config_path=config_path, promotion_id=promotion_id)


def rollback(
    caller: Caller,
    env: str,
    *,
    to: str | None = None,
    restore_db: bool = False,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    return call(
        "rollback",
        caller,
        config_path=config_path,
        progress=progress,
        env=env,
        to=to,
        restore_db=restore_db,
    )


def status(caller: Caller, env: str | None = None, *, config_path: Path | None = None) -> Result:
    return call("status", caller, config_path=config_path, env=env)


def history(
    caller: Caller, env: str | None = None, *, limit: int = 20, config_path: Path | None = None
) -> Result:
    return call("history", caller, config_path=config_path, env=env, limit=limit)


def logs(caller: Caller, deployment_id: str, *, config_path: Path | None = None) -> Result:
    return call("logs", caller, config_path=config_path, deployment_id=deployment_id)


def migrate(
    caller: Caller,
    env: str,
    action: str = "status",
    *,
    to: int | None = None,
    dry_run: bool = False,
    config_path: Path | None = None,
) -> Result:
    return call(
        "migrate", caller, config_path=config_path, env=env, action=action, to=to, dry_run=dry_run
    )


def backup(caller: Caller, env: str, *, config_path: Path | None = None) -> Result:
    return call("backup", caller, config_path=config_path, env=env)


def backups(caller: Caller, env: str, *, config_path: Path | None = None) -> Result:
    return call("backups", caller, config_path=config_path, env=env)


def restore(caller: Caller, env: str, backup_id: str, *, config_path: Path | None = None) -> Result:
    return call("restore", caller, config_path=config_path, env=env, backup_id=backup_id)


def recover(caller: Caller, *, config_path: Path | None = None) -> Result:
    return call("recover", caller, config_path=config_path)


def init(
    caller: Caller,
    *,
    directory: Path | None = None,
    name: str | None = None,
    force: bool = False,
) -> Result:
    return _boundary.guarded(
        "init", None, lambda: _init.init(directory=directory, name=name, force=force)
    )


def server(
    caller: Caller,
    action: str = "start",
    *,
    root: Path | None = None,
    config_path: Path | None = None,
) -> Result:
    """Start (in the background), stop, or describe this host's shiplane server."""
    return _boundary.guarded(
        f"server {action}".strip(), None, lambda: _server.server(action, root, config_path)
    )
