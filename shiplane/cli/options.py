"""What every command shares: its common options, and how it runs in the server and exits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from shiplane.caller import local_caller
from shiplane.cli import render
from shiplane.cli.factor import FactorChoice, secret_factor, sign_challenge
from shiplane.errors import ShiplaneError
from shiplane.results import Result

JsonOpt = Annotated[bool, typer.Option("--json", help="JSON on stdout (default when piped).")]
IncludeRolledBackOpt = Annotated[
    bool,
    typer.Option("--include-rolled-back", help="Bring back commits a rollback took out of ENV."),
]
WaitDrainOpt = Annotated[
    bool,
    typer.Option(
        "--wait-drain",
        help="Return once the replaced instance has drained and stopped, not at the switch.",
    ),
]
WaitWatchOpt = Annotated[
    bool,
    typer.Option(
        "--wait-watch",
        help="Return when the server's watch after the switch has ended (deploy.watch"
        " seconds): exit 4 if it rolled the new version back.",
    ),
]
RedeployOpt = Annotated[
    bool,
    typer.Option(
        "--redeploy",
        help="Ship it even when exactly this commit and config already serve (default: a"
        " no-op, `already_serving: true`).",
    ),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Path to shiplane.toml (default: search up).")
]
EnvArg = Annotated[str, typer.Argument(help="Environment name from shiplane.toml.")]
HoldTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--hold-timeout",
        metavar="SECONDS",
        help="Longest a request waits at the front door while the schema changes (default: "
        "the env's front_door.hold_timeout, else 30).",
    ),
]
HostOpt = Annotated[
    str | None,
    typer.Option(
        "--host",
        envvar="SHIPLANE_HOST",
        help="The shiplane server on another machine, over SSH: user@host or "
        "user@host:port (default: the environment's `server`, else this machine's).",
    ),
]


def finish(result: Result, as_json: bool) -> NoReturn:
    """Print ``result`` (JSON or text) and exit with its code."""
    render.emit(result, render.wants_json(as_json))
    raise typer.Exit(result.exit_code)


def current_host() -> str | None:
    """``--host`` as given before the command (``shiplane --host H deploy dev``), which the
    main callback puts in SHIPLANE_HOST: one way in, whether flag or environment."""
    return os.environ.get("SHIPLANE_HOST") or None


def in_server(
    name: str,
    as_json: bool,
    config: Path | None,
    progress: bool = False,
    factor: FactorChoice | None = None,
    challenge: dict[str, Any] | None = None,
    **args: Any,
) -> None:
    """Run operation ``name`` in this host's server; print its result and exit with its code.
    With a ``factor`` chosen, the person's factor travels with the request (for an SSH key:
    a signature over the single-use challenge the server issues for ``challenge``)."""
    # The client's request path (config models, git, the server's control client): imported
    # here, when a command runs, so that `--help` never pays for it.
    from shiplane.cli.remote import run_in_server

    try:
        sent = _factor(factor, challenge or {}, config) if factor and factor.given() else None
    except ShiplaneError as exc:
        payload = Result(command=name, env=args.get("env")).fail(exc).to_dict()
    else:
        if isinstance(sent, dict) and sent.get("ok") is False:
            payload = sent  # the challenge was refused: its result says why
        else:
            payload = run_in_server(
                name,
                local_caller(),
                config_path=config,
                progress=render.progress if progress else None,
                host=current_host(),
                factor=sent,
                **args,
            )
    render.emit(payload, render.wants_json(as_json))
    raise typer.Exit(int(payload.get("exit_code", 3)))


def _factor(choice: FactorChoice, challenge: dict[str, Any], config: Path | None) -> dict[str, Any]:
    if choice.ssh_key is None:
        return secret_factor(choice)
    from shiplane.cli.remote import run_in_server  # as in in_server

    issued = run_in_server(
        "challenge", local_caller(), config_path=config, host=current_host(), **challenge
    )
    if not issued.get("ok"):
        return issued
    signature = sign_challenge(choice.ssh_key, str(issued["text"]))
    return {
        "kind": "ssh",
        "approver": choice.name,
        "nonce": issued["nonce"],
        "signature": signature,
    }
