"""`shiplane server [stop|status]`: this host's server as an operation with a Result."""

from __future__ import annotations

from pathlib import Path

from shiplane.config.loader import load_config
from shiplane.errors import ConfigError
from shiplane.layout import ServerLayout
from shiplane.results import Result
from shiplane.targets.control_client import ServerClient

ACTIONS = ("start", "stop", "status")


def server_layout(root: Path | None, config_path: Path | None) -> ServerLayout:
    """The host's server: ``--root`` names its home; without it, $SHIPLANE_HOME."""
    if root is not None:
        return ServerLayout(root.resolve())
    return ServerLayout.default()


def _app(root: Path | None, config_path: Path | None) -> str | None:
    """The app whose environments `server status` shows first (the one configured here)."""
    if root is not None and config_path is None:
        return None
    try:
        return load_config(config_path).config.app.name
    except ConfigError:
        return None


def server(action: str, root: Path | None, config_path: Path | None) -> Result:
    if action not in ACTIONS:
        raise ConfigError(
            f"unknown server action {action!r}", next_action=f"use one of: {', '.join(ACTIONS)}"
        )
    layout = server_layout(root, config_path)
    client = ServerClient(layout)
    result = Result(command="server" if action == "start" else f"server {action}")
    if action == "start":
        info = client.ensure_running()
        result.data.update(running=True, pid=info["pid"], socket=str(layout.socket))
    elif action == "stop":
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
