"""Migration engines by name: ``[database] engine`` picks one here and nowhere else."""

from __future__ import annotations

from pathlib import Path

from shiplane.config.loader import CONFIG_NAME, parse_config
from shiplane.config.models import ENGINE_NAMES, Config, DatabaseConfig
from shiplane.databases.base import Database
from shiplane.errors import ConfigError
from shiplane.launch.base import RunAs
from shiplane.migrate.alembic import AlembicMigrator
from shiplane.migrate.base import Log, MigrationEngine, MigrationSource
from shiplane.migrate.command import CommandEngine
from shiplane.migrate.django import DjangoEngine
from shiplane.migrate.flask_migrate import FlaskMigrateEngine
from shiplane.migrate.knex import KnexEngine
from shiplane.migrate.runner import Migrator
from shiplane.migrate.tools import AppTools

ENGINES: dict[str, type[MigrationEngine]] = {
    Migrator.name: Migrator,
    AlembicMigrator.name: AlembicMigrator,
    CommandEngine.name: CommandEngine,
    FlaskMigrateEngine.name: FlaskMigrateEngine,
    DjangoEngine.name: DjangoEngine,
    KnexEngine.name: KnexEngine,
}

# Config validates database.engine against its own tuple; a name added here only would pass
# nowhere, one added there only would fail at deploy time. Fail at import instead.
if tuple(ENGINES) != ENGINE_NAMES:
    raise RuntimeError(
        f"shiplane.config.models.ENGINE_NAMES {ENGINE_NAMES} does not match the registered "
        f"migration engines {tuple(ENGINES)}"
    )


def engine_class(settings: DatabaseConfig) -> type[MigrationEngine]:
    engine = ENGINES.get(settings.engine)
    if engine is None:
        known = ", ".join(ENGINES)
        raise ConfigError(
            f"database.engine = {settings.engine!r}: unknown migration engine (known: {known})",
            next_action=f"set database.engine to one of: {known}",
        )
    return engine


def engine_for(
    config: Config,
    database: Database,
    log: Log | None = None,
    env: str | None = None,
    tools: AppTools | None = None,
) -> MigrationEngine:
    """The configured engine; with ``env``, it runs the app's tools as that environment's user,
    with ``tools`` (the environment's variables, the app's interpreter, the release dir)."""
    run_as = RunAs(config.app.name, env) if env is not None else None
    tools = tools or AppTools(python=config.app.python)
    return engine_class(config.database)(database, config.database, log, run_as, tools)


def discover_for(config: Config, release_dir: Path) -> list[MigrationSource]:
    """The migrations of a release (or of the working tree), in order."""
    return engine_class(config.database).discover(config.database, release_dir)


def release_engine(release_dir: Path, database: Database) -> MigrationEngine:
    """The engine a release declares in its own shiplane.toml: what the server has to go on.

    A release without one (its config lived elsewhere) gets the default engine."""
    path = release_dir / CONFIG_NAME
    config = parse_config(path.read_text(encoding="utf-8"), path) if path.is_file() else None
    settings = config.database if config else DatabaseConfig()
    tools = AppTools(release_dir, python=config.app.python if config else None)
    return engine_class(settings)(database, settings, tools=tools)
