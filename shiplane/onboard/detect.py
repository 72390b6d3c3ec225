"""One small detector per kind of app. Each reads files only (never imports or runs the app)
and returns an AppGuess, or None when the repository is not that kind of app. ``detect_app``
asks them in order of specificity: Django before Flask before FastAPI before plain WSGI."""

from __future__ import annotations

import configparser
import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path

from shiplane.config.static import check_static
from shiplane.onboard.facts import AppGuess
from shiplane.onboard.source import files, read

GUNICORN = "python -m gunicorn --bind {host}:{port}"
SETTINGS = re.compile(r"DJANGO_SETTINGS_MODULE[\"']\s*,\s*[\"']([\w.]+)[\"']")
FACTORY = re.compile(r"^def (create_app|make_app)\(\s*\)", re.M)
FLASK_OBJECT = re.compile(r"^(\w+)\s*=\s*Flask\(", re.M)
ASGI_OBJECT = re.compile(r"^(\w+)\s*=\s*(FastAPI|Starlette)\(", re.M)
STATIC_ROOT = re.compile(r"^STATIC_ROOT\s*=\s*(.+?)\s*$", re.M)
LAST_STRING = re.compile(r"[\"']([^\"']+)[\"']\)?$")
STATIC_URL = re.compile(r"^STATIC_URL\s*=\s*[\"']([^\"']*)[\"']", re.M)
PLAIN_DIR = re.compile(r"^[\w.-]+(/[\w.-]+)*$")
WSGI_CALLABLE = re.compile(r"^def (\w+)\(\s*environ\s*,\s*start_response\s*\)", re.M)


def _modules(repo: Path) -> list[tuple[str, str]]:
    """(importable module name, text) of the top-level modules and packages' __init__ and
    direct modules: where an app object or factory lives in the common layouts."""
    found = []
    for path in files(repo, (".py",)):
        parts = path.relative_to(repo).with_suffix("").parts
        if len(parts) > 2 or "migrations" in parts or "tests" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and all(p.isidentifier() for p in parts):
            found.append((".".join(parts), read(path)))
    return found


SHIPLANE_MIGRATION = re.compile(r"^\d+_\w+\.(py|sql)$")


def _migration_engine(repo: Path) -> tuple[str | None, str | None, str]:
    """Plain Alembic (alembic.ini at the top: its script_location is the migrations dir), or
    shiplane's own NNN_name.py / NNN_name.sql files in migrations/."""
    ini = repo / "alembic.ini"
    if not ini.is_file():
        directory = repo / "migrations"
        names = [p.name for p in directory.iterdir()] if directory.is_dir() else []
        if any(SHIPLANE_MIGRATION.match(n) for n in names):
            return "shiplane", "migrations", "migrations/ holds NNN_name.py / .sql files"
        return None, None, ""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read(ini))
        location = parser.get("alembic", "script_location", fallback="alembic")
    except configparser.Error:
        location = "alembic"
    location = location.replace("%(here)s/", "")
    return "alembic", location, f"alembic.ini names script_location = {location!r}"


def detect_django(repo: Path) -> AppGuess | None:
    manage = repo / "manage.py"
    if not manage.is_file():
        return None
    match = SETTINGS.search(read(manage))
    if match is None:
        return None
    settings = match.group(1)
    project = settings.rsplit(".", 1)[0]
    wsgi = f"{project}.wsgi"
    build = []
    text = read(repo / Path(*settings.split(".")).with_suffix(".py"))
    static = _django_static(text)
    if "STATIC_ROOT" in text:
        build.append("python manage.py collectstatic --noinput")
    return AppGuess(
        framework="django",
        run=f"{GUNICORN} {wsgi}",
        why=f"Django: manage.py sets DJANGO_SETTINGS_MODULE = {settings!r}; gunicorn serves {wsgi}",
        engine="django",
        engine_why="Django migrations: manage.py migrate / showmigrations --plan",
        build=build,
        static=static,
    )


def _django_static(settings: str) -> dict[str, str]:
    """``STATIC_URL`` -> ``STATIC_ROOT`` when the root is a plain directory under the project
    (``BASE_DIR / "staticfiles"``, ``os.path.join(BASE_DIR, "staticfiles")``): what
    collectstatic fills in the build and the front door then serves."""
    root = STATIC_ROOT.search(settings)
    if root is None:
        return {}
    expression = root.group(1)
    plain = expression[:1] in "\"'" and expression[-1:] == expression[:1]
    name = LAST_STRING.search(expression)
    if name is None or not (plain or "BASE_DIR" in expression):
        return {}  # from the environment, or somewhere init cannot tell
    url = STATIC_URL.search(settings)
    prefix = "/" + (url.group(1) if url else "static").strip("/")
    directory = name.group(1).rstrip("/")
    if not PLAIN_DIR.match(directory):
        return {}  # absolute: not the release's to serve
    try:
        return check_static({prefix: directory})  # a CDN's STATIC_URL, a dir outside: none
    except ValueError:
        return {}


def detect_flask(repo: Path) -> AppGuess | None:
    for module, text in _modules(repo):
        if "flask" not in text.lower() or "Flask(" not in text:
            continue
        factory = FACTORY.search(text)
        target = f"{module}:{factory.group(1)}()" if factory else None
        if target is None:
            obj = FLASK_OBJECT.search(text)
            if obj is None:
                continue
            target = f"{module}:{obj.group(1)}"
        kind = "an app factory" if factory else "an app object"
        guess = AppGuess(
            framework="flask",
            run=f"{GUNICORN} {target}",
            why=f"Flask: {module} has {kind}; gunicorn serves {target}",
            env={"FLASK_APP": module},
        )
        uses_migrate = any("flask_migrate" in t for _m, t in _modules(repo))
        if uses_migrate and (repo / "migrations" / "env.py").is_file():
            guess.engine, guess.migrations = "flask-migrate", "migrations"
            guess.engine_why = "Flask-Migrate: flask db upgrade / downgrade / current"
        else:
            guess.engine, guess.migrations, guess.engine_why = _migration_engine(repo)
        return guess
    return None


def detect_asgi(repo: Path) -> AppGuess | None:
    for module, text in _modules(repo):
        match = ASGI_OBJECT.search(text)
        if match is None:
            continue
        target = f"{module}:{match.group(1)}"
        guess = AppGuess(
            framework=match.group(2).lower(),
            run=f"python -m uvicorn {target} --host {{host}} --port {{port}}",
            why=f"{match.group(2)}: {module} defines {match.group(1)}; uvicorn serves {target}",
        )
        guess.engine, guess.migrations, guess.engine_why = _migration_engine(repo)
        return guess
    return None


def detect_wsgi(repo: Path) -> AppGuess | None:
    for module, text in _modules(repo):
        match = WSGI_CALLABLE.search(text)
        if match is None:
            continue
        target = f"{module}:{match.group(1)}"
        guess = AppGuess(
            framework="wsgi",
            run=f"{GUNICORN} {target}",
            why=f"plain WSGI: {module}.{match.group(1)}(environ, start_response)",
        )
        guess.engine, guess.migrations, guess.engine_why = _migration_engine(repo)
        return guess
    return None


def detect_node(repo: Path) -> AppGuess | None:
    package = repo / "package.json"
    if not package.is_file():
        return None
    try:
        scripts = json.loads(read(package)).get("scripts") or {}
    except ValueError:
        return None
    if "start" not in scripts:
        return None
    install = "npm ci" if (repo / "package-lock.json").is_file() else "npm install"
    guess = AppGuess(
        framework="node",
        run="npm start",
        why=f"Node: package.json's start script ({scripts['start']!r}); it must listen on $PORT",
        build=[install],
        python=False,
    )
    knexfile = next((p for p in sorted(repo.glob("knexfile.*")) if p.is_file()), None)
    if knexfile is not None:
        directory = re.search(r"directory\s*:\s*[\"'`]\.?/?([\w./-]+)[\"'`]", read(knexfile))
        guess.engine, guess.migrations = "knex", directory.group(1) if directory else "migrations"
        guess.engine_why = f"knex: {knexfile.name} (npx knex migrate:latest / down / list)"
    return guess


DETECTORS: tuple[Callable[[Path], AppGuess | None], ...] = (
    detect_django,
    detect_flask,
    detect_asgi,
    detect_wsgi,
    detect_node,
)


def detect_app(repo: Path) -> AppGuess:
    for detector in DETECTORS:
        guess = detector(repo)
        if guess is not None:
            return guess
    guess = AppGuess(
        framework="unknown",
        run=f"{GUNICORN} app:app",
        why="no framework recognised: a WSGI app object `app` in app.py is assumed; edit run",
    )
    guess.engine, guess.migrations, guess.engine_why = _migration_engine(repo)
    return guess


# What only a shell understands: a variable, a chain, a pipe, a redirection.
SHELL_SYNTAX = re.compile(r"[$&|;<>`]")


def procfile(repo: Path) -> dict[str, str]:
    """A Procfile's process types (``name: command``), $PORT as shiplane's {port} and an
    all-interfaces bind as {host} (instances listen where the target says: loopback, behind
    the front door). A command that needs a shell (``$VAR``, ``&&``, a pipe) runs in one, as
    the Procfile's would."""
    path = repo / "Procfile"
    if not path.is_file():
        return {}
    found = {}
    for line in read(path).splitlines():
        name, sep, command = line.partition(":")
        if sep and re.fullmatch(r"[A-Za-z0-9_-]+", name.strip()) and command.strip():
            command = re.sub(r"\$\{?PORT\}?", "{port}", command.strip())
            command = re.sub(r"\b0\.0\.0\.0:\{port\}", "{host}:{port}", command)
            if SHELL_SYNTAX.search(command):
                command = shlex.join(["sh", "-c", command])
            found[name.strip().lower()] = command
    return found
