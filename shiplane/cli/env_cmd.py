"""`shiplane env set|unset|list ENV`: thin commands over the kept-variables operations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shiplane.caller import local_caller
from shiplane.cli import render
from shiplane.cli.remote import run_in_server

env_app = typer.Typer(
    help="Variables and secrets the server keeps per environment, applied with a restart.",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON on stdout (default when piped).")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Path to shiplane.toml (default: search up).")
]
EnvArg = Annotated[str, typer.Argument(help="Environment name from shiplane.toml.")]


def _run(name: str, as_json: bool, config: Path | None, progress: bool, **args: Any) -> None:
    payload = run_in_server(
        name,
        local_caller(),
        config_path=config,
        progress=render.progress if progress else None,
        **args,
    )
    render.emit(payload, render.wants_json(as_json))
    raise typer.Exit(int(payload.get("exit_code", 3)))


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
    _run("env_set", json_, config, True, env=env, assignments=assignments, secret=secret)


@env_app.command("unset")
def unset(
    env: EnvArg,
    keys: Annotated[list[str], typer.Argument(help="KEY, one or more.")],
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Forget kept variables of ENV and restart it with no dropped request."""
    _run("env_unset", json_, config, True, env=env, keys=keys)


@env_app.command("list")
def list_(env: EnvArg, json_: JsonOpt = False, config: ConfigOpt = None) -> None:
    """What ENV's instances get, key by key, with each value's source; secrets as ***."""
    _run("env_list", json_, config, False, env=env)
