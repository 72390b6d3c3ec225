"""The framework examples pairwise across the two databases (issue 12): flask_notes on
PostgreSQL, django_notes on SQLite (test_flask_migrate.py and test_django.py hold the other
pair). One sequence per app, with a writer POSTing through dev's front door:

- deploy dev -> verify -> promote prod;
- an additive migration, then rollback: the code goes back, the schema and the writes to the
  new column stay;
- a non-additive one (a renamed column and a new one), then rollback: refused (exit 6) while
  the new column holds a write; once it is empty, `down` inside the hold.

Every acknowledged write is still there, no request failed during a rollback, and the schema is
the one the JSON names. The extra revisions are later commits in the test's repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.pgserver import PgServer
from tests.support.app_db import AppDb, use_postgres
from tests.support.app_repo import AppRepo, wait_no_children
from tests.support.examples import ROOT, example_venv, make_example_repo
from tests.support.matrix import Case, edit, run_sequence

# One sequence of six to eight shiplane commands, each starting the framework's CLI several times
# (instead of one server per scenario): longer than the suite's 300 s guard on a busy machine.
pytestmark = pytest.mark.timeout(600)

# Read-only and through the front door: the old release's check on the new schema.
SMOKE = """
[[verify.check]]
name = "notes readable"
kind = "http"
group = "smoke"
path = "/api/notes"
jsonpath = { "$.notes" = "*" }
"""


def only_smoke(config: str) -> str:
    """The example's checks replaced by the smoke check (what the old release runs)."""
    return config.split("[[verify.check]]")[0].rstrip() + "\n" + SMOKE


def alembic_revision(rev: str, down: str, upgrade: str, downgrade: str) -> str:
    return (
        f'"""{rev}"""\nfrom alembic import op\nimport sqlalchemy as sa\n\n'
        f"revision = {rev!r}\ndown_revision = {down!r}\nbranch_labels = None\n"
        f"depends_on = None\n\n\ndef upgrade():\n{upgrade}\n\ndef downgrade():\n{downgrade}"
    )


def flask_additive(app: AppRepo) -> dict[str, str]:
    d4 = alembic_revision(
        "d4",
        "c3",
        "    op.add_column('notes', sa.Column('colour', sa.Text, nullable=True))\n",
        "    op.drop_column('notes', 'colour')\n",
    )
    code = edit(
        app,
        "app.py",
        {
            "    pinned = db.Column(": "    colour = db.Column(db.Text, nullable=True)\n"
            "    pinned = db.Column(",
            'body=str(payload.get("body", "")))': 'body=str(payload.get("body", "")),'
            ' colour=payload.get("colour"))',
        },
    )
    return {"migrations/versions/d4_colour.py": d4, "app.py": code}


def flask_non_additive(app: AppRepo) -> dict[str, str]:
    e5 = alembic_revision(
        "e5",
        "d4",
        "    op.alter_column('notes', 'body', new_column_name='content')\n"
        "    op.add_column('notes', sa.Column('rating', sa.Integer, nullable=True))\n",
        "    op.drop_column('notes', 'rating')\n"
        "    op.alter_column('notes', 'content', new_column_name='body')\n",
    )
    code = edit(
        app,
        "app.py",
        {
            "body = db.Column(db.Text,": 'body = db.Column("content", db.Text,',
            "    pinned = db.Column(": "    rating = db.Column(db.Integer, nullable=True)\n"
            "    pinned = db.Column(",
        },
    )
    return {"migrations/versions/e5_content.py": e5, "app.py": code}


DJANGO_MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "{after}")]
    operations = [{operations}]
"""


def django_additive(app: AppRepo) -> dict[str, str]:
    migration = DJANGO_MIGRATION.format(
        after="0003_tags",
        operations='migrations.AddField("note", "colour", models.TextField(null=True))',
    )
    models = edit(
        app,
        "notes/models.py",
        {"    tags = ": "    colour = models.TextField(null=True)\n    tags = "},
    )
    views = edit(
        app,
        "notes/views.py",
        {
            'body=str(payload.get("body", "")))': 'body=str(payload.get("body", "")),'
            ' colour=payload.get("colour"))'
        },
    )
    return {
        "notes/migrations/0004_colour.py": migration,
        "notes/models.py": models,
        "notes/views.py": views,
    }


def django_non_additive(app: AppRepo) -> dict[str, str]:
    # The column `body` becomes `content` (db_column: the attribute keeps its name).
    migration = DJANGO_MIGRATION.format(
        after="0004_colour",
        operations='migrations.AlterField("note", "body", models.TextField(default="",'
        ' blank=True, db_column="content")),\n'
        '                  migrations.AddField("note", "rating", models.IntegerField(null=True))',
    )
    models = edit(
        app,
        "notes/models.py",
        {
            'body = models.TextField(default="", blank=True)': "body = models.TextField("
            'default="", blank=True, db_column="content")\n'
            "    rating = models.IntegerField(null=True)"
        },
    )
    return {"notes/migrations/0005_content.py": migration, "notes/models.py": models}


@pytest.fixture
def flask_on_postgresql(tmp_path: Path, postgres: PgServer) -> Iterator[Case]:
    venv = example_venv(ROOT / "examples" / "flask_notes" / "requirements.txt")
    app = make_example_repo(tmp_path, "flask_notes", venv)
    config = app.path / "shiplane.toml"
    dbs = use_postgres(config, postgres)
    config.write_text(only_smoke(config.read_text()))
    app.commit("postgresql, a smoke check")
    try:
        yield Case(app, dbs["dev"], "notes", flask_additive, flask_non_additive, ["e5"])
    finally:
        app.stop_server()
        wait_no_children(tmp_path)


@pytest.fixture
def django_on_sqlite(tmp_path: Path) -> Iterator[Case]:
    venv = example_venv(ROOT / "examples" / "django_notes" / "requirements.txt")
    app = make_example_repo(tmp_path, "django_notes", venv)
    config = app.path / "shiplane.toml"
    # Only the smoke check: the static files check needs collectstatic in the build, which
    # test_django.py covers; every deploy here saves its time.
    config.write_text(only_smoke(config.read_text()))
    app.commit("a smoke check")
    db = AppDb(path=app.root / "dev" / "shared" / "notes.db")
    try:
        yield Case(
            app, db, "notes_note", django_additive, django_non_additive, ["notes.0005_content"]
        )
    finally:
        app.stop_server()
        wait_no_children(tmp_path)


def test_flask_notes_on_postgresql(flask_on_postgresql: Case) -> None:
    run_sequence(flask_on_postgresql)


def test_django_notes_on_sqlite(django_on_sqlite: Case) -> None:
    run_sequence(django_on_sqlite)
