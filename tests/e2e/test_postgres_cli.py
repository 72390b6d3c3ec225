"""The CLI with a PostgreSQL database whose password lives only in the env file."""

from __future__ import annotations

import secrets

from devtools.pgserver import PgServer
from tests.support.app_repo import AppRepo


def test_migrate_backup_restore_with_a_secret_url(app_repo: AppRepo, postgres: PgServer) -> None:
    name = f"notes_{secrets.token_hex(3)}"
    postgres.create_database(name)
    (app_repo.path / ".env.dev").write_text(f"DB_PASSWORD={postgres.password}\n")
    config = app_repo.path / "shiplane.toml"
    url = f"postgresql://postgres:${{DB_PASSWORD}}@127.0.0.1:{postgres.port}/{name}"
    config.write_text(
        config.read_text().replace(
            "auto_merge = true", f'auto_merge = true\nenv_file = ".env.dev"\ndatabase.url = "{url}"'
        )
    )
    migrations = app_repo.path / "migrations"
    (migrations / "001_create_notes.py").write_text(
        "def up(db):\n"
        "    db.execute('CREATE TABLE notes (id SERIAL PRIMARY KEY, title TEXT NOT NULL)')\n"
        "\ndef down(db):\n    db.execute('DROP TABLE notes')\n"
    )
    (migrations / "002_add_tags.sql").write_text(
        "ALTER TABLE notes ADD COLUMN tags TEXT NOT NULL DEFAULT '';\n"
        "INSERT INTO notes (title) VALUES ('kept');\n-- down\nALTER TABLE notes DROP COLUMN tags;\n"
    )
    # The server reads migrations from commits it was sent, never from a working tree.
    # (only the migrations: the env file holds the password and stays out of git)
    app_repo.git("add", "migrations")
    app_repo.git("commit", "-qm", "postgres migrations")
    status = app_repo.shiplane("migrate", "dev", "status")
    assert status.code == 0, status.stdout
    assert status.data["pending"] == ["001_create_notes", "002_add_tags"]
    assert status.data["database"] == f"postgresql postgres@127.0.0.1:{postgres.port}/{name}"

    up = app_repo.shiplane("migrate", "dev", "up")
    assert up.code == 0, up.stdout
    assert up.data["applied_now"] == ["001_create_notes", "002_add_tags"]
    backup = app_repo.shiplane("backup", "dev")
    assert backup.code == 0
    down = app_repo.shiplane("migrate", "dev", "down", "--to", "1")
    assert down.code == 0 and down.data["reverted_now"] == ["002_add_tags"]
    drift = app_repo.shiplane("migrate", "dev", "status").data["schema"]
    assert drift["drift"] is False  # shiplane made the change and recorded it

    restore = app_repo.shiplane("restore", "dev", backup.data["backup"]["id"], "--yes")
    assert restore.code == 0, restore.stdout
    assert restore.data["migrations"] == ["001_create_notes", "002_add_tags"]
    assert restore.data["verified"]["integrity"] == "ok"

    for run in (status, up, backup, down, restore):
        assert postgres.password not in run.stdout + run.stderr
    leaked = [
        p
        for p in app_repo.root.rglob("*")
        if p.is_file() and postgres.password.encode() in p.read_bytes()
    ]
    # The one copy: the server's own of the env file it was sent (0600), which it reads when
    # an instance starts (the client's file may be elsewhere by then).
    kept = app_repo.root / "config" / "env" / "dev.env"
    assert leaked == [kept] and kept.stat().st_mode & 0o777 == 0o600
