"""Every CLI command is in the README and has help text; the exit-code table matches the code."""

from __future__ import annotations

from pathlib import Path

import typer

from shiplane import api
from shiplane.cli.main import app
from shiplane.errors import EXIT_CODES

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_command_documented_with_help() -> None:
    command = typer.main.get_command(app)
    names = list(command.commands)  # type: ignore[attr-defined]
    assert "deploy" in names and "server" in names
    for name in names:
        assert f"shiplane {name}" in README, name
        assert command.commands[name].help, name  # type: ignore[attr-defined]


def test_exit_code_table_matches() -> None:
    for code in EXIT_CODES:
        assert f"| {code} |" in README


def test_api_all_is_complete() -> None:
    public = {n for n in dir(api) if not n.startswith("_") and callable(getattr(api, n))}
    assert public == set(api.__all__)
