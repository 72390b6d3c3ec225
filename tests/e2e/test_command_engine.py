"""engine = "command": a tiny shell migrator (sqlite3 CLI) as the app's own tool. Its status
is recorded before migrating, a rollback runs its down command back to that version, the env
file reaches it (masked in the log). And the rehearsal's clear outcome on PostgreSQL when the
database user may not create the scratch database."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import psycopg
import pytest

from devtools.pgserver import PgServer
from shiplane.databases.postgresql import PostgresDatabase
from shiplane.errors import ConfigError
from shiplane.migrate.alembic import AlembicMigrator
from shiplane.migrate.rehearse import rehearse
from tests.support.app_repo import AppRepo
from tests.support.sqlite_util import columns

MIGRATOR = r"""#!/bin/sh
# A migration tool in a few lines: NNN.up.sql / NNN.down.sql, applied versions in a table.
set -e
db="${DATABASE_URL#sqlite:///}"
sqlite3 "$db" "CREATE TABLE IF NOT EXISTS tool_versions (v TEXT PRIMARY KEY)"
case "$1" in
  up)
    echo "tool token: $TOOL_TOKEN"
    for f in db/*.up.sql; do
      v=$(basename "$f" .up.sql)
      if [ -z "$(sqlite3 "$db" "SELECT v FROM tool_versions WHERE v = '$v'")" ]; then
        sqlite3 "$db" < "$f"
        sqlite3 "$db" "INSERT INTO tool_versions VALUES ('$v')"
        echo "applied $v"
      fi
    done ;;
  down)
    for v in $(sqlite3 "$db" "SELECT v FROM tool_versions ORDER BY v DESC"); do
      [ "$v" = "$2" ] && break
      sqlite3 "$db" < "db/$v.down.sql"
      sqlite3 "$db" "DELETE FROM tool_versions WHERE v = '$v'"
    done ;;
  status) sqlite3 "$db" "SELECT v FROM tool_versions ORDER BY v" ;;
esac
"""
TOKEN = "tool-token-9c2d41aa"


def make_command_app(app_repo: AppRepo) -> None:
    shutil.rmtree(app_repo.path / "migrations")
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text()
        .replace(
            'migrations = "migrations"',
            'engine = "command"\nup = "sh migrate.sh up"\n'
            'down = "sh migrate.sh down {target}"\nstatus = "sh migrate.sh status"',
        )
        .replace('"python -m compileall -q app.py migrations"', '"python -m compileall -q app.py"')
        .replace(
            'env = { APP_MODE = "development" }',
            'env = { APP_MODE = "development" }\nenv_file = "tool.env"',
        )
    )
    (app_repo.path / "tool.env").write_text(f"TOOL_TOKEN={TOKEN}\n")
    (app_repo.path / ".git" / "info" / "exclude").write_text("tool.env\n")
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit(
        "shell migrator",
        {
            "migrate.sh": MIGRATOR,
            "db/001.up.sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " title TEXT NOT NULL, body TEXT NOT NULL DEFAULT '',"
            " tags TEXT NOT NULL DEFAULT '');\n",
            "db/001.down.sql": "DROP TABLE notes;\n",
        },
    )


def test_command_engine_records_status_and_rolls_back_to_it(app_repo: AppRepo) -> None:
    make_command_app(app_repo)
    db = app_repo.root / "dev" / "shared" / "notes.db"
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout + run.stderr
    migrate = next(s for s in run.data["steps"] if s["name"] == "migrate")
    assert migrate["detail"] == "applied 001"
    app_repo.commit(
        "pinned",
        {
            "VERSION": "2.0.0\n",
            "db/002.up.sql": "ALTER TABLE notes ADD COLUMN pinned INTEGER;\n",
            "db/002.down.sql": "ALTER TABLE notes DROP COLUMN pinned;\n",
        },
    )
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout + run.stderr
    steps = {s["name"]: s for s in run.data["steps"]}
    assert steps["migrate"]["detail"] == "applied 002"
    assert steps["backup"]["detail"].startswith("backup ")  # status cannot tell: backed up
    log = Path(run.data["log"]).read_text()
    assert "tool token: ***" in log and TOKEN not in log and TOKEN not in run.stdout
    assert "pinned" in columns(db, "notes")
    status = app_repo.shiplane("status", "dev").data["envs"]["dev"]["migrations"]
    assert status["applied"] == ["001", "002"]

    run = app_repo.shiplane("rollback", "dev")
    assert run.code == 0, run.stdout + run.stderr
    # Additive: the old release passes its checks on the new schema, so the code goes back
    # and the schema (with every write to it) stays (issue 12).
    assert run.data["database"]["action"] == "kept"
    assert run.data["database"]["reverted"] == []
    assert "pinned" in columns(db, "notes")


def test_rehearsal_without_createdb_names_the_fix(postgres: PgServer, tmp_path: Path) -> None:
    role, password = f"app_{secrets.token_hex(3)}", secrets.token_hex(8)
    name = f"nocreate_{secrets.token_hex(3)}"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' NOCREATEDB")
        conn.execute(f"CREATE DATABASE {name} OWNER {role}")
    url = f"postgresql://{role}:{password}@127.0.0.1:{postgres.port}/{name}"
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (versions / "a1.py").write_text(
        "revision = 'a1'\ndown_revision = None\n\n\ndef upgrade():\n    pass\n\n\n"
        "def downgrade():\n    pass\n"
    )
    database = PostgresDatabase(url)
    migrations = AlembicMigrator.discover(AlembicMigrator(database).settings, tmp_path)
    assert [m.label for m in migrations] == ["a1"]
    with pytest.raises(ConfigError) as caught:
        rehearse(database, migrations, AlembicMigrator)
    assert caught.value.exit_code == 64
    assert "CREATEDB" in caught.value.message
    assert f"ALTER ROLE {role} CREATEDB" in (caught.value.next_action or "")
    assert "rehearse = false" in (caught.value.next_action or "")
