"""The database commands: `migrate`, `backup`, `backups`, `restore`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from shiplane.cli.factor import (
    ApproverOpt,
    FactorChoice,
    FactorFileOpt,
    PassphraseOpt,
    SshKeyOpt,
    TotpOpt,
)
from shiplane.cli.options import ConfigOpt, EnvArg, JsonOpt, finish, in_server
from shiplane.errors import ShiplaneError
from shiplane.results import Result

data_app = typer.Typer()


@data_app.command()
def migrate(
    env: EnvArg,
    action: Annotated[str, typer.Argument(help="status | up | down")] = "status",
    to: Annotated[int | None, typer.Option(help="Target migration number.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, change nothing.")] = False,
    rehearse: Annotated[
        bool, typer.Option("--rehearse", help="up -> down -> up of pending ones on a copy.")
    ] = False,
    lint: Annotated[bool, typer.Option("--lint", help="Flag risky pending migrations.")] = False,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Migration status, apply/revert (backup first), --lint or --rehearse pending ones."""
    if rehearse or lint:
        action = "rehearse" if rehearse else "lint"
    in_server("migrate", json_, config, env=env, action=action, to=to, dry_run=dry_run)


@data_app.command()
def backup(env: EnvArg, json_: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Back up ENV's database now (online, gzip, manifest with sha256)."""
    in_server("backup", json_, config, env=env)


@data_app.command()
def backups(env: EnvArg, json_: JsonOpt = False, config: ConfigOpt = None) -> None:
    """List ENV's backups, newest first."""
    in_server("backups", json_, config, env=env)


@data_app.command()
def restore(
    env: EnvArg,
    backup_id: Annotated[str, typer.Argument(help="A backup id from `backups`.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask (required when not at a terminal).")
    ] = False,
    discard_writes: Annotated[
        bool,
        typer.Option(
            "--discard-writes",
            help="Restore even when the database was written since (saved first as pre-restore);"
            " in a gated environment a person's, with a factor.",
        ),
    ] = False,
    passphrase: PassphraseOpt = False,
    ssh_key: SshKeyOpt = None,
    totp: TotpOpt = False,
    factor_file: FactorFileOpt = None,
    approver: ApproverOpt = None,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Restore ENV's database from a backup (checksum verified; refused when written since)."""
    if not yes:
        if not sys.stdin.isatty():
            usage = ShiplaneError(
                "restore overwrites the database: pass --yes", next_action="re-run with --yes"
            )
            finish(Result(command="restore", env=env).fail(usage), json_)
        typer.confirm(f"Overwrite {env}'s database with backup {backup_id}?", abort=True)
    in_server(
        "restore",
        json_,
        config,
        factor=FactorChoice(passphrase, ssh_key, totp, factor_file, approver),
        challenge={"action": "restore", "env": env, "subject": backup_id},
        env=env,
        backup_id=backup_id,
        discard_writes=discard_writes,
    )
