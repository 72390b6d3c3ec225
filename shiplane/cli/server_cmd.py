"""`shiplane server`: start (background or foreground), stop, status, install-unit."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from shiplane.config.loader import load_config
from shiplane.layout import Layout
from shiplane.server.client import ServerClient
from shiplane.server.main import run_foreground

server_app = typer.Typer(help="The long-running server that owns instances and front doors.")
RootOpt = Annotated[
    Path | None, typer.Option("--root", help="Deploy root (default: from shiplane.toml).")
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c")]


def _layout(root: Path | None, config: Path | None) -> Layout:
    if root is not None:
        return Layout(root.resolve())
    return Layout.for_app(load_config(config).config.app.name)


def _print(data: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")


@server_app.callback(invoke_without_command=True)
def server(
    ctx: typer.Context,
    foreground: Annotated[bool, typer.Option("--foreground", help="Run here (systemd).")] = False,
    root: RootOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Start the server in the background (or --foreground) unless it runs already."""
    if ctx.invoked_subcommand is not None:
        return
    layout = _layout(root, config)
    if foreground:
        run_foreground(layout)
        return
    info = ServerClient(layout).ensure_running()
    _print({"ok": True, "command": "server", "running": True, "pid": info["pid"],
            "socket": str(layout.server_socket)})  # fmt: skip


@server_app.command("stop")
def stop(root: RootOpt = None, config: ConfigOpt = None) -> None:
    """Stop the server and every instance it owns."""
    layout = _layout(root, config)
    was_running = ServerClient(layout).stop()
    _print({"ok": True, "command": "server stop", "was_running": was_running})


@server_app.command("status")
def status(root: RootOpt = None, config: ConfigOpt = None) -> None:
    """Instances and front doors of the running server."""
    client = ServerClient(_layout(root, config))
    if client.ping() is None:
        _print({"ok": True, "command": "server status", "running": False})
        return
    _print({"ok": True, "command": "server status", "running": True,
            **client.request("GET", "/status")})  # fmt: skip


@server_app.command("install-unit")
def install_unit(root: RootOpt = None, config: ConfigOpt = None) -> None:
    """Print a systemd unit that runs the server in the foreground."""
    layout = _layout(root, config)
    exe = shutil.which("shiplane") or f"{sys.executable} -m shiplane"
    sys.stdout.write(
        f"""[Unit]
Description=shiplane server for {layout.root.name}
After=network.target

[Service]
ExecStart={exe} server --foreground --root {layout.root}
Restart=always
RestartSec=2
KillMode=mixed
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
"""
    )
