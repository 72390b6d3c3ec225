"""`shiplane server`: start (background or foreground), stop, status, install-unit."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from shiplane.caller import local_caller
from shiplane.cli import render
from shiplane.cli.install_cmd import install
from shiplane.cli.options import ConfigOpt, JsonOpt
from shiplane.credentials import client_token
from shiplane.errors import ConfigError, RefusedError, ShiplaneError
from shiplane.results import Result

# Imported inside the commands that use them (CLI startup): shiplane.api (every operation),
# shiplane.operations.server (the config models), shiplane.server.* (the server itself),
# shiplane.hostconfig and shiplane.layout (the host config's Pydantic models).

server_app = typer.Typer(help="The long-running server that owns instances and front doors.")
RootOpt = Annotated[
    Path | None, typer.Option("--root", help="Deploy root (default: from shiplane.toml).")
]


def _run(action: str, root: Path | None, config: Path | None) -> None:
    # Always JSON: `--json` is accepted like on every other command, and changes nothing.
    try:
        token = client_token()
    except ShiplaneError as exc:
        result = Result(command=f"server {action}").fail(exc)
    else:
        from shiplane import api  # the server operations run here, in the client

        result = api.server(local_caller(), action, root=root, config_path=config, token=token)
    render.emit(result, as_json=True)
    raise typer.Exit(result.exit_code)


@server_app.callback(invoke_without_command=True)
def server(
    ctx: typer.Context,
    foreground: Annotated[bool, typer.Option("--foreground", help="Run here (systemd).")] = False,
    enforced: Annotated[
        bool,
        typer.Option(
            "--enforced",
            help="With --foreground, as root: the host's enforced server (supervisor runs it).",
        ),
    ] = False,
    root: RootOpt = None,
    config: ConfigOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Start the server in the background (or --foreground) unless it runs already."""
    if ctx.invoked_subcommand is not None:
        return
    if enforced:
        _run_enforced(foreground, root)
        return
    if foreground:
        from shiplane.operations.server import server_layout
        from shiplane.server.main import run_foreground  # this process becomes the server

        _refuse_private_foreground()
        run_foreground(server_layout(root, config))
        return
    _run("start", root, config)


def _refuse_private_foreground() -> None:
    """On an enforced host no private server runs, not even in the foreground: one as root
    would own the enforced home's files, one as a client would be a server only in name."""
    from shiplane.hostconfig import load_host_config, marker_path

    try:
        host = load_host_config()
    except ConfigError as exc:
        render.emit(Result(command="server").fail(exc), as_json=True)
        raise typer.Exit(exc.exit_code) from None
    if host is None:
        return
    refused = RefusedError(
        f"this host is in enforced mode ({marker_path()}): its one server runs under "
        "supervisor, and no private server starts here",
        step="server",
        next_action="supervisorctl start shiplane (as root); supervisor runs "
        "`shiplane server --foreground --enforced`",
    )
    render.emit(Result(command="server").fail(refused), as_json=True)
    raise typer.Exit(refused.exit_code)


def _run_enforced(foreground: bool, root: Path | None) -> None:
    """The enforced server, as the host's marker describes it (shiplane.hostconfig); it drops
    to the marker's user itself (shiplane.server.privileges)."""
    from shiplane.hostconfig import load_host_config, marker_path
    from shiplane.layout import ServerLayout

    try:
        host = load_host_config()
        if host is None:
            raise ConfigError(
                f"--enforced needs the host's marker {marker_path()}",
                step="usage",
                next_action="sudo shiplane server install --user shiplane",
            )
        if not foreground or root is not None:
            raise ConfigError(
                "--enforced runs in the foreground under supervisor, with the marker's home",
                step="usage",
                next_action="shiplane server --foreground --enforced (supervisor's command)",
            )
    except ConfigError as exc:
        render.emit(Result(command="server").fail(exc), as_json=True)
        raise typer.Exit(exc.exit_code) from None
    from shiplane.server.main import run_foreground  # this process becomes the server
    from shiplane.server.privileges import Enforcement

    enforcement = Enforcement(user=host.user, clients_group=host.group, apps_group=host.apps_group)
    run_foreground(ServerLayout.from_host_config(host), enforcement)


@server_app.command("stop")
def stop(root: RootOpt = None, config: ConfigOpt = None, json_: JsonOpt = False) -> None:
    """Stop the server and every instance it owns."""
    _run("stop", root, config)


@server_app.command("status")
def status(root: RootOpt = None, config: ConfigOpt = None, json_: JsonOpt = False) -> None:
    """Instances and front doors of the running server."""
    _run("status", root, config)


@server_app.command("config")
def config_cmd(
    assignments: Annotated[
        list[str] | None,
        typer.Argument(help="KEY=VALUE to set, e.g. instance_ports=20000-29999 (none: show)."),
    ] = None,
    root: RootOpt = None,
    config: ConfigOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show or set the host server's settings: instance_ports (the ports app instances get)."""
    from shiplane import api

    result = api.server_config(assignments or [], root=root, config_path=config)
    render.emit(result, as_json=True)
    raise typer.Exit(result.exit_code)


@server_app.command("connect")
def connect(root: RootOpt = None, json_: JsonOpt = False) -> None:
    """Start the server unless it runs; print its socket and token file (what a client on
    another machine runs over SSH)."""
    _run("connect", root, None)


@server_app.command("install-unit")
def install_unit(root: RootOpt = None, config: ConfigOpt = None, json_: JsonOpt = False) -> None:
    """Print a systemd unit that runs the server in the foreground (--json: inside a result,
    as `unit`)."""
    from shiplane.operations.server import server_layout  # reads the config for the root

    layout = server_layout(root, config)
    exe = shutil.which("shiplane") or f"{sys.executable} -m shiplane"
    unit = f"""[Unit]
Description=shiplane server ({layout.root})
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
    if json_:
        result = Result(command="server install-unit")
        result.data["unit"] = unit
        render.emit(result, as_json=True)
    else:
        sys.stdout.write(unit)


server_app.command("install")(install)
