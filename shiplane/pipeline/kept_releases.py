"""Rollback's choice among kept releases when some directories are gone (a cleanup by hand, a
host restored without them). A missing release is built again from its commit, as the server
does for what serves when it starts (``shiplane.pipeline.rebuild_release``); one that cannot
be built again (its commit is gone, the kept build commands fail on it) is skipped over by a
plain `rollback`, which says so, and refused by name when `--to` asks for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiplane.config.models import Config
from shiplane.errors import ConfigError, ShiplaneError
from shiplane.launch.base import RunAs
from shiplane.layout import Layout
from shiplane.pipeline import rebuild_release
from shiplane.state.db import StateDB
from shiplane.state.releases import previous_release


@dataclass
class KeptReleases:
    """Builds missing releases again; what it rebuilt and what it skipped go into the step's
    record (and so into the JSON)."""

    layout: Layout
    app: str
    env: str
    rebuilt: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def ensure(self, release: dict[str, Any]) -> str | None:
        """None when ``release`` is on disk (again); else why it cannot be built again."""
        path = Path(release["path"])
        if not rebuild_release.needed(path):
            return None
        try:
            rebuild_release.rebuild_release(
                self.layout, RunAs(self.app, self.env), release["sha"], path
            )
        except (ShiplaneError, OSError) as exc:
            return str(exc)
        self.rebuilt.append(release["name"])
        return None


def named(target: dict[str, Any], kept: KeptReleases | None) -> dict[str, Any]:
    """``--to``'s release, on disk (again); refused by name when it cannot be built again."""
    reason = kept.ensure(target) if kept is not None else None
    if kept is not None and reason is not None:
        raise ConfigError(
            f"release {target['name']} ({target['sha'][:7]}) is not on disk and cannot be "
            f"built again: {reason}. A plain rollback skips over it to the newest release "
            "that can serve; `--to` takes another one (`shiplane history` lists them)",
            step="target",
            next_action=f"shiplane rollback {kept.env}",
        )
    return target


def older(
    releases: list[dict[str, Any]], current: dict[str, Any], kept: KeptReleases | None
) -> dict[str, Any] | None:
    """The newest release before ``current`` that is on disk or can be built again (None:
    there is none); those skipped on the way are in ``kept.skipped``."""
    candidates = releases
    while (candidate := previous_release(candidates, current)) is not None:
        if kept is None:
            return candidate
        reason = kept.ensure(candidate)
        if reason is None:
            return candidate
        kept.skipped.append({"release": candidate["name"], "sha": candidate["sha"], "why": reason})
        candidates = [r for r in candidates if r["created_at"] < candidate["created_at"]]
    return None


def fix_forward(config: Config | None, env: str) -> str:
    """The command that brings a fixed commit into ``env`` when there is nothing to roll back
    to: a deploy, or in a gated environment (where a deploy is refused) the promotion."""
    source = (
        config.environments[env].promote_from if config and env in config.environments else None
    )
    if source is None:
        return f"shiplane deploy {env}"
    return f"shiplane deploy {source} && shiplane verify {source} && shiplane promote {env}"


def serving_on_disk(
    db: StateDB,
    env: str,
    kept: KeptReleases,
    serving_release: Callable[..., dict[str, Any]],
    config: Config | None = None,
) -> dict[str, Any]:
    """What serves ``env``, built again first when its directory is gone (a restart starts
    a fresh instance of it); ConfigError naming why when it cannot be."""
    current = serving_release(db, env, on_disk=False)
    reason = kept.ensure(current)
    if reason is not None:
        raise ConfigError(
            f"the serving release {current['name']} is not on disk and cannot be built again: "
            f"{reason}",
            step="target",
            next_action=fix_forward(config, env),
        )
    return current
