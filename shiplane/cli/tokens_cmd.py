"""`shiplane tokens create|list|revoke`: thin commands over the tokens operations in api.py."""

from __future__ import annotations

from typing import Annotated

import typer

from shiplane.cli.options import ConfigOpt, JsonOpt, in_server

tokens_app = typer.Typer(
    help="Client tokens: create one per agent or person, list them, revoke them.",
    no_args_is_help=True,
)


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
    in_server("tokens_create", json_, config, role=role, label=label)


@tokens_app.command("list")
def list_(json_: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Every token's id, role, label and dates; never a secret."""
    in_server("tokens_list", json_, config)


@tokens_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="A token id from `shiplane tokens list`.")],
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Revoke a token (a person only): it is refused from then on."""
    in_server("tokens_revoke", json_, config, token_id=token_id)
