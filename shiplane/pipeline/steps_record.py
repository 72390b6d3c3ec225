"""Steps after the pivot: record what serves, point `current` at it, prune old releases."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from shiplane.config.fingerprint import fingerprint
from shiplane.pipeline.context import Context
from shiplane.pipeline.saga import Step
from shiplane.state.db import record_fingerprint
from shiplane.state.releases import previous_release
from shiplane.targets.base import Instance, InstanceSpec
from shiplane.venvs import Store


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
        spec: InstanceSpec = ctx.facts.need("spec")
        instance: Instance = ctx.facts.need("instance")
        return {
            "release": ctx.facts.need("release"),
            "release_dir": ctx.facts.need("release_dir"),
            "sha": ctx.facts.need("sha"),
            "spec": spec.to_stored(),
            "port": ctx.settings.env_config.port,
            "instance_id": instance.id,
            "new_release": ctx.facts.new_release,
            # What a deploy or promotion runs with: a repeat of it is a no-op.
            "fingerprint": fingerprint(ctx.loaded, ctx.settings, ctx.facts.need("sha"))
            if ctx.options.get("fingerprint")
            else None,
        }

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        roll_forward(ctx, data)
        data["summary"] = f"{ctx.env} serves {data['release']}"
        return data

    def roll_forward(self, ctx: Context, records: dict[str, dict[str, Any]]) -> None:
        if "record" in records and records["record"].get("spec"):
            roll_forward(ctx, records["record"])
            return
        start = records["start"]
        spec = start["spec"]
        roll_forward(
            ctx,
            {
                "release": spec["release"],
                "release_dir": spec["release_dir"],
                "sha": spec["sha"],
                "spec": spec,
                "instance_id": start["instance_id"],
                # A rollback goes back to a release that exists already.
                "new_release": "target" not in records,
            },
        )


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
    spec = InstanceSpec.from_stored(data["spec"])
    ctx.db.set_env_state(
        ctx.env,
        release=data["release"],
        sha=data["sha"],
        port=data.get("port") or ctx.settings.env_config.port,
        health=spec.health,
        instance_id=data["instance_id"],
        deployment_id=ctx.deployment_id,
        spec=spec.to_stored(),
    )
    point_current(ctx.layout.current(ctx.env), Path(data["release_dir"]))
    database = ctx.database(spec.database_url)
    if database is not None:
        record_fingerprint(ctx.db, ctx.env, database.fingerprint(), f"deploy {ctx.deployment_id}")
    # The status stays "running" until the pipeline ends, so a crash in a later step (prune)
    # is still found and finished by recovery.
    ctx.db.update_deployment(ctx.deployment_id, release=data["release"], sha=data["sha"])


class PruneStep(Step):
    """Keep the newest N releases, the one serving, and the one `rollback` would go back to."""

    name = "prune"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        keep = ctx.settings.env_config.releases_kept or ctx.config.deploy.releases_kept
        releases = ctx.db.releases(ctx.env)
        serving = next(r for r in releases if r["name"] == ctx.facts.need("release"))
        previous = previous_release(releases, serving)
        fallback = previous["name"] if previous else None
        removed = []
        for release in releases[keep:]:
            if release["name"] in (serving["name"], fallback):
                continue
            shutil.rmtree(release["path"], ignore_errors=True)
            ctx.db.delete_release(ctx.env, release["name"])
            removed.append(release["name"])
        data["removed"] = removed
        data["summary"] = f"removed {len(removed)} old release(s)"
        # Virtualenvs go by reference: the ones no release of any environment points at.
        venvs = Store(ctx.layout.venvs).prune()
        if venvs:
            data["removed_venvs"] = venvs
            data["summary"] += f", {len(venvs)} unused virtualenv(s)"
        return data
