"""An app whose migrations are Alembic revisions deploys, is protected, and rolls back."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.support.app_repo import AppRepo
from tests.support.sqlite_util import columns

ENV_PY = """import os

from alembic import context
from sqlalchemy import create_engine

engine = create_engine(os.environ["DATABASE_URL"])
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
"""
SCRIPT = "\n".join(
    [
        '"""${message}"""',
        "from alembic import op",
        "import sqlalchemy as sa",
        "",
        "revision = ${repr(up_revision)}",
        "down_revision = ${repr(down_revision)}",
        "",
        "def upgrade():",
        "    ${upgrades if upgrades else 'pass'}",
        "",
        "def downgrade():",
        "    ${downgrades if downgrades else 'pass'}",
        "",
    ]
)


def revision(rev: str, down: str | None, up: str, down_body: str) -> str:
    return (
        f'"""{rev}"""\nfrom alembic import op\nimport sqlalchemy as sa\n\n'
        f"revision = {rev!r}\ndown_revision = {down!r}\n\n\n"
        f"def upgrade():\n    {up}\n\n\ndef downgrade():\n    {down_body}\n"
    )


NOTES = (
    "op.create_table('notes', sa.Column('id', sa.Integer, primary_key=True),"
    " sa.Column('title', sa.Text, nullable=False), sa.Column('body', sa.Text,"
    " nullable=False, server_default=''), sa.Column('tags', sa.Text, nullable=False,"
    " server_default=''))"
)


def make_alembic_app(app_repo: AppRepo) -> None:
    shutil.rmtree(app_repo.path / "migrations")
    root = app_repo.path / "alembic"
    (root / "versions").mkdir(parents=True)
    (root / "env.py").write_text(ENV_PY)
    (root / "script.py.mako").write_text(SCRIPT)
    (app_repo.path / "alembic.ini").write_text("[alembic]\nscript_location = alembic\n")
    (root / "versions" / "a1_notes.py").write_text(
        revision("a1", None, NOTES, "op.drop_table('notes')")
    )
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text()
        .replace('migrations = "migrations"', 'migrations = "alembic"\nengine = "alembic"')
        .replace('"python -m compileall -q app.py migrations"', '"python -m compileall -q app.py"')
    )
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("alembic app")


def test_alembic_app_deploys_and_rolls_back(app_repo: AppRepo) -> None:
    make_alembic_app(app_repo)
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout
    db = app_repo.root / "dev" / "shared" / "notes.db"
    assert {"id", "title", "body", "tags"} <= columns(db, "notes")
    assert httpx.post(app_repo.url("dev", "/api/notes"), json={"title": "x"}, timeout=5).is_success
    status = app_repo.shiplane("status", "dev").data["envs"]["dev"]["migrations"]
    assert status["applied"] == ["a1"] and status["pending"] == []

    pinned = revision(
        "b2",
        "a1",
        "op.add_column('notes', sa.Column('pinned', sa.Integer, server_default='0'))",
        "op.drop_column('notes', 'pinned')",
    )
    app_repo.commit("pinned", {"VERSION": "2.0.0\n", "alembic/versions/b2_pinned.py": pinned})
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout
    migrate = next(s for s in run.data["steps"] if s["name"] == "migrate")
    assert migrate["detail"] == "applied b2"
    assert "pinned" in columns(db, "notes")

    run = app_repo.shiplane("rollback", "dev")
    assert run.code == 0, run.stdout
    # Additive: the old release passes its checks on the new schema, so the code goes back
    # and the schema (with every write to it) stays (issue 12).
    assert run.data["database"]["action"] == "kept"
    assert run.data["database"]["reverted"] == []
    assert run.data["database"]["restored_backup"] is None
    assert "pinned" in columns(db, "notes")
    assert app_repo.shiplane("status", "dev").data["envs"]["dev"]["healthy"]
    assert httpx.get(app_repo.url("dev", "/api/version"), timeout=5).json()["version"] == "1.0.0"


def test_edited_applied_revision_is_refused(app_repo: AppRepo) -> None:
    make_alembic_app(app_repo)
    assert app_repo.shiplane("deploy", "dev").code == 0
    edited = Path(app_repo.path / "alembic" / "versions" / "a1_notes.py")
    edited.write_text(edited.read_text().replace("server_default=''", "server_default='-'"))
    app_repo.commit("edit an applied revision")
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 3, run.stdout
    assert "a1 were edited after they ran" in run.data["error"]["message"]


def test_deploy_migrations_endpoint_lists_alembic_revisions(app_repo: AppRepo) -> None:
    make_alembic_app(app_repo)
    assert app_repo.shiplane("deploy", "dev").code == 0
    token = {"x-shiplane-token": (app_repo.home / "server.token").read_text()}
    url = app_repo.url("dev", "/_deploy/migrations")
    migrations = httpx.get(url, headers=token, timeout=5).json()
    assert migrations["database"] == "sqlite"
    assert [(m["name"], m["label"]) for m in migrations["applied"]] == [("a1", "a1")]
