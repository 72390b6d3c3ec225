"""`shiplane approvers add|list|remove`: the people who may approve, and their factors."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from shiplane.cli.factor import ApproverOpt, FactorChoice, FactorFileOpt, SshKeyOpt
from shiplane.cli.options import ConfigOpt, JsonOpt, in_server

approvers_app = typer.Typer(
    help="Approvers: the people whose factor (passphrase, SSH key, TOTP) approves.",
    no_args_is_help=True,
)


@approvers_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The approver's name (recorded as person:NAME).")],
    passphrase: Annotated[
        bool, typer.Option("--passphrase", help="Enroll a passphrase (prompted twice).")
    ] = False,
    passphrase_file: Annotated[
        Path | None,
        typer.Option("--passphrase-file", help="Enroll the passphrase in FILE (no prompt)."),
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="Enroll this Ed25519 public key (.pub).")
    ] = None,
    totp: Annotated[bool, typer.Option("--totp", help="Enroll TOTP (enforced mode).")] = False,
    approver: ApproverOpt = None,
    factor_file: FactorFileOpt = None,
    ssh_key: SshKeyOpt = None,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Enroll NAME: the first approver by the server token's holder (root), later ones by an
    approver with their factor (--factor-file, SHIPLANE_FACTOR, or --ssh-key)."""
    kind, value = "totp", None
    if passphrase_file is not None:
        kind, value = "passphrase", passphrase_file.read_text().strip()
    elif passphrase:
        kind, value = "passphrase", getpass.getpass(f"New passphrase for {name}: ")
        if getpass.getpass("Again: ") != value:
            raise typer.BadParameter("the passphrases differ")
    elif public_key is not None:
        kind, value = "ssh", public_key.read_text().strip()
    elif not totp:
        raise typer.BadParameter("pass --passphrase, --passphrase-file, --public-key or --totp")
    in_server(
        "approvers_add",
        json_,
        config,
        factor=FactorChoice(False, ssh_key, False, factor_file, approver),
        challenge={"action": "approvers add", "subject": name},
        approver_name=name,
        kind=kind,
        value=value,
    )


@approvers_app.command("list")
def list_(json_: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Every approver's name and factor kinds; never a verifier."""
    in_server("approvers_list", json_, config)


@approvers_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="An approver from `shiplane approvers list`.")],
    approver: ApproverOpt = None,
    factor_file: FactorFileOpt = None,
    ssh_key: SshKeyOpt = None,
    json_: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Remove NAME's factors (an approver, with their factor)."""
    in_server(
        "approvers_remove",
        json_,
        config,
        factor=FactorChoice(False, ssh_key, False, factor_file, approver),
        challenge={"action": "approvers remove", "subject": name},
        approver_name=name,
    )
