"""The commented shiplane.toml init writes from what detection found."""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

from shiplane.onboard.facts import Detected

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def value(item: Any) -> str:
    """A TOML value (JSON's string escapes are TOML's basic-string escapes)."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int | float):
        return repr(item)
    if isinstance(item, str):
        return json.dumps(item)
    if isinstance(item, list):
        return "[" + ", ".join(value(v) for v in item) + "]"
    if isinstance(item, dict):
        pairs = ", ".join(f"{key(k)} = {value(v)}" for k, v in item.items())
        return "{ " + pairs + " }" if pairs else "{}"
    raise TypeError(f"no TOML form for {item!r}")


def key(name: str) -> str:
    return name if BARE_KEY.match(name) else json.dumps(name)


def comment(text: str) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text, 96)]


def render(found: Detected, ports: dict[str, int]) -> str:
    app, env = found.app, found.env
    lines = [
        f"# shiplane.toml for {found.name}, written by `shiplane init` from what it found in this",
        "# repository; each choice says why. Edit freely (see the README's config reference).",
        "",
        "[app]",
        f"name = {value(found.name)}",
    ]
    if env is not None:
        lines += comment(f"Interpreter: {env.why}.")
        if env.python is not None:
            lines.append(f"python = {value(env.python)}")
    build = [*(env.build if env else []), *app.build]
    lines += comment("Build: run in each new release directory (an export of the commit).")
    lines.append(f"build = {value(build)}")
    run_why = comment(f"Run: {app.why}. {{host}} and {{port}} are where shiplane wants it.")
    if not found.from_procfile:
        lines += [*run_why, f"run = {value(app.run)}"]
    lines += comment(f"Health: {found.health_why}.")
    lines.append(f"health = {value(found.health)}")
    if app.static:
        lines += comment(
            "Static: collectstatic fills STATIC_ROOT in the build; the front door serves it from"
            " the release that serves (a missing file falls through to the app)."
        )
        lines.append(f"static = {value(app.static)}")
    if found.from_procfile or found.other_processes:
        lines += _processes(found, run_why)
    lines += ["", "[database]", *comment(f"Database: {found.database_why}.")]
    if found.database_url is not None:
        lines.append(f"url = {value(found.database_url)}")
    else:
        lines.append('# url = "sqlite:///app.db"')
    if app.engine is not None:
        lines += comment(f"Migrations: {app.engine_why}.")
        lines.append(f"engine = {value(app.engine)}")
        if app.migrations is not None:
            lines.append(f"migrations = {value(app.migrations)}")
    lines += _environments(found, ports)
    lines += _checks(found)
    return "\n".join(lines) + "\n"


def _database_of(found: Detected, env: str) -> list[str]:
    url = found.env_urls.get(env)
    if url is None:
        return []
    lines = [f"database.url = {value(url)}"]
    if "${" in url:
        lines += comment(
            f"${{...}} in the URL come from this file (KEY=value lines), kept out of git: add"
            f" .env.{env} to .gitignore."
        )
        lines.append(f'env_file = ".env.{env}"')
    return lines


def _processes(found: Detected, run_why: list[str]) -> list[str]:
    """The Procfile as [processes]: web, the release phase, every other line a worker."""
    lines = ["", "[processes]"]
    if found.from_procfile:
        lines += [*run_why, f"web = {value(found.app.run)}"]
    others = dict(found.other_processes)
    release = others.pop("release", None)
    if release is not None:
        lines += comment(
            "Procfile's release line: once per deploy, after migrations, before start."
        )
        lines.append(f"release = {value(release)}")
    if others:
        lines += comment(
            "Procfile's other lines: workers, started from the new release after the switch;"
            " each must stay up worker_grace seconds (default 5) or the deploy rolls back."
        )
        lines += [f"{key(name)} = {value(command)}" for name, command in others.items()]
    return lines


def _environments(found: Detected, ports: dict[str, int]) -> list[str]:
    variables = f"env = {value(found.app.env)}" if found.app.env else None
    why_env = comment(f"Variables for the app and its migrations ({found.app.framework}).")
    lines = ["", "[environments.dev]", 'branch = "dev"', f"port = {ports['dev']}"]
    lines += _database_of(found, "dev")
    lines += comment("`shiplane deploy dev` from a feature branch merges it into dev first.")
    lines.append("auto_merge = true")
    if variables:
        lines += [*why_env, variables]
    lines += ["", "[environments.prod]", 'branch = "main"', f"port = {ports['prod']}"]
    lines += _database_of(found, "prod")
    lines += comment("Gated: prod takes only what was verified in dev, by `shiplane promote prod`.")
    lines.append('promote_from = "dev"')
    lines += comment("Back up the database before every deploy to prod.")
    lines.append("backup = true")
    if variables:
        lines += [*why_env, variables]
    return lines


def _checks(found: Detected) -> list[str]:
    why = (
        f"Checks: {found.checks_why}. They run against the new instance before any traffic"
        " reaches it; the `smoke` group runs again after the switch."
    )
    lines = ["", *comment(why)]
    for check in found.checks:
        lines += ["", "[[verify.check]]"]
        lines += [f"{key(k)} = {value(v)}" for k, v in check.items()]
    return lines
