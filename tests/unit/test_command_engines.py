"""The command engines' pure parts: config validation of up/down/status, the status parsers
of the presets, the exception line quoted in errors, alembic.ini's script_location."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiplane.config import parse_config
from shiplane.config.models import DatabaseConfig
from shiplane.errors import ConfigError
from shiplane.migrate.alembic import script_location
from shiplane.migrate.django import DjangoEngine, latest_per_app
from shiplane.migrate.knex import parse_list, version_of
from shiplane.migrate.registry import engine_class
from shiplane.migrate.tools import AppTools, exception_line
from tests.support.sqlite_util import database

CONFIG = """
[app]
name = "notes"
run = "python app.py {port}"

[database]
url = "sqlite:///notes.db"
DATABASE

[environments.dev]
branch = "dev"
port = 8001
"""


def parse(tmp_path: Path, database_keys: str) -> DatabaseConfig:
    text = CONFIG.replace("DATABASE", database_keys)
    return parse_config(text, tmp_path / "shiplane.toml").database


def test_command_keys_are_validated_naming_key_value_and_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"database\.up is required"):
        parse(tmp_path, 'engine = "command"')
    with pytest.raises(ConfigError, match=r"must contain \{target\}"):
        parse(tmp_path, 'engine = "command"\nup = "x up"\ndown = "x down"\nstatus = "x s"')
    with pytest.raises(ConfigError, match=r"database\.down needs database\.status"):
        parse(tmp_path, 'engine = "command"\nup = "x up"\ndown = "x down {target}"')
    with pytest.raises(ConfigError, match=r"database\.up = 'x' is only read by engine"):
        parse(tmp_path, 'engine = "django"\nup = "x"')
    forward_only = parse(tmp_path, 'engine = "command"\nup = "npx prisma migrate deploy"')
    engine = engine_class(forward_only)(database(tmp_path / "a.db"), forward_only)
    assert engine.capabilities.revert is False  # no down: rollback restores the backup
    full = parse(
        tmp_path, 'engine = "command"\nup = "m up"\ndown = "m down {target}"\nstatus = "m"'
    )
    assert engine_class(full)(database(tmp_path / "a.db"), full).capabilities.revert


def test_django_status_and_positions() -> None:
    output = (
        "[X]  tags.0001_initial\n[X]  notes.0001_initial\n[X]  notes.0002_body\n"
        "[ ]  notes.0003_tags\n"
    )
    engine = DjangoEngine.__new__(DjangoEngine)
    status = engine.parse_status(output, Path("."))
    assert status.applied == ["tags.0001_initial", "notes.0001_initial", "notes.0002_body"]
    assert status.pending == ["notes.0003_tags"]
    assert latest_per_app(status.applied) == {"tags": "0001_initial", "notes": "0002_body"}
    assert engine.position_at(status, 1) == {"tags": "0001_initial"}


def test_knex_list_and_versions() -> None:
    output = (
        "Using environment: development\nFound 2 Completed Migration file/files.\n"
        "20240101_notes.js\n20240202_tags.js\nFound 1 Pending Migration file/files.\n"
        "20240303_pinned.js\n"
    )
    status = parse_list(output)
    assert status.applied == ["20240101_notes.js", "20240202_tags.js"]
    assert status.pending == ["20240303_pinned.js"]
    assert version_of("20240202_tags.js") == "20240202" and version_of(None) is None
    empty = parse_list("No Completed Migration files Found.\nNo Pending Migration files Found.\n")
    assert empty.applied == [] and empty.pending == []


def test_exception_line_is_the_verdict_not_the_tail() -> None:
    output = (
        'Traceback (most recent call last):\n  File "m.py", line 3, in upgrade\n'
        "    raise ValueError('bad')\nValueError: bad value\n"
        "INFO  [alembic.runtime.migration] done\n"
    )
    assert exception_line(output) == "ValueError: bad value"
    assert exception_line("ERROR [flask_migrate] Error: Can't locate revision 'd4'\n").endswith(
        "Error: Can't locate revision 'd4'"
    )
    assert exception_line("just failed\n") == "just failed"


def test_script_location_comes_from_alembic_ini(tmp_path: Path) -> None:
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/db/alembic\n")
    assert script_location(DatabaseConfig(), tmp_path) == tmp_path / "db" / "alembic"
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = schema\n")
    assert script_location(DatabaseConfig(), tmp_path) == tmp_path / "schema"
    (tmp_path / "alembic.ini").unlink()
    assert script_location(DatabaseConfig(), tmp_path) == tmp_path / "migrations"


def test_app_python_is_a_venv_or_an_interpreter(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    assert AppTools(python=str(venv)).bin_dir(tmp_path) == venv / "bin"
    assert AppTools(python="venv").bin_dir(tmp_path) == venv / "bin"  # release-relative
    assert AppTools(python="/usr/bin/python3").bin_dir(tmp_path) == Path("/usr/bin")
    assert AppTools().bin_dir(tmp_path) is None
