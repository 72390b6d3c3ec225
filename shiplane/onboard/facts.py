"""What detection found: each choice with the reason a comment in shiplane.toml gives for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class AppGuess:
    """What one framework detector recognised (``None`` from it: not this framework)."""

    framework: str
    run: str
    why: str
    engine: str | None = None
    migrations: str | None = None
    engine_why: str = ""
    build: list[str] = field(default_factory=list)  # app steps after dependencies (collectstatic)
    env: dict[str, str] = field(default_factory=dict)
    static: dict[str, str] = field(default_factory=dict)  # URL prefix -> release dir (the door's)
    python: bool = True  # a Python app: dependencies and a virtualenv apply


@dataclass
class PythonEnv:
    """Where the app's interpreter comes from and what the build installs."""

    python: str | None
    build: list[str]
    why: str
    source: str  # requirements.txt | uv | poetry | pyproject | virtualenv | none


@dataclass
class Route:
    method: str
    path: str


@dataclass
class Detected:
    """Everything init writes, with the facts it came from (the JSON of `init --dry-run`)."""

    name: str
    app: AppGuess
    env: PythonEnv | None
    health: str
    health_why: str
    database_url: str | None
    database_why: str
    checks: list[dict[str, Any]]
    checks_why: str
    routes: list[Route]
    other_processes: dict[str, str] = field(default_factory=dict)  # Procfile: workers, release
    tables: list[str] = field(default_factory=list)
    env_urls: dict[str, str] = field(default_factory=dict)  # per environment, given to init
    from_procfile: bool = False  # run is the Procfile's web line: written as processes.web

    def facts(self) -> dict[str, Any]:
        return {
            "framework": self.app.framework,
            "run": self.app.run,
            "engine": self.app.engine,
            "migrations": self.app.migrations,
            "python": self.env.python if self.env else None,
            "dependencies": self.env.source if self.env else None,
            "build": [*(self.env.build if self.env else []), *self.app.build],
            "health": self.health,
            "health_why": self.health_why,
            "static": self.app.static,
            "database_url": self.database_url,
            "env_database_urls": self.env_urls,
            "routes": [f"{r.method} {r.path}" for r in self.routes],
            "tables": self.tables,
            "checks": [c["name"] for c in self.checks],
            "other_processes": self.other_processes,
        }
