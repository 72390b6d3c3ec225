"""`shiplane server [stop|status]`: this host's server as an operation with a Result."""

from __future__ import annotations

from pathlib import Path

from shiplane.config.loader import load_config
from shiplane.errors import ConfigError
from shiplane.layout import Layout
from shiplane.results import Result
from shiplane.targets.control_client import ServerClient

ACTIONS = ("start", "stop", "status")


def server_layout(root: Path | None, config_path: Path | None) -> Layout:
    if root is not None:
        return Layout(root.resolve())
    return Layout.for_app(load_config(config_path).config.app.name)


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
        result.data.update(running=True, pid=info["pid"], socket=str(layout.server_socket))
    elif action == "stop":
        result.data["was_running"] = client.stop()
    elif client.ping() is None:
        result.data["running"] = False
    else:
        result.data.update(running=True, **client.request("GET", "/status"))
    return result
