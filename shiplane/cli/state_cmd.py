"""`shiplane state restore`: the app's state.db back from its newest good copy."""

from __future__ import annotations

from pathlib import Path
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
from shiplane.cli.options import ConfigOpt, JsonOpt, in_server

state_app = typer.Typer(
    help="The server's record of this app (state.db): its copies and their restore.",
    no_args_is_help=True,
)


@state_app.command("restore")
def restore(
    from_: Annotated[
        Path | None,
        typer.Option("--from", help="This copy instead of the newest good one."),
    ] = None,
    passphrase: PassphraseOpt = False,
    ssh_key: SshKeyOpt = None,
    totp: TotpOpt = False,
    factor_file: FactorFileOpt = None,
    approver: ApproverOpt = None,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Put the newest good copy of state.db back (a person, with a factor). The pins stay as
    they are now; tokens and approvers are never rolled back; the old file is kept aside."""
    in_server(
        "state_restore",
        json_,
        config,
        factor=FactorChoice(passphrase, ssh_key, totp, factor_file, approver),
        challenge={"action": "state restore"},
        source=str(from_.resolve()) if from_ is not None else None,
    )
