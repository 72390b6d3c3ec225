"""`shiplane server install`: put this host in enforced mode (as root; see shiplane.hostinstall)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from shiplane.cli import render
from shiplane.cli.options import JsonOpt
from shiplane.errors import ConfigError
from shiplane.results import Result


def install(
    user: Annotated[str, typer.Option("--user", help="The OS user the server runs as.")],
    group: Annotated[
        str,
        typer.Option(
            "--group", help="The clients' group (agents, persons); not the server user's own."
        ),
    ] = "shiplane-clients",
    apps_group: Annotated[
        str, typer.Option("--apps-group", help="The group of the per-app users.")
    ] = "shiplane-apps",
    home: Annotated[Path, typer.Option("--home", help="The server's root.")] = Path(
        "/var/lib/shiplane"
    ),
    socket: Annotated[Path, typer.Option("--socket", help="The control socket.")] = Path(
        "/run/shiplane/server.sock"
    ),
    etc: Annotated[
        Path, typer.Option("--etc", help="Where the marker goes: <etc>/shiplane/enforced.")
    ] = Path("/etc"),  # shiplane.hostconfig.DEFAULT_ETC (not imported here: CLI startup)
    supervisor_dir: Annotated[
        Path, typer.Option("--supervisor-dir", help="supervisor's program directory.")
    ] = Path("/etc/supervisor/conf.d"),
    systemd_dir: Annotated[
        Path, typer.Option("--systemd-dir", help="Where the systemd unit goes.")
    ] = Path("/etc/systemd/system"),
    log_dir: Annotated[
        Path, typer.Option("--log-dir", help="The server's log (root-owned).")
    ] = Path("/var/log/shiplane"),
    python: Annotated[
        Path | None,
        typer.Option("--python", help="The Python that runs the server (default: this one)."),
    ] = None,
    client: Annotated[
        list[str] | None,
        typer.Option("--client", help="An OS user to add to the clients' group (repeatable)."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Run the server as its own OS user under systemd or supervisor (enforced mode). As root;
    idempotent: writes both a systemd unit and a supervisor program."""
    # The host config models (Pydantic) and the install itself: only for this command.
    from shiplane.hostconfig import parse_host_config
    from shiplane.hostinstall import InstallOptions

    try:
        host = parse_host_config(
            {
                "home": str(home.absolute()),
                "socket": str(socket.absolute()),
                "user": user,
                "group": group,
                "apps_group": apps_group,
            },
            source="server install",
            fix="see `shiplane server install --help`",
        )
    except ConfigError as exc:
        failure = Result(command="server install").fail(exc)
        render.emit(failure, as_json=True)
        raise typer.Exit(failure.exit_code) from None
    options = InstallOptions(
        host=host,
        etc=etc.absolute(),
        supervisor_dir=supervisor_dir.absolute(),
        systemd_dir=systemd_dir.absolute(),
        log_dir=log_dir.absolute(),
        python=(python or Path(sys.executable)).absolute(),
        clients=tuple(client or ()),
    )
    from shiplane import api  # the install operation

    result = api.server_install(options)
    render.emit(result, as_json=True)
    raise typer.Exit(result.exit_code)
