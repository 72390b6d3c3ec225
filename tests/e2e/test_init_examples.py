"""`shiplane init` on the Flask (app factory, Flask-Migrate) and Django (two apps, WhiteNoise)
examples with no shiplane.toml: the config it writes deploys dev with no edits, healthy and
migrated, with its starter checks passing (issue 15 item 1)."""

from __future__ import annotations

import re
import sqlite3
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.app_repo import AppRepo, wait_no_children
from tests.support.examples import ROOT, example_venv, example_without_config

EXPECTED = {
    "flask_notes": {
        "framework": "flask",
        "engine": "flask-migrate",
        "run": "python -m gunicorn --bind {host}:{port} app:create_app()",
        "tables": {"notes", "alembic_version"},
        "static": {},
    },
    "django_notes": {
        "framework": "django",
        "engine": "django",
        "run": "python -m gunicorn --bind {host}:{port} notesite.wsgi",
        "tables": {"notes_note", "tags_tag", "django_migrations"},
        # STATIC_ROOT: collected in the build, served by the front door.
        "static": {"/static": "staticfiles"},
    },
}


@pytest.fixture(params=sorted(EXPECTED))
def bare_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[AppRepo, Path]]:
    example = request.param
    venv = example_venv(ROOT / "examples" / example / "requirements.txt")
    app = example_without_config(tmp_path, example)
    try:
        yield app, venv
    finally:
        app.stop_server()
        wait_no_children(tmp_path)


def test_init_writes_a_config_that_deploys_with_no_edits(bare_app: tuple[AppRepo, Path]) -> None:
    app, venv = bare_app
    expected = EXPECTED[app.name]
    ports = ["--dev-port", str(app.ports["dev"]), "--prod-port", str(app.ports["prod"])]
    # The user's virtualenv is active, as when they run their app by hand.
    active = {"VIRTUAL_ENV": str(venv)}

    dry = app.shiplane("init", "--dry-run", "--json", *ports, extra_env=active)
    assert dry.code == 0, dry.stdout + dry.stderr
    assert not (app.path / "shiplane.toml").exists()
    facts = dry.data["facts"]
    assert {k: facts[k] for k in ("framework", "engine", "run")} == {
        k: expected[k] for k in ("framework", "engine", "run")
    }
    assert facts["health"] == "/healthz" and facts["python"] == str(venv)
    assert facts["database_url"] == "sqlite:///notes.db"
    assert facts["static"] == expected["static"]

    run = app.shiplane("init", *ports, "--json", extra_env=active)
    assert run.code == 0, run.stdout + run.stderr
    text = (app.path / "shiplane.toml").read_text()
    assert text == dry.data["text"]
    config = tomllib.loads(text)
    assert config["environments"]["prod"]["promote_from"] == "dev"
    assert config["environments"]["prod"]["backup"] is True
    assert "# Migrations:" in text and "# Run:" in text  # each choice says why

    # Never overwritten without --force.
    again = app.shiplane("init", *ports, "--json", extra_env=active)
    assert again.code == 64 and "--force" in again.data["error"]["next_action"]
    assert (app.path / "shiplane.toml").read_text() == text

    app.commit("shiplane init")
    app.git("checkout", "-q", "-b", "dev")
    deploy = app.shiplane("deploy", "dev")
    assert deploy.code == 0, deploy.stdout + deploy.stderr
    steps = {s["name"]: s for s in deploy.data["steps"]}
    assert steps["migrate"]["detail"].startswith("applied "), steps["migrate"]
    assert steps["verify"]["detail"].startswith("2 passed, 0 failed"), steps["verify"]
    health = httpx.get(app.url("dev", "/healthz"), timeout=5)
    assert health.status_code == 200, health.text
    created = httpx.post(app.url("dev", "/api/notes"), json={"title": "after init"}, timeout=5)
    assert created.status_code == 201, created.text
    conn = sqlite3.connect(app.root / "dev" / "shared" / "notes.db")
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    assert expected["tables"] <= names
    if expected["static"]:
        css = httpx.get(app.url("dev", "/static/notes/style.css"), timeout=5)
        assert css.status_code == 200 and "font-family" in css.text
        # The door's ETag (a content hash), not WhiteNoise's ("mtime-size").
        assert re.fullmatch(r'"[0-9a-f]{24}"', css.headers["etag"]), css.headers

    # The rest of the road with the same config: verify dev, then promote to the gated prod.
    verified = app.shiplane("verify", "dev")
    assert verified.code == 0, verified.stdout + verified.stderr
    assert verified.data["next_action"] == "shiplane promote prod", verified.data
    promoted = app.shiplane("promote", "prod")
    assert promoted.code == 0, promoted.stdout + promoted.stderr
    assert promoted.data["sha"] == deploy.data["sha"]
    prod = httpx.get(app.url("prod", "/healthz"), timeout=5)
    assert prod.status_code == 200, prod.text
    if expected["static"]:
        css = httpx.get(app.url("prod", "/static/notes/style.css"), timeout=5)
        assert css.status_code == 200 and re.fullmatch(r'"[0-9a-f]{24}"', css.headers["etag"])
