"""The `shiplane` console entry point: `status` and `history` in their plain forms answer
before Typer, Rich, Pydantic or httpx are imported (``shiplane.cli.fast_client``); every other
command line, and every case the short road does not take, goes to the Typer app
(``shiplane.cli.main``) as if this module were not there.

The plain forms, exactly what the Typer commands accept with these options (anything else,
`--help` included, is Typer's to parse and to refuse):

    shiplane status  [ENV] [--json] [--config PATH | -c PATH]
    shiplane history [ENV] [--limit N] [--json] [--config PATH | -c PATH]
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

COMMANDS = ("status", "history")


@dataclass
class Plain:
    """A plain `status` or `history` command line."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    as_json: bool = False
    config: str | None = None


def parse(argv: list[str]) -> Plain | None:
    """``argv`` (after the program name) as a plain command, or None: Typer's to parse."""
    if not argv or argv[0] not in COMMANDS or os.environ.get("SHIPLANE_HOST"):
        return None  # --host (flag or variable) is a remote server: the full road's
    plain = Plain(argv[0], {"env": None} | ({"limit": 20} if argv[0] == "history" else {}))
    rest = iter(argv[1:])
    env_given = False
    for arg in rest:
        if arg == "--json":
            plain.as_json = True
        elif arg in ("--config", "-c", "--limit"):
            value = next(rest, "")
            if not _set(plain, arg.lstrip("-")[0], value):
                return None
        elif arg.startswith(("--config=", "--limit=")):
            option, _, value = arg.partition("=")
            if not _set(plain, option[2], value):
                return None
        elif arg.startswith("-c") and not arg.startswith("-c="):
            if not _set(plain, "c", arg[2:]):  # -cPATH
                return None
        elif arg.startswith("-") or env_given:
            return None  # --help, an unknown option, `--`, a second argument
        else:
            plain.args["env"], env_given = arg, True
    return plain


def _set(plain: Plain, option: str, value: str) -> bool:
    """``--config``/``-c`` (``c``) or ``--limit`` (``l``) set to ``value``; False for a value
    Typer would word an error about, or read differently."""
    if option == "c" and value and not value.startswith("-"):
        plain.config = value
        return True
    if option == "l" and plain.name == "history" and value.isdigit():
        plain.args["limit"] = int(value)
        return True
    return False


def answer(plain: Plain) -> int | None:
    """Print the plain command's result as the Typer command would; its exit code, or None
    when the short road is not taken."""
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
