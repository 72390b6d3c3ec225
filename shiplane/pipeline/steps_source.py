"""Steps that turn a ref into an immutable, built release directory."""

from __future__ import annotations

import os
import shlex
import shutil
import time
from pathlib import Path
from typing import Any

from shiplane import gitops
from shiplane.errors import BuildError
from shiplane.gitops import server_repo
from shiplane.launch import launcher
from shiplane.launch.base import RunAs, run_captured
from shiplane.pipeline import rolled_back
from shiplane.pipeline.context import Context
from shiplane.pipeline.saga import Step
from shiplane.procenv import app_python_layer, child_environment
from shiplane.state import lock
from shiplane.venvs import Builder, ReleaseVenv, ensure_release_venv


class LockStep(Step):
    name = "lock"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        taken = lock.acquire(ctx.db, ctx.env, ctx.deployment_id)
        return {"summary": f"took the {ctx.env} lock", "took_over_from": taken.stale_holder}

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        lock.release(ctx.db, ctx.env, ctx.deployment_id)
        return None


class ResolveStep(Step):
    """The commit the client sent (``options["source"]``, already in the server's repository);
    when it names a branch to take it from, merge it into the env branch there first. A gated
    env's branch never moves here: only a promotion moves it."""

    name = "resolve"

    def prepare(self, ctx: Context) -> dict[str, Any]:
        repo = server_repo.ensure(ctx.layout.repo)
        env_config = ctx.settings.env_config
        source = ctx.options["source"]
        data: dict[str, Any] = {
            "repo": str(repo),
            "branch": env_config.branch,
            "ref": source["ref"],
            "source_sha": source["sha"],
        }
        if source.get("merge_from") and not env_config.gated:
            data["merge_from"] = source["merge_from"]
            data["base"] = source.get("base")
            data["branch_before"] = gitops.branch_sha(repo, env_config.branch)
        return data

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        repo = Path(data["repo"])
        sha = gitops.resolve(repo, data["source_sha"])
        # A merge's history is both sides': checked before the branch moves.
        tip = gitops.branch_sha(repo, data["branch"]) or data.get("base")
        rolled_back.guard(ctx, data, repo, [sha, tip] if data.get("merge_from") and tip else [sha])
        if data.get("merge_from"):
            merged = gitops.merge_into(
                repo, sha, data["merge_from"], data["branch"], base=data.get("base")
            )
            data["merge"] = merged.kind
            data["branch_before"] = merged.before  # the branch may have moved since prepare
            data["branch_after"] = merged.after
            sha = merged.after
            ctx.log(f"merged {data['merge_from']} into {data['branch']} ({merged.kind})")
        ctx.facts.sha = sha
        data["sha"] = sha
        data["subject"] = gitops.commit_subject(repo, sha)
        ctx.db.update_deployment(ctx.deployment_id, sha=sha, ref=data["ref"])
        data["summary"] = f"{data['ref']} -> {sha[:7]}"
        if data.get("merge_from"):  # the merge is what an agent must not miss
            data["summary"] += (
                f" (merged {data['merge_from']} into {data['branch']}: {data['merge']})"
            )
        return data

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        marked = rolled_back.unguard(ctx, data)
        after = data.get("branch_after")
        if not after or after == data.get("branch_before"):
            return marked
        gitops.reset_branch(Path(data["repo"]), data["branch"], data.get("branch_before"), after)
        return f"branch {data['branch']} put back to {str(data.get('branch_before'))[:7]}"


class PromoteRefStep(Step):
    """Fast-forward the gated env's branch (in the server's repository) to the verified
    commit; diverged is a refusal."""

    name = "resolve"

    def prepare(self, ctx: Context) -> dict[str, Any]:
        repo = server_repo.ensure(ctx.layout.repo)
        branch = ctx.settings.env_config.branch
        return {
            "repo": str(repo),
            "branch": branch,
            "branch_before": gitops.branch_sha(repo, branch),
            "sha": ctx.options["sha"],
        }

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        repo, branch, sha = Path(data["repo"]), data["branch"], data["sha"]
        rolled_back.guard(ctx, data, repo, [sha], command="promote")
        data["kind"] = gitops.fast_forward(repo, branch, sha, data["branch_before"])
        ctx.facts.sha = sha
        ctx.db.update_deployment(ctx.deployment_id, sha=sha, ref=branch)
        data["summary"] = f"{branch} -> {sha[:7]} ({data['kind']})"
        return data

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        marked = rolled_back.unguard(ctx, data)
        if data.get("kind") in (None, "up-to-date"):
            return marked
        gitops.undo_fast_forward(
            Path(data["repo"]), data["branch"], data["branch_before"], data["sha"]
        )
        return f"branch {data['branch']} put back to {str(data['branch_before'])[:7]}"


class ExportStep(Step):
    name = "export"

    def prepare(self, ctx: Context) -> dict[str, Any]:
        sha: str = ctx.facts.need("sha")
        releases = ctx.layout.releases(ctx.env)
        numbers = [int(p.name.split("-")[0]) for p in releases.glob("*-*") if p.name[0].isdigit()]
        name = f"{max(numbers, default=0) + 1}-{sha[:7]}"
        return {"release": name, "path": str(releases / name)}

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        reuse = ctx.options.get("reuse_release")
        if reuse and Path(reuse).is_dir():
            # Same commit, environment-independent build: promote the very artifact.
            # What the source env's app made private at run time (gunicorn's control dir,
            # 0700 as its own user in enforced mode) is not part of the build: left behind.
            shutil.copytree(reuse, data["path"], symlinks=True, ignore=_unreadable)
            ctx.facts.reused = data["reused_from"] = reuse
        else:
            gitops.export(ctx.layout.repo, ctx.facts.need("sha"), Path(data["path"]))
        # Enforced mode: the environment's user builds and runs it; the server keeps reading.
        launcher().prepare(Path(data["path"]), RunAs(ctx.config.app.name, ctx.env))
        ctx.facts.release = data["release"]
        ctx.facts.release_dir = data["path"]
        ctx.db.update_deployment(ctx.deployment_id, release=data["release"])
        data["summary"] = data["release"]
        return data

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        path = Path(data["path"])
        state = ctx.db.env_state(ctx.env)
        if state and state.get("release") == data["release"]:
            return None  # it serves; never remove the current release
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
            return f"removed release dir {data['release']}"
        return None


def _unreadable(directory: str, names: list[str]) -> set[str]:
    return {
        name
        for name in names
        if not os.path.islink(os.path.join(directory, name))
        and not os.access(os.path.join(directory, name), os.R_OK)
    }


class BuildStep(Step):
    name = "build"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        if ctx.facts.reused:
            data["summary"] = f"reused the build of {Path(ctx.facts.need('reused')).name}"
            return data
        commands: list[str] = list(ctx.config.app.build)
        timeout: float = ctx.config.deploy.build_timeout
        child_env = ctx.facts.process_env or child_environment()
        run_as = RunAs(ctx.config.app.name, ctx.env)
        release_dir = Path(ctx.facts.need("release_dir"))
        venv: ReleaseVenv | None = None
        if ctx.config.app.python is None:
            # No interpreter named: the release gets the virtualenv of its dependency files.
            builder = Builder(child_env, run_as, timeout, ctx.log, ctx.redact)
            venv = ensure_release_venv(ctx.layout, release_dir, builder)
            if venv is not None:
                ctx.log(venv.summary())
                data["venv"] = venv.to_dict()
        # The app's interpreter first on PATH (`python manage.py collectstatic` is the app's).
        child_env = {
            **child_env,
            **app_python_layer(ctx.config.app.python, release_dir, child_env),
        }
        for command in commands:
            ctx.log(f"$ {command}")
            started = time.monotonic()
            try:
                proc = run_captured(
                    launcher(),
                    shlex.split(command),
                    run_as=run_as,
                    cwd=ctx.facts.need("release_dir"),
                    env=child_env,
                    timeout=timeout,
                )
            except OSError as exc:
                raise BuildError(
                    f"build command {command!r} could not start: {exc.strerror or exc}",
                    next_action="fix app.build in shiplane.toml",
                ) from exc
            if proc.timed_out:
                raise BuildError(
                    f"build command {command!r} timed out after {timeout:.0f}s",
                    next_action="speed up the build or raise deploy.build_timeout",
                )
            ctx.log(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                tail = ctx.redact((proc.stderr or proc.stdout).strip())[-400:]
                raise BuildError(
                    f"build command {command!r} exited {proc.returncode}: {tail}",
                    next_action=f"fix the build and commit; full output in {ctx.log.path}",
                )
            ctx.log(f"({time.monotonic() - started:.1f}s)")
        data["summary"] = f"{len(commands)} command(s)"
        if venv is not None:
            data["summary"] = f"{venv.summary()}; {data['summary']}"
        return data
