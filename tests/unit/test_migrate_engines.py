"""The MigrationEngine seam: engines by name, config validation of the name, and the fallbacks
callers take when an engine lacks a capability. No processes, real SQLite files."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shiplane.backup import create_backup
from shiplane.config import parse_config
from shiplane.config.models import ENGINE_NAMES, DatabaseConfig
from shiplane.errors import ConfigError, MigrationError, RollbackFailedError
from shiplane.migrate import Capabilities, MigrationEngine, Migrator, discover, registry
from shiplane.migrate.alembic import AlembicMigrator
from shiplane.migrate.rehearse import rehearse
from shiplane.pipeline.steps_database import _revert
from shiplane.pipeline.steps_schema_rollback import SchemaRollbackStep
from tests.support.sqlite_util import columns, database, query, tables

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


def execute(path: Path, sql: str) -> None:
    """A client's write, committed."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(sql)


def _deployed_then_migrated(tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    """The old release's schema, its backup (with the per-table snapshot), then the new
    release's migration applied: what a one-way engine's undo has to bring back."""
    path = tmp_path / "app.db"
    old = write(tmp_path / "old" / "migrations", {"001_t.sql": CREATE}).parent
    new = write(tmp_path / "new" / "migrations", {"001_t.sql": CREATE, "002_w.sql": ADD}).parent
    db = database(path)
    Migrator(db).up(discover(old / "migrations"))
    execute(path, "INSERT INTO t (id) VALUES (1)")
    backup = create_backup(db, tmp_path / "backups", {"env": "dev", "migrations": ["001_t"]})
    assert backup["tables"]["t"]["rows"] == 1
    Migrator(db).up(discover(new / "migrations"))
    assert "w" in columns(path, "t")
    return path, new, backup


def _context(tmp_path: Path, logged: list[str], **options: Any) -> Any:
    return SimpleNamespace(
        options=options,
        env="dev",
        deployment_id="d1",
        log=logged.append,
        redact=lambda text: text,
        settings=SimpleNamespace(
            variables={}, secrets={}, env_config=SimpleNamespace(backup_encryption=None)
        ),
        layout=SimpleNamespace(backups=lambda _env: tmp_path / "backups"),
    )


def test_rollback_restores_the_backup_when_the_engine_cannot_revert(tmp_path: Path) -> None:
    path, new, backup = _deployed_then_migrated(tmp_path)
    logged: list[str] = []
    engine = OneWay(database(path))
    data: dict[str, Any] = {"restore_from": backup["id"]}
    SchemaRollbackStep()._down(
        _context(tmp_path, logged), database(path), engine, discover(new / "migrations"), 1, data
    )
    assert data["action"] == "restore"
    assert data["down_error"] == "the shiplane migration engine cannot revert to a version"
    assert "unchanged since it was taken" in data["summary"]
    assert "w" not in columns(path, "t")
    assert query(path, "SELECT id FROM t") == [(1,)]
    assert any("restoring only if nothing was written" in line for line in logged)


def test_rollback_keeps_the_schema_when_a_one_way_engine_was_written_past(
    tmp_path: Path,
) -> None:
    path, new, backup = _deployed_then_migrated(tmp_path)
    execute(path, "INSERT INTO t (id, w) VALUES (2, 'acknowledged')")
    data: dict[str, Any] = {"restore_from": backup["id"]}
    with pytest.raises(RollbackFailedError) as raised:
        SchemaRollbackStep()._down(
            _context(tmp_path, [], discard_writes=True),
            database(path),
            OneWay(database(path)),
            discover(new / "migrations"),
            1,
            data,
        )
    assert raised.value.exit_code == 5
    assert "written since backup" in raised.value.message and "t" in raised.value.message
    assert f"restore dev {backup['id']} --discard-writes" in (raised.value.next_action or "")
    # The new schema stays, and the write with it.
    assert "w" in columns(path, "t")
    assert query(path, "SELECT id, w FROM t ORDER BY id") == [(1, None), (2, "acknowledged")]


def test_a_failed_deploy_of_a_one_way_engine_restores_only_an_unchanged_database(
    tmp_path: Path,
) -> None:
    """The migrate step's undo (before the switch): no down, so the checked restore."""
    path, new, backup = _deployed_then_migrated(tmp_path)
    migrations = discover(new / "migrations")
    logged: list[str] = []
    what = _revert(
        _context(tmp_path, logged),
        database(path),
        OneWay(database(path)),
        migrations,
        1,
        backup["id"],
    )
    assert "restored from backup" in what and "w" not in columns(path, "t")
    assert any("checking the backup" in line for line in logged)

    Migrator(database(path)).up(migrations)
    execute(path, "UPDATE t SET w = 'acknowledged'")
    with pytest.raises(RollbackFailedError):
        _revert(
            _context(tmp_path, []),
            database(path),
            OneWay(database(path)),
            migrations,
            1,
            backup["id"],
        )
    assert query(path, "SELECT id, w FROM t") == [(1, "acknowledged")]
    # Without a backup there is nothing to fall back on: the engine's own error.
    with pytest.raises(MigrationError, match="cannot revert"):
        _revert(_context(tmp_path, []), database(path), OneWay(database(path)), migrations, 1, None)
