"""`shiplane remote add`: the `shiplane` git remote, so that `git push shiplane dev` deploys.

Client-side only: it creates the server's repository if needed (with its hooks), records which
shiplane.toml the hooks read, and adds (or points) the remote in the user's repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shiplane import gitops
from shiplane.cli import render
from shiplane.config.loader import find_config, load_config
from shiplane.errors import RefusedError
from shiplane.gitops import server_repo
from shiplane.gitops.git import git
from shiplane.hostconfig import load_host_config
from shiplane.layout import Layout
from shiplane.operations.boundary import guarded
from shiplane.results import Result

remote_app = typer.Typer(
    help="The `shiplane` git remote: `git push shiplane dev` deploys dev.",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON on stdout (default when piped).")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Path to shiplane.toml (default: search up).")
]


def add_remote(config_path: Path | None, name: str) -> Result:
    if load_host_config() is not None:
        raise RefusedError(
            "on an enforced host the server's repository is its user's alone: clients cannot "
            "push to it, so there is no `shiplane` remote",
            step="remote",
            next_action="shiplane deploy ENV (it sends the commits over the socket)",
        )
    path = (config_path or find_config()).resolve()
    loaded = load_config(path)
    user_repo = gitops.ensure_repo(loaded.repo_dir)
    repo = server_repo.ensure(Layout.for_app(loaded.config.app.name).repo, path)
    exists = name in git(user_repo, "remote").split()
    git(user_repo, "remote", "set-url" if exists else "add", name, str(repo))
    result = Result(command="remote add")
    branches = {env: c.branch for env, c in loaded.config.environments.items() if not c.gated}
    result.data.update(
        remote=name,
        url=str(repo),
        updated=exists,
        push=[f"git push {name} {branch}" for branch in sorted(set(branches.values()))],
    )
    return result


@remote_app.command("add")
def add(
    name: Annotated[str, typer.Option("--name", help="The remote's name.")] = "shiplane",
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Add the git remote `shiplane` (the server's repository) to this app's repository."""
    result = guarded("remote add", None, lambda: add_remote(config, name))
    render.emit(result, render.wants_json(json_))
    raise typer.Exit(result.exit_code)
