"""`shiplane tokens create|list|revoke`: thin commands over the tokens operations in api.py."""

from __future__ import annotations

from typing import Annotated

import typer

from shiplane.cli import render
from shiplane.cli.options import ConfigOpt, JsonOpt, in_server
from shiplane.credentials import save_token
from shiplane.errors import ConfigError
from shiplane.results import Result

tokens_app = typer.Typer(
    help="Client tokens: create one per agent or person, list, revoke, use one here.",
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


@tokens_app.command("use")
def use(
    token: Annotated[str, typer.Argument(help="A token from `shiplane tokens create`.")],
    json_: JsonOpt = False,
) -> None:
    """Keep TOKEN for this OS user (~/.config/shiplane/token, 0600); SHIPLANE_TOKEN wins."""
    # Here, not at the top: the state package (its database) is no concern of `--help`.
    from shiplane.state.tokens import well_formed

    result = Result(command="tokens use")
    if not well_formed(token):
        result.fail(
            ConfigError(
                "that is not a shiplane token (shp_<id>_<secret>)",
                step="usage",
                next_action="copy the `token` value printed by `shiplane tokens create`",
            )
        )
    else:
        try:
            result.data["path"] = str(save_token(token))
        except OSError as exc:
            result.fail(ConfigError(f"cannot store the token: {exc}", step="usage"))
    render.emit(result, render.wants_json(json_))
    raise typer.Exit(result.exit_code)
