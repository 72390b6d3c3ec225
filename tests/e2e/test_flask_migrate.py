"""examples/flask_notes (app factory, Flask-SQLAlchemy, Flask-Migrate with an app-context
env.py) deployed with engine = "flask-migrate" from its own virtualenv: one deploy sequence on
SQLite, with the env file reaching the migrations, a rollback down to the recorded revision,
an error quoting the exception line, and a first promote into an empty gated prod whose
rehearsal passes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.app_repo import AppRepo, wait_no_children
from tests.support.examples import ROOT, example_venv, make_example_repo
from tests.support.sqlite_util import columns

SECRET = "notes-secret-5b1f0e7c"


def revision(rev: str, down: str, up: str, down_body: str) -> str:
    return (
        f'"""{rev}"""\nimport os\n\nfrom alembic import op\nimport sqlalchemy as sa\n\n'
        f"revision = {rev!r}\ndown_revision = {down!r}\nbranch_labels = None\n"
        f"depends_on = None\n\n\ndef upgrade():\n    {up}\n\n\ndef downgrade():\n"
        f"    {down_body}\n"
    )


@pytest.fixture
def flask_app(tmp_path: Path) -> Iterator[AppRepo]:
    venv = example_venv(ROOT / "examples" / "flask_notes" / "requirements.txt")
    app = make_example_repo(tmp_path, "flask_notes", venv)
    config = app.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace(
            "auto_merge = true", 'auto_merge = true\nenv_file = "secrets.env"'
        )
    )
    (app.path / "secrets.env").write_text(f"NOTES_SECRET={SECRET}\n")
    (app.path / ".git" / "info" / "exclude").write_text("secrets.env\n")
    app.commit("env file")
    try:
        yield app
    finally:
        app.stop_server()
        wait_no_children(tmp_path)


def step(run_data: dict, name: str) -> dict:
    return next(s for s in run_data["steps"] if s["name"] == name)


def test_flask_migrate_app_deploys_migrates_rolls_back_and_promotes(flask_app: AppRepo) -> None:
    app = flask_app
    db = app.root / "dev" / "shared" / "notes.db"
    run = app.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout + run.stderr
    assert step(run.data, "migrate")["detail"] == "applied a1, b2, c3"
    assert step(run.data, "backup")["detail"].startswith("backup ")
    assert {"id", "title", "body", "pinned"} <= columns(db, "notes")
    created = httpx.post(app.url("dev", "/api/notes"), json={"title": "first"}, timeout=5)
    assert created.status_code == 201, created.text

    # A new revision that reads the env file's variable: it reaches the migration process,
    # and the deployment log shows it masked.
    d4 = revision(
        "d4",
        "c3",
        "print('secret is', os.environ['NOTES_SECRET'])\n"
        "    op.add_column('notes', sa.Column('colour', sa.Text, nullable=True))",
        "op.drop_column('notes', 'colour')",
    )
    app.commit("colour", {"migrations/versions/d4_colour.py": d4})
    run = app.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout + run.stderr
    assert step(run.data, "backup")["detail"].startswith("backup ")
    assert step(run.data, "migrate")["detail"] == "applied d4"
    assert "colour" in columns(db, "notes")
    log = Path(run.data["log"]).read_text()
    assert "secret is ***" in log and SECRET not in log and SECRET not in run.stdout
    status = app.shiplane("status", "dev").data["envs"]["dev"]["migrations"]
    assert status["applied"] == ["a1", "b2", "c3", "d4"] and status["pending"] == []

    run = app.shiplane("rollback", "dev")
    assert run.code == 0, run.stdout + run.stderr
    # Additive: the old release passes its checks on the new schema, so the code goes back
    # and the schema (with every write to it) stays (issue 12).
    assert run.data["database"]["action"] == "kept"
    assert run.data["database"]["reverted"] == []
    assert "colour" in columns(db, "notes")
    notes = httpx.get(app.url("dev", "/api/notes"), timeout=5).json()["notes"]
    assert "first" in [n["title"] for n in notes]  # the write survived the rollback

    # First promote into an empty gated prod: the rehearsal's round trip leaves an empty
    # alembic_version table behind, and that does not count as a schema difference.
    assert app.shiplane("verify", "dev").code == 0
    run = app.shiplane("promote", "prod")
    assert run.code == 0, run.stdout + run.stderr
    assert "up -> down -> up ok" in step(run.data, "guard")["detail"]
    assert {"id", "title", "body", "pinned"} <= columns(
        app.root / "prod" / "shared" / "notes.db", "notes"
    )

    # A failing revision: the error quotes the exception line, with the secret masked.
    # (on top of d4: the rollback kept it applied)
    boom = revision(
        "e5", "d4", "raise ValueError('boom with ' + os.environ['NOTES_SECRET'])", "pass"
    )
    app.commit("boom", {"migrations/versions/e5_boom.py": boom})
    run = app.shiplane("deploy", "dev", "--include-rolled-back")  # d4's commit was rolled back
    assert run.code == 3, run.stdout
    message = run.data["error"]["message"]
    assert "ValueError: boom with ***" in message, message
    assert SECRET not in run.stdout and SECRET not in Path(run.data["log"]).read_text()
    assert json.dumps(run.data).count(SECRET) == 0
