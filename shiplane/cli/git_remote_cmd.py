"""`shiplane remote add`: the `shiplane` git remote, so that `git push shiplane dev` deploys.

It asks this machine's server to create its repository (with its hooks) and sends it the
config (the hooks read the server's copy), then adds (or points) the remote in the user's
repository. A client never creates the server's repository itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shiplane.cli import render
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
    # The client's request path, the config models and git: only for this command (CLI
    # startup imports none of them).
    from shiplane import gitops
    from shiplane.caller import local_caller
    from shiplane.cli.connection import Local, ensure_then
    from shiplane.cli.remote import run_in_server
    from shiplane.config.loader import find_config, load_config
    from shiplane.errors import RefusedError
    from shiplane.gitops.git import git
    from shiplane.hostconfig import load_host_config
    from shiplane.layout import Layout, ServerLayout

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
    app = loaded.config.app.name
    # A read-only operation carries the config to the server, which keeps its copy.
    sent = run_in_server("history", local_caller(), config_path=path, limit=1)
    if not sent.get("ok"):
        return Result(command="remote add", **_failed(sent))
    connection = Local(ServerLayout.default())
    ensure_then(connection, lambda: connection.send_commits(user_repo, app, []))
    repo = Layout.for_app(app).repo
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


def _failed(payload: dict[str, Any]) -> dict[str, Any]:
    keys = ("ok", "exit_code", "error")
    return {k: payload[k] for k in keys if k in payload}


@remote_app.command("add")
def add(
    name: Annotated[str, typer.Option("--name", help="The remote's name.")] = "shiplane",
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Add the git remote `shiplane` (the server's repository) to this app's repository."""
    from shiplane.operations.boundary import guarded  # errors to results, as every operation

    result = guarded("remote add", None, lambda: add_remote(config, name))
    render.emit(result, render.wants_json(json_))
    raise typer.Exit(result.exit_code)
