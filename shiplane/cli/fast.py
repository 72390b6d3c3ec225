"""The `shiplane` console entry point: `status`, `history`, `deploy` and `rollback` in their
plain forms answer before Typer, Rich, Pydantic or httpx are imported
(``shiplane.cli.fast_client``); every other command line, and every case the short road does
not take, goes to the Typer app (``shiplane.cli.main``) as if this module were not there.

The plain forms, exactly what the Typer commands accept with these options (anything else,
`--help` included, is Typer's to parse and to refuse):

    shiplane status   [ENV] [--json] [--config PATH | -c PATH]
    shiplane history  [ENV] [--limit N] [--json] [--config PATH | -c PATH]
    shiplane rollback ENV [--to REF] [--wait-drain] [--json] [--config PATH | -c PATH]
    shiplane deploy   ENV [--ref REF] [--include-rolled-back] [--redeploy] [--wait-drain]
                      [--wait-watch] [--json] [--config PATH | -c PATH]

`rollback` and `deploy` take the short road only without a terminal on stderr (an agent, a
script): a person at a terminal gets the full road's live progress. They are the commands
whose time is the user's (issue 16: bench/rollback.py prints both).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

# Each plain command's arguments as the Typer command sends them when no option is given.
DEFAULTS: dict[str, dict[str, Any]] = {
    "status": {"env": None},
    "history": {"env": None, "limit": 20},
    "rollback": {
        "env": None,
        "to": None,
        "restore_db": False,
        "discard_writes": False,
        "hold_timeout": None,
        "wait_drain": False,
    },
    "deploy": {
        "env": None,
        "ref": None,
        "force": False,
        "accept_drift": False,
        "include_rolled_back": False,
        "redeploy": False,
        "hold_timeout": None,
        "wait_drain": False,
        "wait_watch": False,
    },
}
# Options that take a value: the argument each sets (config: the path read here).
VALUED = {"--config": "config", "-c": "config", "--limit": "limit", "--to": "to", "--ref": "ref"}
# Flags of the plain forms, each for the commands whose DEFAULTS name its argument.
FLAGS = {
    "--wait-drain": "wait_drain",
    "--wait-watch": "wait_watch",
    "--include-rolled-back": "include_rolled_back",
    "--redeploy": "redeploy",
}
# The commands that change something: never behind a terminal (see above).
PROGRESS = ("rollback", "deploy")


@dataclass
class Plain:
    """A plain command line of one of the DEFAULTS' commands."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    as_json: bool = False
    config: str | None = None


def parse(argv: list[str]) -> Plain | None:
    """``argv`` (after the program name) as a plain command, or None: Typer's to parse."""
    if not argv or argv[0] not in DEFAULTS or os.environ.get("SHIPLANE_HOST"):
        return None  # --host (flag or variable) is a remote server: the full road's
    plain = Plain(argv[0], dict(DEFAULTS[argv[0]]))
    rest = iter(argv[1:])
    env_given = False
    for arg in rest:
        option, equals, value = arg.partition("=")
        if arg == "--json":
            plain.as_json = True
        elif arg in FLAGS and FLAGS[arg] in plain.args:
            plain.args[FLAGS[arg]] = True
        elif arg in VALUED:
            if not _set(plain, VALUED[arg], next(rest, "")):
                return None
        elif equals and option.startswith("--") and option in VALUED:
            if not _set(plain, VALUED[option], value):
                return None
        elif arg.startswith("-c") and not arg.startswith("-c="):
            if not _set(plain, "config", arg[2:]):  # -cPATH
                return None
        elif arg.startswith("-") or env_given:
            return None  # --help, an unknown option, `--`, a second argument
        else:
            plain.args["env"], env_given = arg, True
    if plain.name in PROGRESS and not env_given:
        return None  # Typer's error: ENV is required
    return plain


def _set(plain: Plain, option: str, value: str) -> bool:
    """The config path, or argument ``option`` of the plain command, set to ``value``; False
    for an option the command does not have, or a value Typer would word an error about or
    read differently."""
    if not value or value.startswith("-"):
        return False
    if option == "config":
        plain.config = value
        return True
    if option not in plain.args:
        return False
    if option == "limit":
        if not value.isdigit():
            return False
        plain.args["limit"] = int(value)
        return True
    plain.args[option] = value
    return True


def answer(plain: Plain) -> int | None:
    """Print the plain command's result as the Typer command would; its exit code, or None
    when the short road is not taken."""
    if plain.name in PROGRESS and sys.stderr.isatty():
        return None  # a person at a terminal: the full road shows the steps as they run
    # Imported here, not at the top: `shiplane --help` and every other command skip it.
    from shiplane.cli.fast_client import ask

    payload = ask(plain.name, plain.args, plain.config)
    if payload is None:
        return None
    if plain.as_json or not sys.stdout.isatty():  # shiplane.cli.render.wants_json
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
        sys.stdout.flush()
    else:
        from shiplane.cli import render  # Rich: a person at a terminal reads tables

        render.emit(payload, False)
    return int(payload.get("exit_code", 3))


def run() -> None:
    plain = parse(sys.argv[1:])
    code = answer(plain) if plain is not None else None
    if code is not None:
        sys.exit(code)
    from shiplane.cli.main import run as full_run  # Typer, and the full client behind it

    full_run()


if __name__ == "__main__":
    run()
