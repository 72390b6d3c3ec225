"""Reading an app's source without running it: its files, its routes, its tables."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from shiplane.onboard.facts import Route

# Never the app's: dependencies, virtualenvs, build output, VCS data.
SKIP_DIRS = frozenset(
    {".git", ".venv", "venv", "env", "node_modules", "__pycache__", "build", "dist", ".tox"}
)
MAX_FILE_BYTES = 512 * 1024
MAX_FILES = 2000

# @app.get("/x"), @bp.route("/x"), @router.post("/x")  (Flask, FastAPI, Starlette)
PY_DECORATOR = re.compile(
    r"@\w+\.(get|post|put|patch|delete|route|api_route)\(\s*[rbf]?[\"'](/[^\"']*)[\"']"
    r"(?P<rest>[^\n]*)"
)
# path("healthz", ...), re_path(r"^api/notes$", ...)  (Django urls.py)
DJANGO_PATH = re.compile(r"\b(?:re_)?path\(\s*r?[\"']\^?([^\"'$]*)\$?[\"']")
# app.get('/x', ...), router.post("/x")  (Express, Koa routers)
JS_ROUTE = re.compile(r"\b\w+\.(get|post|put|patch|delete)\(\s*[\"'`](/[^\"'`]*)[\"'`]")
TABLENAME = re.compile(r"__tablename__\s*=\s*[\"'](\w+)[\"']")
CREATE_TABLE = re.compile(
    r"(?:CREATE TABLE (?:IF NOT EXISTS )?[\"'`]?|create_table\(\s*[\"'])(\w+)", re.I
)
DJANGO_MODEL = re.compile(r"^class (\w+)\((?:models\.)?Model\)", re.M)


def files(repo: Path, suffixes: tuple[str, ...]) -> Iterator[Path]:
    """The app's own files with these suffixes, shallow first, bounded in number and size;
    virtualenvs and node_modules are never walked into."""
    found: list[Path] = []
    for directory, dirs, names in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        found += [Path(directory, n) for n in sorted(names) if n.endswith(suffixes)]
        if len(found) >= MAX_FILES:
            break
    for path in sorted(found, key=lambda p: (len(p.parts), str(p)))[:MAX_FILES]:
        if path.is_file() and path.stat().st_size <= MAX_FILE_BYTES:
            yield path


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def routes(repo: Path) -> list[Route]:
    """Routes found in decorators, urls.py and Express calls, in file order, each once."""
    found: list[Route] = []
    for path in files(repo, (".py", ".js", ".mjs", ".cjs", ".ts")):
        text = read(path)
        if path.suffix == ".py":
            for match in PY_DECORATOR.finditer(text):
                method = match.group(1).upper()
                if method in ("ROUTE", "API_ROUTE"):
                    posts = re.search(r"methods=\[\s*[\"']POST", match["rest"])
                    method = "POST" if posts else "GET"
                found.append(Route(method, match.group(2)))
            if path.name == "urls.py":
                found += [Route("GET", "/" + m.group(1)) for m in DJANGO_PATH.finditer(text)]
        else:
            found += [Route(m.group(1).upper(), m.group(2)) for m in JS_ROUTE.finditer(text)]
    unique: list[Route] = []
    for route in found:
        if route not in unique:
            unique.append(route)
    return unique


def has_params(path: str) -> bool:
    return any(mark in path for mark in ("<", "{", ":", "(", "*"))


def tables(repo: Path, migrations: str | None = None) -> list[str]:
    """Table names the models declare (SQLAlchemy ``__tablename__``, Django ``<app>_<model>``)
    and the migrations create."""
    found: list[str] = []
    for path in files(repo, (".py", ".sql")):
        text = read(path)
        found += TABLENAME.findall(text)
        relative = path.relative_to(repo)
        in_migrations = migrations is not None and relative.is_relative_to(migrations)
        if in_migrations or "migrations" in relative.parts:  # raw SQL, Alembic's create_table
            found += [t for t in CREATE_TABLE.findall(text) if t != "alembic_version"]
        if path.name == "models.py" and "django" in text:
            app = path.parent.name
            found += [f"{app}_{name.lower()}" for name in DJANGO_MODEL.findall(text)]
    return list(dict.fromkeys(found))
