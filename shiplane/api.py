"""The public operations: the one boundary the CLI (and later the MCP server and the dashboard)
calls. Each takes the Caller, validates before it writes, recovers stale work, and returns a
Result whose exit code says what happened; none of them raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shiplane import policy as _policy
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
from shiplane.operations import tokens as _tokens
from shiplane.operations import verify as _verify

if TYPE_CHECKING:
    from pathlib import Path

    from shiplane.caller import Caller
    from shiplane.config.loader import LoadedConfig
    from shiplane.pipeline.context import Progress
    from shiplane.results import Result

__all__ = [
    "approve",
    "backup",
    "backups",
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
    "tokens_create",
    "tokens_list",
    "tokens_revoke",
    "verify",
]


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
    def check(loaded: LoadedConfig) -> None:
        _deploy.check_deploy(loaded, env, ref, force, caller.person_verified)

    return _boundary.run_operation(
        "deploy",
        caller,
        lambda s: _deploy.deploy(s, env, ref, force, accept_drift),
        config_path=config_path,
        env=env,
        check=check,
        progress=progress,
    )


def verify(
    caller: Caller, env: str, *, only: str | None = None, config_path: Path | None = None
) -> Result:
    return _boundary.run_operation(
        "verify", caller, lambda s: _verify.verify(s, env, only), config_path=config_path, env=env
    )


def report(caller: Caller, verification_id: str, *, config_path: Path | None = None) -> Result:
    return _boundary.run_operation(
        "report", caller, lambda s: _verify.show_report(s, verification_id), config_path=config_path
    )


def promote(
    caller: Caller,
    env: str,
    *,
    approve: bool = False,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    return _boundary.run_operation(
        "promote",
        caller,
        lambda s: _promote.promote(s, env, approve),
        config_path=config_path,
        env=env,
        check=lambda loaded: _promote.check_promote(loaded, env),
        progress=progress,
    )


def approve(
    caller: Caller,
    promotion_id: str,
    *,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    return _boundary.run_operation(
        "approve",
        caller,
        lambda s: _promote.approve(s, promotion_id),
        config_path=config_path,
        progress=progress,
    )


def reject(caller: Caller, promotion_id: str, *, config_path: Path | None = None) -> Result:
    return _boundary.run_operation(
        "reject", caller, lambda s: _promote.reject(s, promotion_id), config_path=config_path
    )


def rollback(
    caller: Caller,
    env: str,
    *,
    to: str | None = None,
    restore_db: bool = False,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    return _boundary.run_operation(
        "rollback",
        caller,
        lambda s: _rollback.rollback(s, env, to, restore_db),
        config_path=config_path,
        env=env,
        progress=progress,
    )


def status(caller: Caller, env: str | None = None, *, config_path: Path | None = None) -> Result:
    return _boundary.run_operation(
        "status", caller, lambda s: _status.status(s, env), config_path=config_path, env=env
    )


def history(
    caller: Caller, env: str | None = None, *, limit: int = 20, config_path: Path | None = None
) -> Result:
    return _boundary.run_operation(
        "history",
        caller,
        lambda s: _status.history(s, env, limit),
        config_path=config_path,
        env=env,
        recover=False,
    )


def logs(caller: Caller, deployment_id: str, *, config_path: Path | None = None) -> Result:
    return _boundary.run_operation(
        "logs",
        caller,
        lambda s: _status.logs(s, deployment_id),
        config_path=config_path,
        recover=False,
    )


def migrate(
    caller: Caller,
    env: str,
    action: str = "status",
    *,
    to: int | None = None,
    dry_run: bool = False,
    config_path: Path | None = None,
) -> Result:
    return _boundary.run_operation(
        f"migrate {action}",
        caller,
        lambda s: _migrations.migrate(s, env, action, to, dry_run),
        config_path=config_path,
        env=env,
        check=lambda _loaded: _migrations.check_migrate(action, to),
    )


def backup(caller: Caller, env: str, *, config_path: Path | None = None) -> Result:
    return _boundary.run_operation(
        "backup", caller, lambda s: _database.backup(s, env), config_path=config_path, env=env
    )


def backups(caller: Caller, env: str, *, config_path: Path | None = None) -> Result:
    return _boundary.run_operation(
        "backups",
        caller,
        lambda s: _database.backups(s, env),
        config_path=config_path,
        env=env,
        recover=False,
    )


def restore(caller: Caller, env: str, backup_id: str, *, config_path: Path | None = None) -> Result:
    # Recovery runs first, so a later recovery cannot put a pre-deploy backup back over this.
    return _boundary.run_operation(
        "restore",
        caller,
        lambda s: _database.restore(s, env, backup_id),
        config_path=config_path,
        env=env,
    )


def recover(caller: Caller, *, config_path: Path | None = None) -> Result:
    return _boundary.run_operation("recover", caller, _recover.recover, config_path=config_path)


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


def tokens_create(
    caller: Caller, role: str, *, label: str | None = None, config_path: Path | None = None
) -> Result:
    """Mint a token for ``role`` (agent | person); the result's ``token`` is its only showing."""

    def check(_loaded: LoadedConfig) -> None:
        _policy.check_allowed(caller, "tokens create", gated=False)
        _tokens.check_create(role, label)

    return _boundary.run_operation(
        "tokens create",
        caller,
        lambda s: _tokens.create(s, role, label),
        config_path=config_path,
        check=check,
        recover=False,  # touches no deployment: a stale one is not this command's to resolve
    )


def tokens_list(caller: Caller, *, config_path: Path | None = None) -> Result:
    return _boundary.run_operation(
        "tokens list",
        caller,
        _tokens.list_tokens,
        config_path=config_path,
        check=lambda _loaded: _policy.check_allowed(caller, "tokens list", gated=False),
        recover=False,
    )


def tokens_revoke(caller: Caller, token_id: str, *, config_path: Path | None = None) -> Result:
    return _boundary.run_operation(
        "tokens revoke",
        caller,
        lambda s: _tokens.revoke(s, token_id),
        config_path=config_path,
        check=lambda _loaded: _policy.check_allowed(caller, "tokens revoke", gated=False),
        recover=False,
    )
