"""`shiplane init` on apps that are not the examples: FastAPI with plain Alembic on SQLite, a
plain WSGI callable under gunicorn, and a Node app with a package.json start script. For each,
the config init writes deploys dev with no edits, healthy, migrated where there are migrations,
its starter checks passing, and prod gated (issue 15 item 1)."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from devtools.pgserver import PgServer
from tests.support.app_repo import GIT_ENV, AppRepo, free_port, wait_no_children
from tests.support.examples import ROOT, example_venv, example_without_config

REQUIREMENTS = Path(__file__).parent / "init_apps" / "requirements.txt"

FASTAPI_MAIN = '''"""A FastAPI app with its schema in plain Alembic revisions."""
import os
import sqlite3

from fastapi import FastAPI

app = FastAPI()


def connect() -> sqlite3.Connection:
    return sqlite3.connect(os.environ.get("DATABASE_URL", "sqlite:///items.db")[len("sqlite:///"):])


@app.get("/healthz")
def health() -> dict:
    return {"ok": True}


@app.get("/")
def home() -> dict:
    return {"app": "items"}


@app.get("/api/items")
def items() -> dict:
    with connect() as db:
        return {"items": [r[0] for r in db.execute("SELECT name FROM items")]}
'''
ALEMBIC_ENV = """import os

from alembic import context
from sqlalchemy import create_engine

engine = create_engine(os.environ["DATABASE_URL"])
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
"""
ALEMBIC_REVISION = '''"""items"""
from alembic import op
import sqlalchemy as sa

revision = "b1"
down_revision = None


def upgrade():
    op.create_table("items", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.Text, nullable=False))


def downgrade():
    op.drop_table("items")
'''
WSGI_APP = '''"""A WSGI callable and nothing else: no framework."""
import json


def application(environ, start_response):
    name = environ.get("PATH_INFO", "/").strip("/")
    if name in ("health", "", "api/status"):
        body = json.dumps({"name": name, "ok": True}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]
'''
NODE_SERVER = """const http = require("node:http");
const server = http.createServer((req, res) => {
  if (req.url === "/up" || req.url === "/" || req.url === "/api/ping") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ ok: true, path: req.url }));
    return;
  }
  res.writeHead(404);
  res.end();
});
// Routes as init reads them (an express-like table the detector recognises).
const app = { get() {} };
app.get("/up");
app.get("/api/ping");
server.listen(Number(process.env.PORT), process.env.HOST || "127.0.0.1");
"""


@dataclass
class Case:
    name: str
    files: dict[str, str]
    framework: str
    engine: str | None
    health: str
    python: bool
    table: str | None = None


CASES = {
    "fastapi": Case(
        "items",
        {
            "main.py": FASTAPI_MAIN,
            "alembic.ini": "[alembic]\nscript_location = alembic\n",
            "alembic/env.py": ALEMBIC_ENV,
            "alembic/versions/b1_items.py": ALEMBIC_REVISION,
            "requirements.txt": REQUIREMENTS.read_text(),
        },
        framework="fastapi",
        engine="alembic",
        health="/healthz",
        python=True,
        table="items",
    ),
    "wsgi": Case(
        "plainwsgi",
        {"wsgi.py": WSGI_APP, "requirements.txt": "gunicorn>=21.2\n"},
        framework="wsgi",
        engine=None,
        health="/health",
        python=True,
    ),
    "node": Case(
        "nodeapp",
        {
            "server.js": NODE_SERVER,
            "package.json": json.dumps(
                {"name": "nodeapp", "version": "1.0.0", "scripts": {"start": "node server.js"}}
            ),
        },
        framework="node",
        engine=None,
        health="/up",
        python=False,
    ),
}


@pytest.fixture(params=sorted(CASES))
def new_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[AppRepo, Case]]:
    case = CASES[request.param]
    repo = tmp_path / case.name
    for name, text in case.files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    home = tmp_path / "home"
    env = {**os.environ, **GIT_ENV, "SHIPLANE_HOME": str(home)}
    env.pop("SHIPLANE_FAULT", None)
    env.pop("VIRTUAL_ENV", None)
    if case.python:
        # The user's virtualenv is active, as when they run their app by hand.
        env["VIRTUAL_ENV"] = str(example_venv(REQUIREMENTS))
    app = AppRepo(repo, home, {"dev": free_port(), "prod": free_port()}, env, case.name)
    app.git("init", "-q", "-b", "main")
    app.commit(f"{case.name} without shiplane.toml")
    try:
        yield app, case
    finally:
        app.stop_server()
        wait_no_children(tmp_path)


def test_init_deploys_a_new_app_with_no_edits(new_app: tuple[AppRepo, Case]) -> None:
    app, case = new_app
    ports = ["--dev-port", str(app.ports["dev"]), "--prod-port", str(app.ports["prod"])]

    dry = app.shiplane("init", "--dry-run", "--json", *ports)
    assert dry.code == 0, dry.stdout + dry.stderr
    facts = dry.data["facts"]
    assert (facts["framework"], facts["engine"], facts["health"]) == (
        case.framework,
        case.engine,
        case.health,
    ), facts
    assert not (app.path / "shiplane.toml").exists()

    if case.framework == "wsgi":
        # No route table to read: init started a copy of the app once and asked it.
        assert "started the app once: GET /health answered 200" in facts["health_why"], facts

    run = app.shiplane("init", *ports, "--json")
    assert run.code == 0, run.stdout + run.stderr
    # Whatever the probe ran wrote into its own copy, never into the user's tree.
    assert app.git("status", "--porcelain") == "?? shiplane.toml"
    config = tomllib.loads((app.path / "shiplane.toml").read_text())
    assert config["environments"]["prod"]["promote_from"] == "dev"

    app.commit("shiplane init")
    app.git("checkout", "-q", "-b", "dev")
    deploy = app.shiplane("deploy", "dev")
    assert deploy.code == 0, deploy.stdout + deploy.stderr
    steps = {s["name"]: s for s in deploy.data["steps"]}
    assert steps["verify"]["detail"].split(",")[1].strip().startswith("0 failed"), steps["verify"]
    health = httpx.get(app.url("dev", case.health), timeout=5)
    assert health.status_code == 200, health.text

    if case.table is not None:
        assert steps["migrate"]["detail"].startswith("applied "), steps["migrate"]
        conn = sqlite3.connect(app.root / "dev" / "shared" / f"{case.name}.db")
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
        assert case.table in names
        listed = httpx.get(app.url("dev", "/api/items"), timeout=5)
        assert listed.status_code == 200 and listed.json() == {"items": []}, listed.text

    # prod is gated: the plain deploy is refused and names the road.
    refused = app.shiplane("deploy", "prod")
    assert refused.code == 6, refused.stdout + refused.stderr
    assert "promote prod" in refused.data["error"]["next_action"]


def test_init_deploys_the_knex_app_on_postgresql(tmp_path: Path, postgres: PgServer) -> None:
    """examples/knex_notes (node, knex, pg) without its shiplane.toml: init is given each
    environment's database with the password as ${DB_PASSWORD}; npm ci builds each release."""
    app = example_without_config(tmp_path, "knex_notes")
    # npm's own cache, shared across runs: a release's `npm ci` reads the registry once.
    app.env["npm_config_cache"] = str(ROOT / ".cache" / "npm")
    names = {env: f"init_{env}_{secrets.token_hex(4)}" for env in ("dev", "prod")}
    urls = {
        env: f"postgresql://postgres:${{DB_PASSWORD}}@127.0.0.1:{postgres.port}/{name}"
        for env, name in names.items()
    }
    ports = ["--dev-port", str(app.ports["dev"]), "--prod-port", str(app.ports["prod"])]
    try:
        literal = app.shiplane(
            "init", *ports, "--dev-database-url", postgres.url(names["dev"]), "--json"
        )
        assert literal.code == 64, literal.stdout + literal.stderr
        assert "DB_PASSWORD" in literal.data["error"]["next_action"]
        assert postgres.password not in literal.stdout + literal.stderr
        assert not (app.path / "shiplane.toml").exists()

        for env, name in names.items():
            postgres.create_database(name)
            (app.path / f".env.{env}").write_text(f"DB_PASSWORD={postgres.password}\n")
        (app.path / ".git" / "info" / "exclude").write_text(".env.dev\n.env.prod\n")
        run = app.shiplane(
            "init",
            *ports,
            "--dev-database-url",
            urls["dev"],
            "--prod-database-url",
            urls["prod"],
            "--json",
        )
        assert run.code == 0, run.stdout + run.stderr
        facts = run.data["facts"]
        assert (facts["framework"], facts["engine"]) == ("node", "knex"), facts
        assert "schema and migrations" in facts["checks"], facts
        config = tomllib.loads((app.path / "shiplane.toml").read_text())
        assert config["environments"]["dev"]["database"]["url"] == urls["dev"]
        assert config["environments"]["prod"]["env_file"] == ".env.prod"

        app.commit("shiplane init")
        app.git("checkout", "-q", "-b", "dev")
        deploy = app.shiplane("deploy", "dev")
        assert deploy.code == 0, deploy.stdout + deploy.stderr
        steps = {s["name"]: s for s in deploy.data["steps"]}
        assert steps["migrate"]["detail"].startswith("applied "), steps["migrate"]
        assert ", 0 failed" in steps["verify"]["detail"], steps["verify"]
        created = httpx.post(app.url("dev", "/api/notes"), json={"title": "init"}, timeout=5)
        assert created.status_code == 201, created.text
        with psycopg.connect(postgres.url(names["dev"])) as conn:
            titles = [r[0] for r in conn.execute("SELECT title FROM notes")]
        assert "init" in titles
        assert postgres.password not in deploy.stdout + deploy.stderr
    finally:
        app.stop_server()
        wait_no_children(tmp_path)
