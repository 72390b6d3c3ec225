"""examples/django_notes (two apps, WhiteNoise, dj-database-url) deployed with
engine = "django" on PostgreSQL from its own virtualenv: a new migration in each app deploys
behind a backup, and a rollback runs `manage.py migrate APP TARGET` back to the recorded
position."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from devtools.pgserver import PgServer
from tests.support.app_repo import AppRepo, wait_no_children
from tests.support.examples import ROOT, example_venv, make_example_repo

ADD_FIELD = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("{app}", "{after}")]
    operations = [migrations.AddField("{model}", "{field}", models.{kind})]
"""


@pytest.fixture
def django_app(tmp_path: Path, postgres: PgServer) -> Iterator[tuple[AppRepo, str]]:
    venv = example_venv(ROOT / "examples" / "django_notes" / "requirements.txt")
    name = f"dj_{secrets.token_hex(4)}"
    postgres.create_database(name)
    url = f"postgresql://postgres:${{DB_PASSWORD}}@127.0.0.1:{postgres.port}/{name}"
    app = make_example_repo(tmp_path, "django_notes", venv, database_url=url)
    config = app.path / "shiplane.toml"
    config.write_text(
        config.read_text()
        .replace("build = []", 'build = ["python manage.py collectstatic --noinput"]')
        .replace("auto_merge = true", 'auto_merge = true\nenv_file = "secrets.env"')
    )
    (app.path / "secrets.env").write_text(f"DB_PASSWORD={postgres.password}\n")
    (app.path / ".git" / "info" / "exclude").write_text("secrets.env\n")
    app.commit("postgres")
    try:
        yield app, postgres.url(name)
    finally:
        app.stop_server()
        wait_no_children(tmp_path)


def columns(url: str, table: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
        ).fetchall()
    return {r[0] for r in rows}


def step(data: dict, name: str) -> dict:
    return next(s for s in data["steps"] if s["name"] == name)


def test_django_app_on_postgresql_migrates_and_rolls_back(
    django_app: tuple[AppRepo, str],
) -> None:
    app, url = django_app
    run = app.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout + run.stderr
    assert step(run.data, "migrate")["detail"] == (
        "applied tags.0001_initial, notes.0001_initial, notes.0002_body, notes.0003_tags"
    )
    css = httpx.get(app.url("dev", "/static/notes/style.css"), timeout=5)
    assert css.status_code == 200 and "font-family" in css.text  # WhiteNoise, collectstatic
    note = httpx.post(app.url("dev", "/api/notes"), json={"title": "x", "tags": ["a"]}, timeout=5)
    assert note.status_code == 201 and note.json()["tags"] == ["a"]

    pinned = ADD_FIELD.format(
        app="notes",
        after="0003_tags",
        model="note",
        field="pinned",
        kind="BooleanField(null=True)",
    )
    colour = ADD_FIELD.format(
        app="tags", after="0001_initial", model="tag", field="colour", kind="TextField(null=True)"
    )
    app.commit(
        "pinned notes, coloured tags",
        {"notes/migrations/0004_pinned.py": pinned, "tags/migrations/0002_colour.py": colour},
    )
    run = app.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout + run.stderr
    assert step(run.data, "backup")["detail"].startswith("backup ")  # pending: backed up
    assert step(run.data, "migrate")["detail"] == "applied notes.0004_pinned, tags.0002_colour"
    assert "pinned" in columns(url, "notes_note") and "colour" in columns(url, "tags_tag")
    status = app.shiplane("status", "dev").data["envs"]["dev"]["migrations"]
    assert status["applied"][-2:] == ["notes.0004_pinned", "tags.0002_colour"]
    assert status["pending"] == []

    run = app.shiplane("rollback", "dev")
    assert run.code == 0, run.stdout + run.stderr
    # Additive: the old release passes its checks on the new schema, so the code goes back
    # and the schema (with every write to it) stays (issue 12).
    assert run.data["database"]["action"] == "kept"
    assert run.data["database"]["reverted"] == []
    assert "pinned" in columns(url, "notes_note") and "colour" in columns(url, "tags_tag")
    assert [n["title"] for n in httpx.get(app.url("dev", "/api/notes"), timeout=5).json()["notes"]]
