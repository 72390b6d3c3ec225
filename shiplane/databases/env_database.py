"""An environment's database: its URL made absolute (sqlite) and its ${SECRET}s filled in."""

from __future__ import annotations

from shiplane.config.loader import EnvSettings
from shiplane.databases import Database, open_database, resolve_url
from shiplane.layout import Layout


def database_url(layout: Layout, settings: EnvSettings) -> str | None:
    """Still with its ${SECRET} placeholders: safe to store and log."""
    if not settings.database_url:
        return None
    return layout.database_url(settings.name, settings.database_url)


def open_env_database(layout: Layout, settings: EnvSettings) -> Database | None:
    url = database_url(layout, settings)
    return open_database(resolve_url(url, settings.secrets)) if url else None
