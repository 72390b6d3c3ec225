"""Building the Target for a verification from what state.db and the config say."""

from __future__ import annotations

from pathlib import Path

from shiplane.config.loader import EnvSettings, LoadedConfig
from shiplane.databases.for_env import open_env_database
from shiplane.layout import Layout
from shiplane.verify.target import Target


def frontdoor_url(settings: EnvSettings) -> str:
    return f"http://127.0.0.1:{settings.env.port}"


def make_target(
    loaded: LoadedConfig,
    layout: Layout,
    settings: EnvSettings,
    *,
    sha: str,
    release_dir: str | None,
    phase: str,
    base_url: str,
    current_url: str | None = None,
) -> Target:
    database = open_env_database(layout, settings)
    return Target(
        env=settings.name,
        base_url=base_url,
        sha=sha,
        phase=phase,
        database=database,
        release_dir=Path(release_dir) if release_dir else None,
        config=loaded.config,
        current_url=current_url,
        gated=settings.env.promote_from is not None,
        redact=settings.redactor(),
    )
