"""`shiplane init`: write a commented shiplane.toml for the repository in the current directory."""

from __future__ import annotations

import re
from pathlib import Path

from shiplane.config.loader import CONFIG_NAME, parse_config
from shiplane.errors import ConfigError
from shiplane.results import Result

TEMPLATE = """# shiplane.toml: how shiplane builds, runs and checks {name}.
# Reference: see "Config file reference" in shiplane's README.

[app]
name = "{name}"
# Commands run in each new release directory (an export of the commit, not your working tree).
build = []
# How to serve the app; {{port}} and {{host}} are replaced by the port and address shiplane
# picks (loopback on this host). PORT is also set.
run = "{run}"
# A path that answers 2xx when the app is ready.
health = "/healthz"

[health]
interval = 1.0    # seconds between health checks of a new instance
timeout = 30.0    # seconds until it counts as never healthy

[deploy]
drain_timeout = 30.0   # seconds in-flight requests get before the old instance stops
releases_kept = 5

[database]
# url = "sqlite:///app.db"   # relative paths live in <deploy root>/<env>/shared/
migrations = "migrations"    # NNN_name.py (up(db)/down(db)) or NNN_name.sql (-- down section)

[environments.dev]
branch = "dev"
port = 8001
auto_merge = true      # `shiplane deploy dev` from a feature branch merges it into dev first
env = {{ APP_MODE = "development" }}
# env_file = ".env.dev" # KEY=VALUE secrets; never printed or logged

[environments.prod]
branch = "main"
port = 8000
backup = true          # back up the database before every deploy
"""


def _guess_run(repo: Path) -> str:
    if (repo / "package.json").exists():
        return "node server.js"
    if (repo / "manage.py").exists():
        return "python -m gunicorn --bind {host}:{port} config.wsgi"
    return "python -m gunicorn --bind {host}:{port} app:app"


def init(directory: Path | None = None, name: str | None = None, force: bool = False) -> Result:
    repo = (directory or Path.cwd()).resolve()
    target = repo / CONFIG_NAME
    if target.exists() and not force:
        raise ConfigError(
            f"{target} already exists", next_action="edit it, or pass --force to overwrite it"
        )
    app = name or re.sub(r"[^a-z0-9_-]", "-", repo.name.lower()).strip("-") or "app"
    if not app[0].isalpha():
        app = "app-" + app
    text = TEMPLATE.format(name=app, run=_guess_run(repo))
    parse_config(text, target)  # the template must always be valid
    target.write_text(text)
    result = Result(command="init")
    result.data.update(path=str(target), app=app)
    return result
