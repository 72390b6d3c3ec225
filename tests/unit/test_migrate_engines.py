"""The MigrationEngine seam: engines by name, config validation of the name, and the fallbacks
callers take when an engine lacks a capability. No processes, real SQLite files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shiplane.backup import create_backup
from shiplane.config import parse_config
from shiplane.config.models import ENGINE_NAMES, DatabaseConfig
from shiplane.errors import ConfigError, MigrationError
from shiplane.migrate import Capabilities, MigrationEngine, Migrator, discover, registry
from shiplane.migrate.alembic import AlembicMigrator
from shiplane.migrate.rehearse import rehearse
from shiplane.pipeline.context import Facts
from shiplane.pipeline.steps_database import MigrateDownStep
from tests.support.sqlite_util import columns, database, tables

CONFIG = """
[app]
name = "notes"
run = "python app.py {port}"

[database]
url = "sqlite:///notes.db"
engine = "ENGINE"

[environments.dev]
branch = "dev"
port = 8001
"""
CREATE = "CREATE TABLE t (id INTEGER PRIMARY KEY);\n-- down\nDROP TABLE t;\n"
ADD = "ALTER TABLE t ADD COLUMN w TEXT;\n-- down\nALTER TABLE t DROP COLUMN w;\n"


class OneWay(Migrator):
    """The shiplane runner as an engine that cannot revert (like a `command` engine)."""

    capabilities = Capabilities(revert=False, lint=False, rehearse=True)

    def down(self, migrations: Any, to: int) -> list[str]:
        return MigrationEngine.down(self, migrations, to)


class NoCopy(Migrator):
    capabilities = Capabilities(revert=True, lint=True, rehearse=False)


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def test_engines_are_registered_by_the_names_config_accepts() -> None:
    assert tuple(registry.ENGINES) == ENGINE_NAMES
    assert {"shiplane": Migrator, "alembic": AlembicMigrator}.items() <= registry.ENGINES.items()
    assert {"command", "flask-migrate", "django", "knex"} <= set(registry.ENGINES)
    for name, engine in registry.ENGINES.items():
        assert engine.name == name and isinstance(engine.capabilities, Capabilities)


def test_unknown_engine_names_the_field_the_value_and_the_choices(tmp_path: Path) -> None:
    path = tmp_path / "shiplane.toml"
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG.replace("ENGINE", "flyway"), path)
    message = caught.value.message
    assert "database.engine = 'flyway'" in message
    assert "shiplane" in message and "alembic" in message
    assert parse_config(CONFIG.replace("ENGINE", "alembic"), path).database.engine == "alembic"
    # A settings object that skipped validation still meets the registry's own check.
    unvalidated = DatabaseConfig.model_construct(engine="flyway")
    with pytest.raises(ConfigError) as caught:
        registry.engine_class(unvalidated)
    assert "database.engine = 'flyway'" in caught.value.message
    assert "known: shiplane, alembic" in caught.value.message


def test_engine_for_and_discover_for_follow_the_config(tmp_path: Path) -> None:
    write(tmp_path / "migrations", {"001_t.sql": CREATE})
    versions = write(tmp_path / "migrations" / "versions", {})
    (versions / "a1_t.py").write_text("revision = 'a1'\ndown_revision = None\n")
    db = database(tmp_path / "app.db")
    for engine, labels in (("shiplane", ["001_t"]), ("alembic", ["a1"])):
        config = parse_config(CONFIG.replace("ENGINE", engine), tmp_path / "shiplane.toml")
        assert type(registry.engine_for(config, db)) is registry.ENGINES[engine]
        assert [m.label for m in registry.discover_for(config, tmp_path)] == labels


def test_the_server_reads_the_engine_from_the_release(tmp_path: Path) -> None:
    """/_deploy/migrations has only a release dir: the release's own shiplane.toml decides."""
    release = tmp_path / "release"
    write(release / "migrations" / "versions", {})
    db = database(tmp_path / "app.db")
    assert type(registry.release_engine(release, db)) is Migrator  # no config there: default
    (release / "shiplane.toml").write_text(CONFIG.replace("ENGINE", "alembic"))
    assert type(registry.release_engine(release, db)) is AlembicMigrator


def test_an_engine_refuses_another_engines_migrations(tmp_path: Path) -> None:
    versions = write(tmp_path / "alembic" / "versions", {})
    (versions / "a1_t.py").write_text("revision = 'a1'\ndown_revision = None\n")
    revisions = AlembicMigrator.discover(DatabaseConfig(migrations="alembic"), tmp_path)
    with pytest.raises(MigrationError, match="not migrations of the shiplane engine"):
        Migrator(database(tmp_path / "app.db")).up(revisions)


def test_rehearsal_without_revert_runs_up_only(tmp_path: Path) -> None:
    migrations = discover(write(tmp_path / "m", {"001_t.sql": CREATE}))
    db = database(tmp_path / "app.db")
    result = rehearse(db, migrations, lambda copy: OneWay(copy))
    assert result["pending"] == ["001_t"]
    assert "cannot revert: rollback restores the backup" in result["summary"]
    assert "t" not in tables(tmp_path / "app.db")  # the copy took it, not the database
    skipped = rehearse(db, migrations, lambda copy: NoCopy(copy))
    assert skipped["skipped"] is True and skipped["pending"] == ["001_t"]


def test_rollback_restores_the_backup_when_the_engine_cannot_revert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "app.db"
    old = write(tmp_path / "old" / "migrations", {"001_t.sql": CREATE}).parent
    new = write(tmp_path / "new" / "migrations", {"001_t.sql": CREATE, "002_w.sql": ADD}).parent
    db = database(path)
    Migrator(db).up(discover(old / "migrations"))
    backups = tmp_path / "backups"
    backup = create_backup(db, backups, {"env": "dev", "migrations": ["001_t"]})
    Migrator(db).up(discover(new / "migrations"))
    assert "w" in columns(path, "t")

    monkeypatch.setitem(registry.ENGINES, "shiplane", OneWay)
    logged: list[str] = []
    ctx = SimpleNamespace(
        config=parse_config(CONFIG.replace("ENGINE", "shiplane"), tmp_path / "shiplane.toml"),
        facts=Facts(release_dir=str(old), current_release_dir=str(new)),
        options={},
        env="dev",
        log=logged.append,
        redact=lambda text: text,
        settings=SimpleNamespace(
            variables={}, secrets={}, env_config=SimpleNamespace(backup_encryption=None)
        ),
        layout=SimpleNamespace(backups=lambda _env: backups),
        database=lambda url=None: database(path),
    )
    data = {"database_url": f"sqlite:///{path}", "restore_from": backup["id"]}
    done = MigrateDownStep().run(ctx, data)  # type: ignore[arg-type]
    assert done["action"] == "restore"
    assert done["down_error"] == "the shiplane migration engine cannot revert to a version"
    assert "w" not in columns(path, "t")
    assert any("restoring the backup" in line for line in logged)
