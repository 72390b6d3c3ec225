"""`shiplane migrate ENV status|up|down|lint|rehearse`: migrations outside a deploy."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shiplane import gitops
from shiplane.backup import create_backup
from shiplane.backup.encrypt import for_env
from shiplane.config.models import Config
from shiplane.databases import Database
from shiplane.errors import ConfigError, MigrationError
from shiplane.migrate.base import MigrationEngine
from shiplane.migrate.lint import lint
from shiplane.migrate.registry import discover_for, engine_for
from shiplane.migrate.rehearse import rehearse
from shiplane.migrate.schema import schema_state
from shiplane.operations.database import database_for, env_lock, serving_release_dir
from shiplane.operations.session import Session
from shiplane.results import Result
from shiplane.state.db import record_fingerprint

ACTIONS = ("status", "up", "down", "lint", "rehearse")


def check_migrate(action: str, to: int | None) -> None:
    if action not in ACTIONS:
        raise ConfigError(
            f"unknown migrate action {action!r}", next_action=f"use one of: {', '.join(ACTIONS)}"
        )
    if action == "down" and to is None:
        raise ConfigError(
            "migrate down needs --to N", next_action="e.g. shiplane migrate dev down --to 1"
        )


@contextmanager
def sent_tree(session: Session, source: dict[str, Any] | None) -> Iterator[Path | None]:
    """The tree of the commit the client sent (``source``, in the server's repository),
    exported into a scratch directory of the server's for as long as it is needed; None when
    no commit was sent (a direct call)."""
    sha = (source or {}).get("sha")
    if not isinstance(sha, str) or not sha:
        yield None
        return
    session.layout.ensure()
    scratch = Path(tempfile.mkdtemp(prefix=".migrate-", dir=session.layout.root))
    try:
        gitops.export(session.layout.repo, sha, scratch / "tree")
        yield scratch / "tree"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def migrate(
    session: Session,
    env: str,
    action: str,
    to: int | None,
    dry_run: bool,
    source: dict[str, Any] | None = None,
) -> Result:
    with sent_tree(session, source) as tree:
        return _migrate(session, env, action, to, dry_run, tree)


def _migrate(
    session: Session, env: str, action: str, to: int | None, dry_run: bool, tree: Path | None
) -> Result:
    loaded, layout, db = session.loaded, session.layout, session.db
    database = database_for(loaded, layout, env)
    layout.ensure(env)
    config = loaded.config
    # What serves; before the first deploy, the commit the client sent (the server reads
    # code from its repository, never from the client's working tree).
    serving = serving_release_dir(loaded, db, env)
    released = bool((db.env_state(env) or {}).get("spec"))
    files = discover_for(config, serving if released or tree is None else tree)
    engine = engine_for(config, database)
    plan = engine.plan(files)
    result = Result(command=f"migrate {action}", env=env)
    result.data.update(database=database.describe(), **plan.to_dict())
    if action == "status":
        result.data["schema"] = schema_state(db, env, database)
        return result
    if action in ("lint", "rehearse"):
        _lint_or_rehearse(result, action, config, engine, database, tree or serving)
        return result
    if action == "down" and not engine.capabilities.revert:
        raise MigrationError(
            f"the {engine.name} migration engine cannot revert to a version",
            step="migrate",
            next_action=f"restore a backup instead: `shiplane backups {env}`, then "
            f"`shiplane restore {env} ID --yes`",
        )
    if dry_run:
        if action == "up":
            todo = [m for m in plan.pending if to is None or m.version <= to]
            result.data["would_apply"] = [
                {"migration": m.label, "statements": m.statements("up")} for m in todo
            ]
        else:
            result.data["would_revert"] = [
                a["label"] for a in reversed(plan.applied) if a["version"] > (to or 0)
            ]
        result.data["dry_run"] = True
        return result
    with env_lock(db, env, "migrate"):
        engine.check_not_edited(plan)
        backup = create_backup(
            database,
            layout.backups(env),
            {"env": env, "reason": f"migrate {action}", "migrations": plan.to_dict()["applied"]},
            for_env(session.loaded.config.environments[env].backup_encryption, layout.server.root),
        )
        if action == "up":
            result.data["applied_now"] = engine.up(files, to=to)
        else:
            assert to is not None
            result.data["reverted_now"] = engine.down(files, to=to)
        result.data["backup_id"] = backup["id"]
        result.data.update(engine.plan(files).to_dict())
        record_fingerprint(db, env, database.fingerprint(), f"migrate {action}")
    return result


def _lint_or_rehearse(
    result: Result,
    action: str,
    config: Config,
    engine: MigrationEngine,
    database: Database,
    candidate_dir: Path,
) -> None:
    """Both look at the same thing: what is about to ship (the sent commit's migrations, or
    what serves when none was sent) against this database. Its plan replaces the serving
    release's in the result, so ``pending`` says what was linted or rehearsed."""
    candidate = discover_for(config, candidate_dir)
    plan = engine.plan(candidate)
    result.data.update(plan.to_dict())
    pending = plan.pending
    if action == "lint":
        findings = []
        if engine.capabilities.lint:
            findings = [f.to_dict() for m in pending for f in lint(m, database)]
        else:
            result.data["lint_skipped"] = (
                f"the {engine.name} migration engine cannot lint its sources"
            )
        result.data["linted"] = len(pending) if engine.capabilities.lint else 0
        result.data["lint"] = findings
        result.data["blocking_for_gated_envs"] = [f for f in findings if not f["annotated"]]
    else:
        result.data["rehearsal"] = rehearse(database, candidate, engine.on)
    if not plan.may_change:
        result.data["note"] = f"no pending migrations: nothing to {action}"
