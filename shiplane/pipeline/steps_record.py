"""Steps after the pivot: record what serves, point `current` at it, prune old releases."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from shiplane.pipeline.context import Context
from shiplane.pipeline.saga import Step
from shiplane.runtime.local import InstanceSpec
from shiplane.state.db import record_fingerprint


def point_current(link: Path, release_dir: Path) -> None:
    """Replace the `current` symlink atomically (rename over the old link)."""
    tmp = link.with_name(f".current-{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(release_dir)
    os.replace(tmp, link)


class RecordStep(Step):
    name = "record"

    def prepare(self, ctx: Context) -> dict[str, Any]:
        spec: InstanceSpec = ctx.facts["spec"]
        return {
            "release": ctx.facts["release"],
            "release_dir": ctx.facts["release_dir"],
            "sha": ctx.facts["sha"],
            "spec": spec.to_dict(),
            "instance_id": ctx.facts["instance"]["id"],
            "new_release": ctx.facts.get("new_release", True),
        }

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        roll_forward(ctx, data)
        data["summary"] = f"{ctx.env} serves {data['release']}"
        return data


def roll_forward(ctx: Context, data: dict[str, Any]) -> None:
    """Idempotent: also what recovery runs for a deployment that crashed after its pivot."""
    if data.get("new_release", True):
        ctx.db.add_release(
            ctx.env,
            data["release"],
            data["sha"],
            data["release_dir"],
            deployment_id=ctx.deployment_id,
        )
    spec = data["spec"]
    ctx.db.set_env_state(
        ctx.env,
        release=data["release"],
        sha=data["sha"],
        port=spec["port"],
        health=spec["health"],
        instance_id=data["instance_id"],
        deployment_id=ctx.deployment_id,
        spec=spec,
    )
    point_current(ctx.layout.current(ctx.env), Path(data["release_dir"]))
    database = ctx.database(spec.get("database_url"))
    if database is not None:
        record_fingerprint(ctx.db, ctx.env, database.fingerprint(), f"deploy {ctx.deployment_id}")
    # The status stays "running" until the pipeline ends, so a crash in a later step (prune)
    # is still found and finished by recovery.
    ctx.db.update_deployment(ctx.deployment_id, release=data["release"], sha=data["sha"])


class PruneStep(Step):
    """Keep the newest N releases, the one serving, and the one `rollback` would go back to."""

    name = "prune"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        assert ctx.settings is not None
        keep = ctx.settings.env.releases_kept or ctx.config.deploy.releases_kept
        releases = ctx.db.releases(ctx.env)
        serving = next(r for r in releases if r["name"] == ctx.facts["release"])
        fallback = next(
            (r["name"] for r in releases
             if r["created_at"] < serving["created_at"] and r["sha"] != serving["sha"]),
            None,
        )  # fmt: skip
        removed = []
        for release in releases[keep:]:
            if release["name"] in (serving["name"], fallback):
                continue
            shutil.rmtree(release["path"], ignore_errors=True)
            ctx.db.delete_release(ctx.env, release["name"])
            removed.append(release["name"])
        data["removed"] = removed
        data["summary"] = f"removed {len(removed)} old release(s)"
        return data
