"""Migrations: the MigrationEngine seam (base.py), its engines by name (registry.py), shiplane's
own runner (files, checksums, one transaction per run) and the Alembic adapter."""

from shiplane.migrate.base import (
    AppliedMigration,
    Capabilities,
    MigrationEngine,
    MigrationPlan,
    MigrationSource,
)
from shiplane.migrate.files import Migration, discover
from shiplane.migrate.runner import Migrator

__all__ = [
    "AppliedMigration",
    "Capabilities",
    "Migration",
    "MigrationEngine",
    "MigrationPlan",
    "MigrationSource",
    "Migrator",
    "discover",
]
