"""`shiplane logs`: a deployment's log, or the app's own output in an environment."""

from __future__ import annotations

from typing import Annotated

import typer

from shiplane.caller import local_caller
from shiplane.cli import render
from shiplane.cli.options import ConfigOpt, JsonOpt, current_host, finish, in_server
from shiplane.errors import ShiplaneError
from shiplane.results import Result

logs_app = typer.Typer()


@logs_app.command()
def logs(
    deployment_id: Annotated[
        str | None, typer.Argument(help="A deployment id from `history`.")
    ] = None,
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="The deployment id (same as ID).")
    ] = None,
    env: Annotated[
        str | None,
        typer.Option("--env", "-e", help="The app's own output in ENV (what serves), instead."),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Stream the log to stderr: a deployment's until it ends, an env's until"
            " interrupted (Ctrl-C, SIGTERM); then the JSON, with a cursor to go on from.",
        ),
    ] = False,
    cursor: Annotated[
        str | None,
        typer.Option("--cursor", help="With --env: only what was written since this cursor."),
    ] = None,
    lines: Annotated[
        int, typer.Option("--lines", "-n", help="With --env: how many last lines.")
    ] = 100,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """The full log of one deployment, or the app's output in an env (--env; rotated by size
    and age, see [logs]); --follow streams either."""
    wanted = deployment or deployment_id
    if (wanted is None) == (env is None):
        usage = ShiplaneError(
            "which log? a deployment id, or --env ENV for the app's output (not both)",
            step="usage",
            next_action="shiplane history   # lists deployment ids",
        )
        finish(Result(command="logs").fail(usage), json_)
    if env is not None:
        if follow:
            from shiplane.cli.remote import follow_env_log  # the client's whole request path

            payload = follow_env_log(env, cursor, lines, local_caller(), config, current_host())
            render.emit(payload, render.wants_json(json_))
            raise typer.Exit(int(payload.get("exit_code", 3)))
        in_server("logs", json_, config, env=env, cursor=cursor, lines=lines)
    assert wanted is not None
    if follow:
        from shiplane.cli.remote import follow_log  # the client's whole request path

        follow_log(wanted, local_caller(), config, current_host())
    in_server("logs", json_, config, deployment_id=wanted)
