"""`shiplane tokens create|list|revoke`: thin commands over the tokens operations in api.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shiplane.caller import local_caller
from shiplane.cli import render
from shiplane.cli.remote import run_in_server

tokens_app = typer.Typer(
    help="Client tokens: create one per agent or person, list them, revoke them.",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON on stdout (default when piped).")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Path to shiplane.toml (default: search up).")
]


def _finish(payload: dict[str, Any], as_json: bool) -> None:
    render.emit(payload, render.wants_json(as_json))
    raise typer.Exit(int(payload.get("exit_code", 3)))


@tokens_app.command("create")
def create(
    role: Annotated[str, typer.Option("--role", help="agent | person: what the token may do.")],
    label: Annotated[
        str | None, typer.Option("--label", help="Who holds it, e.g. ci-bot or ana.")
    ] = None,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Mint a token (a person only); it is printed once, under `token`, and never again."""
    _finish(
        run_in_server("tokens_create", local_caller(), config_path=config, role=role, label=label),
        json_,
    )


@tokens_app.command("list")
def list_(json_: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Every token's id, role, label and dates; never a secret."""
    _finish(run_in_server("tokens_list", local_caller(), config_path=config), json_)


@tokens_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="A token id from `shiplane tokens list`.")],
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Revoke a token (a person only): it is refused from then on."""
    _finish(
        run_in_server("tokens_revoke", local_caller(), config_path=config, token_id=token_id),
        json_,
    )
