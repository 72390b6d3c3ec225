"""The `shiplane` command. Thin: parse, call shiplane.api, render, exit with the result's code.

Errors become results with exit codes at the api boundary (shiplane.operations.boundary); only
usage errors the parser finds before any operation runs are turned into a result here.

Startup: `--help`, `status` and `history` must answer fast, so this module and the command
modules import only Typer, Rich (the help and the output) and small stdlib-only parts of
shiplane at the top. What a command needs beyond that (the config models, the api, git work,
the server) is imported inside the command; each such import says why it is there.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import TyperException

from shiplane.cli import help_format, render
from shiplane.cli.approvers_cmd import approvers_app
from shiplane.cli.data_cmd import data_app
from shiplane.cli.env_cmd import env_app
from shiplane.cli.factor import (
    ApproverOpt,
    FactorChoice,
    FactorFileOpt,
    PassphraseOpt,
    SshKeyOpt,
    TotpOpt,
)
from shiplane.cli.git_remote_cmd import remote_app
from shiplane.cli.logs_cmd import logs_app
from shiplane.cli.notify_cmd import notify_app
from shiplane.cli.options import (
    ConfigOpt,
    EnvArg,
    HoldTimeoutOpt,
    HostOpt,
    IncludeRolledBackOpt,
    JsonOpt,
    RedeployOpt,
    WaitDrainOpt,
    WaitWatchOpt,
    in_server,
)
from shiplane.cli.server_cmd import server_app
from shiplane.cli.setup_cmd import setup_app
from shiplane.cli.state_cmd import state_app
from shiplane.cli.tokens_cmd import tokens_app
from shiplane.errors import ShiplaneError
from shiplane.results import Result

help_format.apply()

app = typer.Typer(
    name="shiplane",
    help="Safe deployments for git-based web apps: deploy, verify, promote, roll back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # paragraphs flow: docstrings wrap at 100 columns
)
# Top-level commands kept in modules of their own (no name: merged into `shiplane`).
app.add_typer(logs_app)
app.add_typer(data_app)
app.add_typer(setup_app)
app.add_typer(server_app, name="server")
app.add_typer(tokens_app, name="tokens")
app.add_typer(env_app, name="env")
app.add_typer(notify_app, name="notify")
app.add_typer(remote_app, name="remote")
app.add_typer(approvers_app, name="approvers")
app.add_typer(state_app, name="state")


def _source_sha(env: str, ref: str | None, config: Path | None) -> str:
    """The commit ``deploy ENV`` would send, for a challenge bound to it ("" if unknown: the
    server then refuses the signature, and says why)."""
    # The config models and git work: only for a deploy signed with an SSH key.
    from shiplane.config.loader import find_config, load_config
    from shiplane.gitops import server_repo

    try:
        loaded = load_config((config or find_config()).resolve())
        env_config = loaded.config.environments[env]
        return server_repo.deploy_source(loaded.repo_dir, env_config, ref).sha
    except (ShiplaneError, KeyError):
        return ""


@app.callback()
def main(host: HostOpt = None) -> None:
    """Safe deployments for git-based web apps: deploy, verify, promote, roll back."""
    if host:
        # What the commands read (options.current_host), as if SHIPLANE_HOST had been set.
        os.environ["SHIPLANE_HOST"] = host


@app.command()
def deploy(
    env: EnvArg,
    ref: Annotated[
        str | None, typer.Option(help="Branch, tag or sha (default: env branch).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="A person (with a factor) deploys to a gated env."),
    ] = False,
    accept_drift: Annotated[
        bool, typer.Option("--accept-drift", help="Migrate a schema changed outside shiplane.")
    ] = False,
    include_rolled_back: IncludeRolledBackOpt = False,
    redeploy: RedeployOpt = False,
    hold_timeout: HoldTimeoutOpt = None,
    wait_drain: WaitDrainOpt = False,
    wait_watch: WaitWatchOpt = False,
    passphrase: PassphraseOpt = False,
    ssh_key: SshKeyOpt = None,
    totp: TotpOpt = False,
    factor_file: FactorFileOpt = None,
    approver: ApproverOpt = None,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Ship a commit to ENV: build, back up, migrate, start green, verify, switch, smoke, drain.

    From another branch, with `auto_merge = true` in ENV's config, your branch is first merged
    into ENV's branch on the server (never in your repository); the resolve step says so.
    Without auto_merge, ENV's own branch is deployed (or --ref)."""
    in_server(
        "deploy",
        json_,
        config,
        progress=True,
        env=env,
        ref=ref,
        force=force,
        accept_drift=accept_drift,
        include_rolled_back=include_rolled_back,
        redeploy=redeploy,
        hold_timeout=hold_timeout,
        wait_drain=wait_drain,
        wait_watch=wait_watch,
        factor=FactorChoice(passphrase, ssh_key, totp, factor_file, approver),
        challenge={"action": "deploy", "env": env, "sha": _source_sha(env, ref, config)}
        if ssh_key
        else None,
    )


@app.command()
def verify(
    env: EnvArg,
    only: Annotated[str | None, typer.Option(help="Only this group or check name.")] = None,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Run every check against what ENV serves; record the verdict for its sha."""
    in_server("verify", json_, config, env=env, only=only)


@app.command()
def report(
    verification_id: Annotated[str, typer.Argument(help="A verification id.")],
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Show a stored verification report again."""
    in_server("report", json_, config, verification_id=verification_id)


@app.command()
def promote(
    env: EnvArg,
    approve: Annotated[
        bool, typer.Option("--approve", help="A person (with a factor) approves it at once.")
    ] = False,
    include_rolled_back: IncludeRolledBackOpt = False,
    redeploy: RedeployOpt = False,
    hold_timeout: HoldTimeoutOpt = None,
    wait_drain: WaitDrainOpt = False,
    wait_watch: WaitWatchOpt = False,
    passphrase: PassphraseOpt = False,
    ssh_key: SshKeyOpt = None,
    totp: TotpOpt = False,
    factor_file: FactorFileOpt = None,
    approver: ApproverOpt = None,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Deploy to ENV exactly the commit verified in its promote_from env."""
    in_server(
        "promote",
        json_,
        config,
        progress=True,
        factor=FactorChoice(passphrase, ssh_key, totp, factor_file, approver),
        challenge={"action": "promote", "env": env},
        env=env,
        approve=approve,
        include_rolled_back=include_rolled_back,
        redeploy=redeploy,
        hold_timeout=hold_timeout,
        wait_drain=wait_drain,
        wait_watch=wait_watch,
    )


@app.command()
def approve(
    promotion_id: Annotated[str, typer.Argument(help="A pending promotion id.")],
    include_rolled_back: IncludeRolledBackOpt = False,
    passphrase: PassphraseOpt = False,
    ssh_key: SshKeyOpt = None,
    totp: TotpOpt = False,
    factor_file: FactorFileOpt = None,
    approver: ApproverOpt = None,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """A person, with their factor, lets a pending promotion proceed."""
    in_server(
        "approve",
        json_,
        config,
        progress=True,
        factor=FactorChoice(passphrase, ssh_key, totp, factor_file, approver),
        challenge={"action": "approve", "promotion_id": promotion_id},
        promotion_id=promotion_id,
        include_rolled_back=include_rolled_back,
    )


@app.command()
def reject(
    promotion_id: Annotated[str, typer.Argument(help="A pending promotion id.")],
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """End a pending promotion."""
    in_server("reject", json_, config, promotion_id=promotion_id)


@app.command()
def rollback(
    env: EnvArg,
    to: Annotated[str | None, typer.Option(help="Release name or sha (default: previous).")] = None,
    restore_db: Annotated[
        bool, typer.Option("--restore-db", help="Restore the database backup instead of down.")
    ] = False,
    hold_timeout: HoldTimeoutOpt = None,
    passphrase: PassphraseOpt = False,
    ssh_key: SshKeyOpt = None,
    totp: TotpOpt = False,
    factor_file: FactorFileOpt = None,
    approver: ApproverOpt = None,
    discard_writes: Annotated[
        bool,
        typer.Option(
            "--discard-writes",
            help="Allow a down or restore that discards data written since (saved first).",
        ),
    ] = False,
    wait_drain: WaitDrainOpt = False,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Go back to the previous (or named) release; the schema stays when that release runs
    on it, else newer migrations are reverted under a hold."""
    in_server(
        "rollback",
        json_,
        config,
        progress=True,
        factor=FactorChoice(passphrase, ssh_key, totp, factor_file, approver),
        challenge={"action": "rollback", "env": env, "subject": to or ""},
        env=env,
        to=to,
        restore_db=restore_db,
        discard_writes=discard_writes,
        hold_timeout=hold_timeout,
        wait_drain=wait_drain,
    )


@app.command()
def protect(
    env: EnvArg,
    passphrase: PassphraseOpt = False,
    ssh_key: SshKeyOpt = None,
    totp: TotpOpt = False,
    factor_file: FactorFileOpt = None,
    approver: ApproverOpt = None,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Pin ENV's protection from this shiplane.toml (a person, with a factor)."""
    in_server(
        "protect",
        json_,
        config,
        factor=FactorChoice(passphrase, ssh_key, totp, factor_file, approver),
        challenge={"action": "protect", "env": env},
        env=env,
    )


@app.command()
def restart(
    env: EnvArg, wait_drain: WaitDrainOpt = False, json_: JsonOpt = False, config: ConfigOpt = None
) -> None:
    """Start a fresh instance of what ENV serves and switch to it with no dropped request."""
    in_server("restart", json_, config, progress=True, env=env, wait_drain=wait_drain)


@app.command()
def scale(
    env: EnvArg,
    assignments: Annotated[
        list[str], typer.Argument(help="NAME=COUNT per worker, e.g. worker=2 (0 stops them).")
    ],
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Run COUNT of each named worker of what ENV serves, with no new release."""
    in_server("scale", json_, config, env=env, assignments=assignments)


@app.command()
def maintenance(
    env: EnvArg,
    state: Annotated[str, typer.Argument(help="on | off", metavar="on|off")],
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Serve ENV's maintenance page (503 + Retry-After) to every request, or stop (off)."""
    in_server("maintenance", json_, config, env=env, state=state)


@app.command("run")
def run_(
    env: EnvArg,
    command: Annotated[
        list[str], typer.Argument(help="The command and its arguments, after `--`.")
    ],
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds before the command is killed.")
    ] = 600.0,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Run a one-off command in ENV's serving release with the app's environment (no shell)."""
    in_server("run", json_, config, env=env, command=command, timeout=timeout)


@app.command()
def status(
    env: Annotated[str | None, typer.Argument(help="One environment (default: all).")] = None,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """What runs where: release, sha served by the front door, health, migrations, lock."""
    in_server("status", json_, config, env=env)


@app.command()
def history(
    env: Annotated[str | None, typer.Argument(help="One environment (default: all).")] = None,
    limit: Annotated[int, typer.Option(help="How many deployments.")] = 20,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Past deployments and rollbacks, newest first."""
    in_server("history", json_, config, env=env, limit=limit)


@app.command()
def recover(
    resolve: Annotated[
        str | None,
        typer.Option(
            "--resolve", help="Mark deployment ID's failed undo as fixed by hand (a person)."
        ),
    ] = None,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Resolve deployments a killed shiplane left behind (also runs before every command);
    list failed undos that wait for a person."""
    in_server("recover", json_, config, resolve=resolve)


def run() -> None:
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except TyperException as exc:  # usage errors: click would exit 2, which means "build failed"
        command = " ".join(a for a in sys.argv[1:3] if not a.startswith("-")) or "shiplane"
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        usage = ShiplaneError(message, step="usage", next_action=f"see `shiplane {command} --help`")
        result = Result(command=command).fail(usage)
        render.emit(result, render.wants_json("--json" in sys.argv))
        sys.exit(64)
    except Exception as exc:  # the last net: whatever escaped the boundary still ends as JSON
        from shiplane.operations.boundary import guarded  # the error path only

        command = " ".join(a for a in sys.argv[1:3] if not a.startswith("-")) or "shiplane"
        result = guarded(command, None, functools.partial(_raise, exc))
        render.emit(result, render.wants_json("--json" in sys.argv))
        sys.exit(result.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def _raise(exc: Exception) -> Result:
    raise exc  # into the boundary, which maps it like any other failure


if __name__ == "__main__":
    run()
