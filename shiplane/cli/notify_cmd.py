"""`shiplane notify test [ENV]`: a thin command over the notify_test operation."""

from __future__ import annotations

from typing import Annotated

import typer

from shiplane.cli.options import ConfigOpt, JsonOpt, in_server

notify_app = typer.Typer(help="Notifications ([notify] in shiplane.toml).", no_args_is_help=True)


@notify_app.command("test")
def test(
    env: Annotated[
        str | None,
        typer.Argument(help="Whose env file fills the URLs' ${NAME}s (default: the first env)."),
    ] = None,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Send one test message to every [notify] URL; exit 7 if any of them failed."""
    in_server("notify_test", json_, config, False, env=env)
