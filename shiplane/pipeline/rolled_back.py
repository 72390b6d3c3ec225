"""Rolled-back commits stay out of an environment until someone brings them back on purpose.

``rewind`` is rollback's lasting effect on history: it records what the rollback took out and
moves the env branch (in the server's repository) back to what serves now, so the next merge
into it starts without them. A rollback is the one operation besides a promotion that may move
a gated env's branch: back to a release it already served.

``guard`` is what a deploy or promotion checks before its commit reaches the env branch: a
commit that has a rolled-back one among its ancestors is refused (exit 6, naming them) unless
it reverts it too, or the deploy says ``--include-rolled-back`` (then they are cleared, with
this deployment's id, and put back if the deployment is undone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiplane.errors import RefusedError
from shiplane.gitops import rolled_back as history
from shiplane.gitops.git import is_ancestor
from shiplane.pipeline.context import Context
from shiplane.state.rolled_back import RolledBackStore

FLAG = "--include-rolled-back"


def rewind(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Idempotent (recovery rolls it forward): record ``left``'s commits that ``target``
    lacks, clear those ``target`` has (it serves them again), move the branch back."""
    repo, left, target = Path(data["repo"]), data.get("left"), data["target"]
    store = RolledBackStore(ctx.db)
    taken = history.taken_out(repo, target, left) if left and left != target else []
    if taken:
        store.add(ctx.env, taken, ctx.deployment_id)
    served = [r.sha for r in store.active(ctx.env) if is_ancestor(repo, r.sha, target)]
    if served:
        store.clear(ctx.env, served, ctx.deployment_id, f"rollback to {target[:7]}")
    moved = bool(left) and history.rewind_branch(repo, data["branch"], str(left), target)
    data.update(rolled_back=taken, cleared=served, branch_moved=moved)
    if moved:
        ctx.log(f"moved {data['branch']} back from {str(left)[:7]} to {target[:7]}")
    if taken:
        ctx.log("rolled back: " + ", ".join(sha[:12] for sha in taken))
    return data


def guard(
    ctx: Context, data: dict[str, Any], repo: Path, commits: list[str], command: str = "deploy"
) -> None:
    """Refuse ``commits`` (what would reach the env branch) when they bring back a commit
    rolled back from this env; with ``--include-rolled-back``, clear those instead.
    ``command`` is what the person re-runs with the flag (deploy or promote)."""
    store = RolledBackStore(ctx.db)
    active = {r.sha: r for r in store.active(ctx.env)}
    if not active:
        return
    back = history.brought_back(repo, active, commits)
    if not back:
        return
    if ctx.options.get("include_rolled_back"):
        store.clear(ctx.env, back, ctx.deployment_id, FLAG)
        data["cleared_rolled_back"] = back
        ctx.log("brings back rolled-back commits on purpose: " + ", ".join(back))
        return
    named = ", ".join(f"{sha[:12]} (rolled back by {active[sha].rolled_back_by})" for sha in back)
    # The next action is a command as it runs; the other road (leave them out) is said.
    raise RefusedError(
        f"{commits[0][:7]} brings back commit(s) rolled back from {ctx.env}: {named}; "
        f"nothing was changed. To bring them back on purpose: the next action; to leave them "
        f"out: `git revert {' '.join(sha[:12] for sha in back)}`, then deploy again",
        step="resolve",
        next_action=f"shiplane {command} {ctx.env} {FLAG}",
    )


def unguard(ctx: Context, data: dict[str, Any]) -> str | None:
    """Undo of ``guard``'s clearing: the deployment did not happen, they are out again."""
    if not data.get("cleared_rolled_back"):
        return None
    RolledBackStore(ctx.db).unclear(ctx.env, ctx.deployment_id)
    return "rolled-back commits marked rolled back again"
