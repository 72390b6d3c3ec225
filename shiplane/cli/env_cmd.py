"""`shiplane env set|unset|list ENV`: thin commands over the kept-variables operations."""

from __future__ import annotations

from typing import Annotated

import typer

from shiplane.cli.options import ConfigOpt, EnvArg, JsonOpt, in_server

env_app = typer.Typer(
    help="Variables and secrets the server keeps per environment, applied with a restart.",
    no_args_is_help=True,
)


@env_app.command("set")
def set_(
    env: EnvArg,
    assignments: Annotated[list[str], typer.Argument(help="KEY=VALUE, one or more.")],
    secret: Annotated[
        bool, typer.Option("--secret", help="Never shown again: listed as ***, masked in logs.")
    ] = False,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Keep variables for ENV (over shiplane.toml's env) and restart it with no dropped request."""
    in_server("env_set", json_, config, True, env=env, assignments=assignments, secret=secret)


@env_app.command("unset")
def unset(
    env: EnvArg,
    keys: Annotated[list[str], typer.Argument(help="KEY, one or more.")],
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Forget kept variables of ENV and restart it with no dropped request."""
    in_server("env_unset", json_, config, True, env=env, keys=keys)


@env_app.command("list")
def list_(env: EnvArg, json_: JsonOpt = False, config: ConfigOpt = None) -> None:
    """What ENV's instances get, key by key, with each value's source; secrets as ***."""
    in_server("env_list", json_, config, False, env=env)
