"""Migrations: discovery, checksums, apply/revert in one transaction."""

from shiplane.migrate.files import Migration, discover
from shiplane.migrate.runner import MigrationPlan, Migrator

__all__ = ["Migration", "MigrationPlan", "Migrator", "discover"]
