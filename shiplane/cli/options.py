"""What every command shares: its common options, and how it runs in the server and exits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shiplane.caller import local_caller
from shiplane.cli import render
from shiplane.cli.remote import run_in_server

JsonOpt = Annotated[bool, typer.Option("--json", help="JSON on stdout (default when piped).")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Path to shiplane.toml (default: search up).")
]
EnvArg = Annotated[str, typer.Argument(help="Environment name from shiplane.toml.")]


def in_server(
    name: str, as_json: bool, config: Path | None, progress: bool = False, **args: Any
) -> None:
    """Run operation ``name`` in this host's server; print its result and exit with its code."""
    payload = run_in_server(
        name,
        local_caller(),
        config_path=config,
        progress=render.progress if progress else None,
        **args,
    )
    render.emit(payload, render.wants_json(as_json))
    raise typer.Exit(int(payload.get("exit_code", 3)))
