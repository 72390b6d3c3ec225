"""The public operations: the one boundary the CLI, the server (and later the MCP server and the
dashboard) call. Each takes the Caller, validates before it writes, recovers stale work, and
returns a Result whose exit code says what happened; none of them raises.

``shiplane.operations.registry`` names each operation once: what it runs, what it checks before
any write. The server runs them (``call``); a client checks a request first (``validate``) so
that bad input never reaches, or starts, a server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shiplane import results as _results
from shiplane.lazy import lazy_module as _lazy_module

if TYPE_CHECKING:
    from shiplane import hostinstall as _hostinstall
    from shiplane.operations import boundary as _boundary
    from shiplane.operations import init as _init
    from shiplane.operations import registry as _registry
    from shiplane.operations import server as _server
else:
    # CLI startup: a command imports only the operations it calls (shiplane.lazy).
    _hostinstall = _lazy_module("shiplane.hostinstall")
    _boundary = _lazy_module("shiplane.operations.boundary")
    _init = _lazy_module("shiplane.operations.init")
    _registry = _lazy_module("shiplane.operations.registry")
    _server = _lazy_module("shiplane.operations.server")

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

    from shiplane.caller import Caller
    from shiplane.config.loader import LoadedConfig
    from shiplane.hostinstall import InstallOptions
    from shiplane.operations.session import Presented, Session
    from shiplane.pipeline.context import Progress
    from shiplane.results import Result

__all__ = [
    "approve",
    "approvers_add",
    "approvers_list",
    "approvers_remove",
    "backup",
    "backups",
    "call",
    "challenge",
    "deploy",
    "env_list",
    "env_set",
    "env_unset",
    "history",
    "init",
    "logs",
    "maintenance",
    "migrate",
    "notify_test",
    "promote",
    "protect",
    "recover",
    "reject",
    "report",
    "restart",
    "restore",
    "rollback",
    "run",
    "scale",
    "server",
    "server_config",
    "server_install",
    "state_restore",
    "status",
    "tokens_create",
    "tokens_list",
    "tokens_revoke",
    "validate",
    "verify",
]


def call(
    name: str,
    caller: Caller,
    *,
    config_path: Path | None = None,
    progress: Progress | None = None,
    token: str | None = None,
    loaded: LoadedConfig | None = None,
    presented: Presented | None = None,
    **args: Any,
) -> Result:
    """Run operation ``name`` with ``args`` (its keyword arguments) for ``caller``. With a
    ``token``, the caller's role is the token's and the role rules apply (shiplane.policy);
    without one the caller is taken at its word (single-user mode: advisory). ``loaded`` is a
    config a client sent (``shiplane.config.snapshot``), used instead of ``config_path``;
    ``presented`` what the server learned of the request (a person's factor, the peer)."""

    def run() -> Result:
        operation, command, checked = _registry.prepare(name, args)
        return _boundary.run_operation(
            command,
            caller,
            lambda s: operation.body(s, **args),
            config_path=config_path,
            env=args.get("env"),
            check=checked,
            progress=progress,
            recover=operation.recover,
            token=token,
            rule=_registry.rule_for(command, args),
            loaded=loaded,
            gated=_registry.gated_for(command, args),
            gate=_registry.gate_facts_for(name, args),
            presented=presented,
            without_state=_without_state(operation, args),
            needs_state=operation.needs_state,
        )

    return _boundary.guarded(name, args.get("env"), run)


def _without_state(
    operation: _registry.Operation, args: dict[str, Any]
) -> Callable[[Session], Result] | None:
    fallback = operation.without_state
    if fallback is None:
        return None
    return lambda s: fallback(s, **args)


def validate(
    name: str,
    caller: Caller,
    *,
    config_path: Path | None = None,
    loaded: LoadedConfig | None = None,
    **args: Any,
) -> Result | None:
    """What ``call`` checks before it writes, and nothing else: a failed Result, or None."""

    def run() -> Result:
        _operation, command, checked = _registry.prepare(name, args)
        return _boundary.validate_only(
            command,
            config_path,
            args.get("env"),
            checked,
            caller,
            loaded,
            gated=_registry.gated_for(command, args),
        )

    checked = _boundary.guarded(name, args.get("env"), run)
    return None if checked.ok else checked


def deploy(
    caller: Caller,
    env: str,
    *,
    ref: str | None = None,
    force: bool = False,
    accept_drift: bool = False,
    include_rolled_back: bool = False,
    redeploy: bool = False,
    hold_timeout: float | None = None,
    wait_drain: bool = False,
    wait_watch: bool = False,
    source: dict[str, Any] | None = None,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    """Deploy ``source`` (a ``shiplane.gitops.server_repo.SentSource`` as a dict: the commit a
    client has pushed to the server's repository); ``ref`` is what the user asked for.
    ``include_rolled_back`` lets it bring back commits a rollback took out of ``env``;
    ``redeploy`` ships it even when exactly that already serves;
    ``hold_timeout`` bounds a held migration's wait (``shiplane.pipeline.forward_hold``).
    The result comes once the new version serves; ``wait_drain`` waits for the old instance's
    drain too; ``wait_watch`` for the watch after the switch (exit 4 when it rolled back)."""
    return call(
        "deploy",
        caller,
        config_path=config_path,
        progress=progress,
        env=env,
        ref=ref,
        force=force,
        accept_drift=accept_drift,
        include_rolled_back=include_rolled_back,
        redeploy=redeploy,
        hold_timeout=hold_timeout,
        wait_drain=wait_drain,
        wait_watch=wait_watch,
        source=source,
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
    include_rolled_back: bool = False,
    hold_timeout: float | None = None,
    wait_drain: bool = False,
    wait_watch: bool = False,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    """Like ``deploy``, the result comes once the promoted release serves; ``wait_drain``
    waits for the replaced instance's drain too."""
    return call(
        "promote",
        caller,
        config_path=config_path,
        progress=progress,
        env=env,
        approve=approve,
        include_rolled_back=include_rolled_back,
        hold_timeout=hold_timeout,
        wait_drain=wait_drain,
        wait_watch=wait_watch,
    )


def approve(
    caller: Caller,
    promotion_id: str,
    *,
    include_rolled_back: bool = False,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    return call(
        "approve",
        caller,
        config_path=config_path,
        progress=progress,
        promotion_id=promotion_id,
        include_rolled_back=include_rolled_back,
    )


def reject(caller: Caller, promotion_id: str, *, config_path: Path | None = None) -> Result:
    return call("reject", caller, config_path=config_path, promotion_id=promotion_id)


def rollback(
    caller: Caller,
    env: str,
    *,
    to: str | None = None,
    restore_db: bool = False,
    discard_writes: bool = False,
    hold_timeout: float | None = None,
    wait_drain: bool = False,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    """Like ``deploy``, the result comes once the old release serves again; ``wait_drain``
    waits for the drained instance too."""
    return call(
        "rollback",
        caller,
        config_path=config_path,
        progress=progress,
        env=env,
        to=to,
        restore_db=restore_db,
        discard_writes=discard_writes,
        hold_timeout=hold_timeout,
        wait_drain=wait_drain,
    )


def status(caller: Caller, env: str | None = None, *, config_path: Path | None = None) -> Result:
    return call("status", caller, config_path=config_path, env=env)


def history(
    caller: Caller, env: str | None = None, *, limit: int = 20, config_path: Path | None = None
) -> Result:
    return call("history", caller, config_path=config_path, env=env, limit=limit)


def logs(
    caller: Caller,
    deployment_id: str | None = None,
    *,
    env: str | None = None,
    cursor: str | None = None,
    lines: int = 100,
    config_path: Path | None = None,
) -> Result:
    """One deployment's log, or with ``env`` the app's own output (from ``cursor`` on)."""
    if env is not None:
        return call("logs", caller, config_path=config_path, env=env, cursor=cursor, lines=lines)
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


def restore(
    caller: Caller,
    env: str,
    backup_id: str,
    *,
    discard_writes: bool = False,
    config_path: Path | None = None,
) -> Result:
    return call(
        "restore",
        caller,
        config_path=config_path,
        env=env,
        backup_id=backup_id,
        discard_writes=discard_writes,
    )


def recover(
    caller: Caller, *, resolve: str | None = None, config_path: Path | None = None
) -> Result:
    """Finish what dead deployments left; ``resolve``: mark a failed undo as settled by hand."""
    return call("recover", caller, config_path=config_path, resolve=resolve)


def state_restore(
    caller: Caller, *, source: str | None = None, config_path: Path | None = None
) -> Result:
    """Put the newest good copy of the app's state.db back (or ``source``): a person's
    decision. Pins stay as they are now; tokens and approvers live elsewhere (host.db)."""
    return call("state_restore", caller, config_path=config_path, source=source)


def init(
    caller: Caller,
    *,
    directory: Path | None = None,
    name: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    dev_port: int | None = None,
    prod_port: int | None = None,
    probe: bool = True,
    dev_database_url: str | None = None,
    prod_database_url: str | None = None,
) -> Result:
    return _boundary.guarded(
        "init",
        None,
        lambda: _init.init(
            directory=directory,
            name=name,
            force=force,
            dry_run=dry_run,
            probe=probe,
            dev_database_url=dev_database_url,
            prod_database_url=prod_database_url,
            dev_port=dev_port,
            prod_port=prod_port,
        ),
    )


def server(
    caller: Caller,
    action: str = "start",
    *,
    root: Path | None = None,
    config_path: Path | None = None,
    token: str | None = None,
) -> Result:
    """Start (in the background), stop (a person's call), or describe this host's server."""
    return _boundary.guarded(
        f"server {action}".strip(),
        None,
        lambda: _server.server(action, root, config_path, caller, token),
    )


def server_config(
    assignments: list[str], *, root: Path | None = None, config_path: Path | None = None
) -> Result:
    """The host server's settings (``instance_ports``); ``KEY=VALUE`` items set them."""
    return _boundary.guarded(
        "server config", None, lambda: _server.server_config(root, config_path, assignments)
    )


def server_install(options: InstallOptions) -> Result:
    """Put this host in enforced mode (as root): the server's user and groups, its home, the
    socket directory, the marker, the systemd unit and the supervisor program. Idempotent."""

    def run() -> Result:
        result = _results.Result(command="server install")
        result.data.update(_hostinstall.install(options))
        return result

    return _boundary.guarded("server install", None, run)


def tokens_create(
    caller: Caller, role: str, *, label: str | None = None, config_path: Path | None = None
) -> Result:
    """Mint a token for ``role`` (agent | person); the result's ``token`` is its only showing."""
    return call("tokens_create", caller, config_path=config_path, role=role, label=label)


def tokens_list(caller: Caller, *, config_path: Path | None = None) -> Result:
    return call("tokens_list", caller, config_path=config_path)


def tokens_revoke(caller: Caller, token_id: str, *, config_path: Path | None = None) -> Result:
    return call("tokens_revoke", caller, config_path=config_path, token_id=token_id)


def restart(
    caller: Caller,
    env: str,
    *,
    wait_drain: bool = False,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    """A fresh instance of the serving release, switched to with no request dropped; the
    result comes at the switch, or with ``wait_drain`` once the replaced instance drained."""
    return call(
        "restart",
        caller,
        config_path=config_path,
        progress=progress,
        env=env,
        wait_drain=wait_drain,
    )


def notify_test(
    caller: Caller, env: str | None = None, *, config_path: Path | None = None
) -> Result:
    """Send one test message to every [notify] URL (placeholders from ``env``'s env file)."""
    return call("notify_test", caller, config_path=config_path, env=env)


def scale(
    caller: Caller, env: str, assignments: list[str], *, config_path: Path | None = None
) -> Result:
    """Run NAME=COUNT of each named worker of what serves ``env``, with no new release."""
    return call("scale", caller, config_path=config_path, env=env, assignments=assignments)


def env_set(
    caller: Caller,
    env: str,
    assignments: list[str],
    *,
    secret: bool = False,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    """Keep ``KEY=VALUE`` variables (``secret``: never shown again) for ``env`` and restart it."""
    return call(
        "env_set",
        caller,
        config_path=config_path,
        progress=progress,
        env=env,
        assignments=assignments,
        secret=secret,
    )


def env_unset(
    caller: Caller,
    env: str,
    keys: list[str],
    *,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    return call("env_unset", caller, config_path=config_path, progress=progress, env=env, keys=keys)


def env_list(caller: Caller, env: str, *, config_path: Path | None = None) -> Result:
    return call("env_list", caller, config_path=config_path, env=env)


def run(
    caller: Caller,
    env: str,
    command: list[str],
    *,
    timeout: float = 600.0,
    config_path: Path | None = None,
) -> Result:
    """Run ``command`` once in the serving release with the app's environment."""
    return call("run", caller, config_path=config_path, env=env, command=command, timeout=timeout)


def maintenance(caller: Caller, env: str, state: str, *, config_path: Path | None = None) -> Result:
    """Turn ENV's maintenance page ``on`` or ``off`` (503 + Retry-After for every request but
    /_deploy/health and /_deploy/version); it stays through deploys and server restarts."""
    return call("maintenance", caller, config_path=config_path, env=env, state=state)


def protect(caller: Caller, env: str, *, config_path: Path | None = None) -> Result:
    """Pin ENV's protection from this config (a person, with a factor): the first pin on an
    enforced host, or the confirmation of a loosening."""
    return call("protect", caller, config_path=config_path, env=env)


def approvers_add(
    caller: Caller,
    name: str,
    kind: str,
    *,
    value: str | None = None,
    config_path: Path | None = None,
) -> Result:
    """Enroll approver ``name`` with a factor ``kind`` (passphrase | ssh | totp); ``value`` is
    the passphrase or the public key (stored as an scrypt hash or as the key)."""
    return call(
        "approvers_add",
        caller,
        config_path=config_path,
        approver_name=name,
        kind=kind,
        value=value,
    )


def approvers_list(caller: Caller, *, config_path: Path | None = None) -> Result:
    return call("approvers_list", caller, config_path=config_path)


def approvers_remove(caller: Caller, name: str, *, config_path: Path | None = None) -> Result:
    return call("approvers_remove", caller, config_path=config_path, approver_name=name)


def challenge(
    caller: Caller,
    action: str,
    *,
    env: str | None = None,
    promotion_id: str | None = None,
    sha: str | None = None,
    subject: str | None = None,
    config_path: Path | None = None,
) -> Result:
    """A single-use challenge an approver signs (``ssh-keygen -Y sign -n shiplane``)."""
    return call(
        "challenge",
        caller,
        config_path=config_path,
        action=action,
        env=env,
        promotion_id=promotion_id,
        sha=sha,
        subject=subject,
    )
