"""`shiplane init`: detect the app in the current directory (shiplane.onboard) and write a
commented shiplane.toml that deploys it; ``--dry-run`` prints it and the facts instead."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from shiplane.config.loader import CONFIG_NAME, parse_config
from shiplane.errors import ConfigError
from shiplane.onboard.plan import detect
from shiplane.onboard.render import render
from shiplane.results import Result

DEFAULT_PROD_PORT = 8000


def _ports(dev: int | None, prod: int | None) -> dict[str, int]:
    """The ports given, else 8001 for dev and 8000 for prod (a deploy's preflight says when
    one is taken, and by what)."""
    chosen = {"dev": dev or DEFAULT_PROD_PORT + 1, "prod": prod or DEFAULT_PROD_PORT}
    if chosen["dev"] == chosen["prod"]:
        raise ConfigError(
            f"dev and prod would both use port {chosen['dev']}",
            next_action="give each environment its own port (--dev-port, --prod-port)",
        )
    return chosen


def _env_urls(dev: str | None, prod: str | None) -> dict[str, str]:
    """The database URLs given per environment. A literal password would be committed with
    shiplane.toml, so it is refused: ${DB_PASSWORD} in the URL, the value in .env.<env>."""
    urls = {env: url for env, url in (("dev", dev), ("prod", prod)) if url}
    for env, url in urls.items():
        option = f"--{env}-database-url"
        if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ConfigError(
                f"{option}: {url.split(':', 1)[0]!r} is not a database URL shiplane knows",
                next_action=f"give {option} as sqlite:///FILE or postgresql://USER@HOST:PORT/NAME",
            )
        password = urlsplit(url).password
        if password and not password.startswith("${"):
            raise ConfigError(
                f"{option} holds a password, which init would write into shiplane.toml (committed)",
                next_action=(
                    f"write ${{DB_PASSWORD}} in its place and DB_PASSWORD=... in .env.{env}"
                    " (git-ignored)"
                ),
            )
    if urls and urls.get("dev") == urls.get("prod"):
        raise ConfigError(
            "dev and prod would share one database",
            next_action="give each environment its own database",
        )
    return urls


def app_name(repo: Path, name: str | None) -> str:
    app = name or re.sub(r"[^a-z0-9_-]", "-", repo.name.lower()).strip("-") or "app"
    if not app[0].isalpha():
        app = "app-" + app
    return app[:40]


def init(
    directory: Path | None = None,
    name: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    dev_port: int | None = None,
    prod_port: int | None = None,
    environ: dict[str, str] | None = None,
    probe: bool = True,
    dev_database_url: str | None = None,
    prod_database_url: str | None = None,
) -> Result:
    repo = (directory or Path.cwd()).resolve()
    target = repo / CONFIG_NAME
    exists = target.exists()
    if exists and not force and not dry_run:
        raise ConfigError(
            f"{target} already exists", next_action="edit it, or pass --force to overwrite it"
        )
    env_urls = _env_urls(dev_database_url, prod_database_url)
    environ = dict(os.environ) if environ is None else environ
    found = detect(repo, app_name(repo, name), environ, probe=probe, env_urls=env_urls)
    text = render(found, _ports(dev_port, prod_port))
    parse_config(text, target)  # what init writes must always load
    if not dry_run:
        target.write_text(text)
    result = Result(command="init")
    result.data.update(
        path=str(target),
        app=found.name,
        written=not dry_run,
        exists=exists,
        facts=found.facts(),
    )
    if dry_run:
        result.data["text"] = text
    return result
