"""Which migration engine an app uses: shiplane's own runner or its Alembic environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from shiplane.config.models import Config
from shiplane.databases import Database
from shiplane.migrate.alembic import AlembicMigrator, discover_revisions
from shiplane.migrate.files import discover
from shiplane.migrate.runner import Migrator

AnyMigrator = Migrator | AlembicMigrator


def discover_for(config: Config, release_dir: Path) -> list[Any]:
    """The migrations of a release (or of the working tree), in order."""
    directory = release_dir / config.database.migrations
    if config.database.engine == "alembic":
        return discover_revisions(release_dir, directory / "versions")
    return discover(directory)


def migrator_for(
    config: Config, database: Database, log: Callable[[str], None] | None = None
) -> AnyMigrator:
    if config.database.engine == "alembic":
        return AlembicMigrator(database, ini=config.database.alembic_ini, log=log)
    return Migrator(database, log=log)
