"""Detection for `shiplane init` on small app trees: FastAPI, plain WSGI, Node with knex, a
Procfile, pyproject.toml with uv or poetry, an existing virtualenv; and what init writes
always loads."""

from __future__ import annotations

import sys
import tomllib
import venv
from pathlib import Path

import pytest

from shiplane.config.loader import parse_config
from shiplane.errors import ConfigError
from shiplane.onboard.plan import detect
from shiplane.onboard.render import render
from shiplane.operations.init import init

PORTS = {"dev": 18001, "prod": 18000}


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def written(root: Path) -> dict:
    text = render(detect(root, "app", environ={}), PORTS)
    parse_config(text, root / "shiplane.toml")  # init's output always loads
    return tomllib.loads(text)


FASTAPI = """from fastapi import FastAPI
import os

api = FastAPI()
DB = os.environ.get("DATABASE_URL", "sqlite:///shop.db")


@api.get("/health")
def health():
    return {"ok": True}


@api.get("/api/items/{item_id}")
def item(item_id: int):
    return {}


@api.get("/api/items")
def items():
    return []
"""


def test_fastapi_on_uvicorn_with_alembic_and_uv(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "main.py": FASTAPI,
            "alembic.ini": "[alembic]\nscript_location = %(here)s/db\n",
            "db/versions/001_x.py": 'op.create_table("items")\n',
            "pyproject.toml": '[project]\nname = "shop"\n',
            "uv.lock": "version = 1\n",
        },
    )
    config = written(root)
    assert config["app"]["run"] == "python -m uvicorn main:api --host {host} --port {port}"
    assert config["app"]["health"] == "/health"
    # No interpreter named: the build makes the release's virtualenv from uv.lock.
    assert config["app"]["build"] == [] and "python" not in config["app"]
    assert "uv.lock: shiplane builds it" in render(detect(root, "shop", environ={}), PORTS)
    assert config["database"] == {
        "url": "sqlite:///shop.db",
        "engine": "alembic",
        "migrations": "db",
    }
    checks = {c["name"]: c for c in config["verify"]["check"]}
    assert checks["GET /api/items"]["path"] == "/api/items"  # not the one with a parameter
    assert checks["schema and migrations"]["tables"] == {"items": []}


def test_plain_wsgi_with_poetry(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "site.py": "def application(environ, start_response):\n    return [b'']\n",
            "pyproject.toml": '[tool.poetry]\nname = "site"\n',
            "poetry.lock": "",
        },
    )
    found = detect(root, "site", environ={})
    assert found.app.framework == "wsgi"
    assert found.app.run == "python -m gunicorn --bind {host}:{port} site:application"
    assert found.health == "/"  # no health route: the home page
    assert found.env is not None and found.env.source == "poetry"
    assert found.env.build[-1].startswith("poetry install")
    assert found.database_url is None and found.checks == []
    written(root)


def test_node_with_knex(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "package.json": '{"scripts": {"start": "node server.js"}}',
            "package-lock.json": "{}",
            "server.js": "app.get('/healthz', h)\napp.get('/api/todos', list)\n"
            "app.get('/', home)\n",
            "knexfile.js": "module.exports = { client: 'pg', connection: "
            "process.env.DATABASE_URL, migrations: { directory: './db/migrations' } }\n",
        },
    )
    found = detect(root, "todo", environ={})
    assert (found.app.framework, found.app.run, found.app.engine) == ("node", "npm start", "knex")
    assert found.app.migrations == "db/migrations" and found.app.build == ["npm ci"]
    assert found.env is None  # no virtualenv for a Node app
    assert found.health == "/healthz"
    # PostgreSQL: the URL needs the user's password, so it is left for them (explained).
    assert found.database_url is None and "postgresql://" in found.database_why
    assert [c["name"] for c in found.checks] == ["home page", "GET /api/todos"]
    config = written(root)
    assert config["app"]["build"] == ["npm ci"] and "python" not in config["app"]


def test_procfile_becomes_processes(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "app.py": "from flask import Flask\napp = Flask(__name__)\n",
            "requirements.txt": "flask\n",
            "Procfile": "web: gunicorn -b 0.0.0.0:$PORT app:app\nworker: rq worker\n"
            "release: flask db upgrade\nmail: python mail.py --url $MAIL_URL\n",
        },
    )
    found = detect(root, "app", environ={})
    assert found.app.run == "gunicorn -b {host}:{port} app:app"
    assert found.other_processes == {
        "worker": "rq worker",
        "release": "flask db upgrade",
        "mail": "sh -c 'python mail.py --url $MAIL_URL'",
    }
    text = render(found, PORTS)
    config = tomllib.loads(text)
    assert "run" not in config["app"]
    assert config["processes"] == {
        "web": "gunicorn -b {host}:{port} app:app",
        "release": "flask db upgrade",
        "worker": "rq worker",
        "mail": "sh -c 'python mail.py --url $MAIL_URL'",
    }
    assert "Procfile's release line" in text
    assert config["app"]["build"] == [] and "python" not in config["app"]
    assert config["environments"]["dev"]["env"] == {"FLASK_APP": "app"}
    # What init writes is a config shiplane loads: web, workers and release where they belong.
    loaded = parse_config(text, root / "shiplane.toml")
    assert loaded.web_command == "gunicorn -b {host}:{port} app:app"
    assert loaded.processes.release == "flask db upgrade"
    assert loaded.processes.counts() == {"worker": 1, "mail": 1}


def test_existing_virtualenv_is_used_by_absolute_path(tmp_path: Path) -> None:
    root = tree(tmp_path / "app", {"wsgi.py": "def app(environ, start_response): ...\n"})
    venv.create(root / ".venv", with_pip=False)
    found = detect(root, "app", environ={})
    assert found.env is not None and found.env.python == str((root / ".venv").absolute())
    assert found.env.build == [] and "not in git" in found.env.why
    # shiplane's own virtualenv, even when active, is never taken for the app's.
    own = detect(root, "app", environ={"VIRTUAL_ENV": sys.prefix})
    assert own.env is not None and own.env.python != sys.prefix


def test_init_never_overwrites_without_force_and_dry_run_writes_nothing(tmp_path: Path) -> None:
    root = tree(tmp_path / "site", {"app.py": "from flask import Flask\napp = Flask('x')\n"})
    dry = init(root, dry_run=True, dev_port=18001, prod_port=18000, environ={})
    assert not (root / "shiplane.toml").exists() and dry.data["written"] is False
    assert dry.data["facts"]["framework"] == "flask" and "[app]" in dry.data["text"]
    init(root, dev_port=18001, prod_port=18000, environ={})
    (root / "shiplane.toml").write_text("# mine\n")
    with pytest.raises(ConfigError, match="already exists"):
        init(root, dev_port=18001, prod_port=18000, environ={})
    assert (root / "shiplane.toml").read_text() == "# mine\n"
    init(root, force=True, dev_port=18001, prod_port=18000, environ={})
    assert (root / "shiplane.toml").read_text().startswith("# shiplane.toml for site")


DJANGO_MANAGE = """import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_cfg.settings")
"""


@pytest.mark.parametrize(
    ("settings", "static"),
    [
        (
            'STATIC_URL = "/static/"\nSTATIC_ROOT = BASE_DIR / "staticfiles"\n',
            {"/static": "staticfiles"},
        ),
        (
            'STATIC_URL = "assets/"\nSTATIC_ROOT = os.path.join(BASE_DIR, "out")\n',
            {"/assets": "out"},
        ),
        ('STATIC_ROOT = "/var/www/static"\n', None),  # outside the release
        ('STATIC_URL = "https://cdn.example.com/s/"\nSTATIC_ROOT = BASE_DIR / "s"\n', None),
        ('STATIC_ROOT = env("STATIC_ROOT")\n', None),
    ],
)
def test_django_static_root_is_collected_and_served_by_the_door(
    tmp_path: Path, settings: str, static: dict[str, str] | None
) -> None:
    root = tree(
        tmp_path,
        {
            "manage.py": DJANGO_MANAGE,
            "site_cfg/__init__.py": "",
            "site_cfg/settings.py": settings,
            "requirements.txt": "django\n",
        },
    )
    config = written(root)
    assert config["app"]["build"][-1] == "python manage.py collectstatic --noinput"
    assert config["app"].get("static") == static
