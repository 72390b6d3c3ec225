"""`shiplane server [stop|status]`: this host's server as an operation with a Result."""

from __future__ import annotations

from pathlib import Path

from shiplane import policy
from shiplane.caller import Caller
from shiplane.config.loader import load_config
from shiplane.errors import ConfigError, RefusedError
from shiplane.hostconfig import load_host_config
from shiplane.layout import ServerLayout
from shiplane.operations.boundary import identify_on
from shiplane.results import Result
from shiplane.serversettings import load_settings, save_settings, settings_path, updated
from shiplane.targets.control_client import ServerClient

ACTIONS = ("start", "stop", "status", "connect")


def server_layout(root: Path | None, config_path: Path | None) -> ServerLayout:
    """The host's server: ``--root`` names its home; without it, $SHIPLANE_HOME."""
    if root is not None:
        return ServerLayout.for_home(root.resolve())
    return ServerLayout.default()


def _app(root: Path | None, config_path: Path | None) -> str | None:
    """The app whose environments `server status` shows first (the one configured here)."""
    if root is not None and config_path is None:
        return None
    try:
        return load_config(config_path).config.app.name
    except ConfigError:
        return None


def authorize_stop(layout: ServerLayout, caller: Caller, token: str | None) -> None:
    """Stopping the server stops every app's environments: a person's call (shiplane.policy),
    with the role from the token when the host has tokens."""
    policy.check_allowed(identify_on(layout, token, caller), "server stop", gated=False)


def refuse_stopping_enforced(layout: ServerLayout) -> None:
    """An enforced host's server belongs to supervisor, which restarts what stops behind its
    back; and a client may not read its pid or token anyway. Its admin stops it there."""
    host = load_host_config()
    if host is not None and host.home == layout.root:
        raise RefusedError(
            f"the server of this enforced host ({layout.root}) is run by supervisor as "
            f"{host.user}: clients do not stop it",
            step="server",
            next_action="ask the host's admin: `supervisorctl stop shiplane` (as root)",
        )


def server(
    action: str,
    root: Path | None,
    config_path: Path | None,
    caller: Caller | None = None,
    token: str | None = None,
) -> Result:
    if action not in ACTIONS:
        raise ConfigError(
            f"unknown server action {action!r}", next_action=f"use one of: {', '.join(ACTIONS)}"
        )
    layout = server_layout(root, config_path)
    client = ServerClient(layout)
    result = Result(command="server" if action == "start" else f"server {action}")
    if action in ("start", "connect"):
        info = client.ensure_running()
        result.data.update(running=True, pid=info["pid"], socket=str(layout.socket))
        if action == "connect":
            # Where a client reaching this host over SSH reads the token (never printed).
            result.command = "server connect"
            result.data["token_file"] = str(layout.token)
    elif action == "stop":
        refuse_stopping_enforced(layout)
        if caller is not None:
            authorize_stop(layout, caller, token)
        result.data["was_running"] = client.stop()
    elif client.ping() is None:
        result.data["running"] = False
    else:
        status = client.request("GET", "/status")
        app = _app(root, config_path)
        result.data.update(running=True, **status)
        if app is not None:
            result.data.update(app=app, envs=status["apps"].get(app, {}))
    return result


def server_config(root: Path | None, config_path: Path | None, assignments: list[str]) -> Result:
    """Show the host server's settings, or set ``KEY=VALUE`` ones (shiplane.serversettings)."""
    layout = server_layout(root, config_path)
    settings = load_settings(layout.root)
    if assignments:
        settings = updated(settings, assignments)  # every assignment checked before a write
        try:
            save_settings(layout.root, settings)
        except PermissionError as exc:
            raise RefusedError(
                f"cannot write the server's settings in {layout.root}: {exc.strerror}",
                step="server",
                next_action="run it as the server's user (an enforced host's admin)",
            ) from None
    result = Result(command="server config")
    result.data.update(settings=settings.shown(), path=str(settings_path(layout.root)))
    result.data["changed"] = bool(assignments)
    return result
