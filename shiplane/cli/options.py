"""What every command shares: its common options, and how it runs in the server and exits."""

from __future__ import annotations

import os
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
HostOpt = Annotated[
    str | None,
    typer.Option(
        "--host",
        envvar="SHIPLANE_HOST",
        help="The shiplane server on another machine, over SSH: user@host or "
        "user@host:port (default: the environment's `server`, else this machine's).",
    ),
]


def current_host() -> str | None:
    """``--host`` as given before the command (``shiplane --host H deploy dev``), which the
    main callback puts in SHIPLANE_HOST: one way in, whether flag or environment."""
    return os.environ.get("SHIPLANE_HOST") or None


def in_server(
    name: str, as_json: bool, config: Path | None, progress: bool = False, **args: Any
) -> None:
    """Run operation ``name`` in this host's server; print its result and exit with its code."""
    payload = run_in_server(
        name,
        local_caller(),
        config_path=config,
        progress=render.progress if progress else None,
        host=current_host(),
        **args,
    )
    render.emit(payload, render.wants_json(as_json))
    raise typer.Exit(int(payload.get("exit_code", 3)))
