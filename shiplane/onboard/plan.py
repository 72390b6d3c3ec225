"""From a repository to what init writes: the app, its interpreter, health path, database,
and a starter set of checks, each with the reason for it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from shiplane.onboard.detect import detect_app, procfile
from shiplane.onboard.facts import AppGuess, Detected, Route
from shiplane.onboard.probe import probe_health
from shiplane.onboard.python_env import python_env
from shiplane.onboard.source import files, has_params, read, routes, tables

HEALTH_PATHS = ("/healthz", "/health", "/up", "/_health")
POSTGRES = re.compile(r"postgres|psycopg|client\s*:\s*[\"']pg[\"']")
SQLITE_FILE = re.compile(r"[\"'/]([\w-]+\.(?:db|sqlite3?))[\"']")


def _health(repo: Path, found: list[Route]) -> tuple[str, str]:
    gets = {r.path.rstrip("/") or "/" for r in found if r.method == "GET"}
    for candidate in HEALTH_PATHS:
        if candidate in gets:
            return candidate, f"the app has a GET {candidate} route"
    # A hand-written router (node:http's `url.pathname === "/healthz"`) has no route table to
    # read, but still names the path as a string.
    texts = [read(p) for p in files(repo, (".py", ".js", ".cjs", ".mjs", ".ts"))]
    for candidate in HEALTH_PATHS:
        literal = re.compile(rf"[\"'`]{re.escape(candidate)}[\"'`]")
        if any(literal.search(t) for t in texts):
            return candidate, f"the source compares the request path with {candidate!r}"
    return "/", f"no {', '.join(HEALTH_PATHS)} route found: the home page counts as health"


def _database(repo: Path, guess: AppGuess) -> tuple[str | None, str]:
    texts = [read(p) for p in files(repo, (".py", ".js", ".cjs", ".mjs", ".ts"))]
    reads_url = any("DATABASE_URL" in t for t in texts)
    if not reads_url:
        if guess.engine is None:
            return None, "no database found (the app does not read DATABASE_URL)"
        return None, (
            "the app does not read DATABASE_URL: make it read it, then set url (shiplane sets"
            " DATABASE_URL for the app, its migrations and its checks)"
        )
    names = [m.group(1) for t in texts for m in SQLITE_FILE.finditer(t)]
    if not names and any(POSTGRES.search(t) for t in texts):
        return None, (
            "the app reads DATABASE_URL and uses PostgreSQL: set url, e.g."
            ' "postgresql://USER:${DB_PASSWORD}@localhost:5432/NAME" (${...} from env_file)'
        )
    name = names[0] if names else f"{repo.name}.db"
    return f"sqlite:///{name}", (
        f"the app reads DATABASE_URL (shiplane sets it); SQLite file {name} like its default,"
        " kept in <deploy root>/<env>/shared/ across releases"
    )


def _checks(found: list[Route], health: str, table_names: list[str], schema: bool) -> list[Any]:
    checks: list[dict[str, Any]] = []
    gets = [r.path for r in found if r.method == "GET" and not has_params(r.path)]
    if "/" in gets or "" in gets:
        checks.append({"name": "home page", "kind": "http", "group": "smoke", "path": "/"})
    api = next((p for p in gets if p.startswith("/api") and p != health), None)
    if api is not None:
        checks.append({"name": f"GET {api}", "kind": "http", "group": "api", "path": api})
    if schema:
        tables: dict[str, list[str]] = {name: [] for name in table_names}
        checks.append({"name": "schema and migrations", "kind": "schema", "tables": tables})
    return checks


def detect(
    repo: Path,
    name: str,
    environ: dict[str, str] | None = None,
    probe: bool = True,
    env_urls: dict[str, str] | None = None,
) -> Detected:
    """What init writes for ``repo``; ``env_urls`` are the databases the user named per
    environment (--dev-database-url, --prod-database-url)."""
    guess = detect_app(repo)
    others = procfile(repo)
    from_procfile = "web" in others
    if from_procfile:
        guess.run = others.pop("web")
        guess.why = f"Procfile's web line (the app looks like {guess.framework})"
    found = routes(repo)
    env = python_env(repo, environ) if guess.python else None
    health, health_why = _health(repo, found)
    if probe and health == "/" and not guess.build and not (env and env.build):
        # Nothing to read the routes from: ask the app itself (it needs no build to start).
        python = env.python if env else None
        answered, seen = probe_health(repo, guess.run, python, guess.env, (*HEALTH_PATHS, "/"))
        health, health_why = (answered, seen) if answered else ("/", f"{health_why}; {seen}")
    url, url_why = _database(repo, guess)
    env_urls = env_urls or {}
    if env_urls:
        named = " and ".join(sorted(env_urls))
        url_why = f"shiplane sets DATABASE_URL: the database.url of {named} below, as given to init"
    table_names = tables(repo, guess.migrations) if guess.python else []
    has_database = url is not None or len(env_urls) == 2
    checks = _checks(found, health, table_names, schema=has_database and bool(guess.engine))
    parts = [c["name"] for c in checks]
    return Detected(
        name=name,
        app=guess,
        env=env,
        health=health,
        health_why=health_why,
        database_url=url,
        database_why=url_why,
        env_urls=env_urls,
        checks=checks,
        checks_why=(
            f"a starter set from the routes and models found ({', '.join(parts)})"
            if parts
            else "no routes found to check: add [[verify.check]] tables"
        ),
        routes=found,
        other_processes=others,
        tables=table_names,
        from_procfile=from_procfile,
    )
