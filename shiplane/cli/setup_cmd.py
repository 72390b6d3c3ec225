"""Commands that need no server: `init` (a shiplane.toml for the app here), `exit-codes`
and `schema` (the reference an agent reads)."""

from __future__ import annotations

from typing import Annotated

import typer

from shiplane.caller import local_caller
from shiplane.cli import render
from shiplane.cli.options import JsonOpt, finish
from shiplane.errors import EXIT_CODES
from shiplane.results import Result

setup_app = typer.Typer()


@setup_app.command()
def init(
    name: Annotated[str | None, typer.Option(help="App name (default: directory name).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the config and what was found; write nothing.")
    ] = False,
    dev_port: Annotated[int | None, typer.Option(help="dev's port (default: 8001).")] = None,
    prod_port: Annotated[int | None, typer.Option(help="prod's port (default: 8000).")] = None,
    dev_database_url: Annotated[
        str | None,
        typer.Option(
            help="dev's database (e.g. postgresql://app:${DB_PASSWORD}@localhost/app_dev);"
            " a ${VAR} comes from .env.dev.",
        ),
    ] = None,
    prod_database_url: Annotated[
        str | None, typer.Option(help="prod's database; a ${VAR} comes from .env.prod.")
    ] = None,
    no_probe: Annotated[
        bool,
        typer.Option(
            "--no-probe",
            help="Never start the app to find its health path (init does so once, on a copy of"
            " the tree, when no health route can be read from the source).",
        ),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Detect the app in the current directory and write a commented shiplane.toml for it."""
    from shiplane import api  # init runs here, not in a server: the operations

    result = api.init(
        local_caller(),
        name=name,
        force=force,
        dry_run=dry_run,
        dev_port=dev_port,
        prod_port=prod_port,
        probe=not no_probe,
        dev_database_url=dev_database_url,
        prod_database_url=prod_database_url,
    )
    if dry_run and result.ok and not render.wants_json(json_):
        typer.echo(result.data["text"], nl=False)
        return
    finish(result, json_)


@setup_app.command("exit-codes")
def exit_codes(json_: JsonOpt = False) -> None:
    """The exit codes every command uses."""
    result = Result(command="exit-codes")
    result.data["exit_codes"] = {str(k): v for k, v in EXIT_CODES.items()}
    render.emit(result, render.wants_json(json_))


@setup_app.command()
def schema(json_: JsonOpt = False) -> None:
    """The JSON Schema every command's --json output follows (the envelope; commands add keys)."""
    from shiplane.results_schema import result_schema

    result = Result(command="schema")
    result.data["schema"] = result_schema()
    render.emit(result, render.wants_json(json_))
