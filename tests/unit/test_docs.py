"""Every CLI command is in the README and has help text; the exit-code table matches the code."""

from __future__ import annotations

from pathlib import Path

import typer

from shiplane import api
from shiplane.cli.main import app
from shiplane.config.tls import TlsConfig
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


def test_every_subcommand_documented() -> None:
    """`server install`, `tokens use`...: each subcommand of a group is in the README."""
    command = typer.main.get_command(app)
    for name, group in command.commands.items():  # type: ignore[attr-defined]
        for sub in getattr(group, "commands", {}):
            assert f"{name} {sub}" in README, f"{name} {sub}"


def test_server_install_options_documented() -> None:
    """Enforced mode is set up once, by an admin reading the README: every option is there."""
    command = typer.main.get_command(app)
    install = command.commands["server"].commands["install"]  # type: ignore[attr-defined]
    options = [o for p in install.params for o in p.opts if o.startswith("--") and o != "--json"]
    assert "--user" in options
    for option in options:
        assert option in README, option


def test_every_tls_key_documented() -> None:
    """The ``tls`` table of an environment: every key in the config reference."""
    for name in TlsConfig.model_fields:
        assert f"`environments.<env>.tls.{name}`" in README or f"`tls.{name}`" in README, name
