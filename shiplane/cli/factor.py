"""A person's factor, gathered by the client for one request: a passphrase (prompted on the
terminal, or read from ``--factor-file`` / ``SHIPLANE_FACTOR`` for a non-interactive person),
an SSH signature over a single-use challenge the server issues (``--ssh-key``), or a TOTP code
(``--totp``, enforced mode only). The server verifies it (``shiplane.gate.factors``); the
client only carries it, and never prints it."""

from __future__ import annotations

import getpass
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from shiplane.errors import ConfigError

ENV = "SHIPLANE_FACTOR"
SIGN_TIMEOUT = 120.0  # ssh-keygen may ask for the key's own passphrase

PassphraseOpt = Annotated[
    bool,
    typer.Option("--passphrase", help="Your approver passphrase (prompted on the terminal)."),
]
SshKeyOpt = Annotated[
    Path | None,
    typer.Option("--ssh-key", help="Sign a single-use challenge with this Ed25519 key."),
]
TotpOpt = Annotated[
    bool, typer.Option("--totp", help="A TOTP code (prompted; enforced mode only).")
]
FactorFileOpt = Annotated[
    Path | None,
    typer.Option("--factor-file", help="Read the passphrase (with --totp: the code) from FILE."),
]
ApproverOpt = Annotated[
    str | None,
    typer.Option(
        "--approver", envvar="SHIPLANE_APPROVER", help="Your approver name (default: OS user)."
    ),
]


@dataclass(frozen=True)
class FactorChoice:
    passphrase: bool = False
    ssh_key: Path | None = None
    totp: bool = False
    factor_file: Path | None = None
    approver: str | None = None

    def given(self) -> bool:
        return bool(self.passphrase or self.ssh_key or self.totp or self.factor_file) or bool(
            os.environ.get(ENV)
        )

    @property
    def name(self) -> str:
        if self.approver:
            return self.approver
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"


def secret_factor(choice: FactorChoice) -> dict[str, Any]:
    """A passphrase or TOTP factor: from the file, SHIPLANE_FACTOR, or the terminal."""
    kind = "totp" if choice.totp else "passphrase"
    if choice.factor_file is not None:
        try:
            value = choice.factor_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"--factor-file {choice.factor_file}: {exc.strerror}",
                step="usage",
                next_action="pass a readable file",
            ) from None
    elif os.environ.get(ENV):
        value = os.environ[ENV].strip()
    else:
        prompt = "TOTP code: " if choice.totp else f"Passphrase for approver {choice.name}: "
        value = getpass.getpass(prompt)
    key = "code" if choice.totp else "passphrase"
    return {"kind": kind, "approver": choice.name, key: value}


def sign_challenge(key: Path, text: str) -> str:
    """``ssh-keygen -Y sign -n shiplane`` over the challenge text; the armored signature."""
    # Here, not at the top: the approvers' module brings the state database, and every
    # command line (`--help` too) imports this module for its options.
    from shiplane.gate.approvers import NAMESPACE

    with tempfile.TemporaryDirectory(prefix="shiplane-sign-") as scratch:
        message = Path(scratch) / "challenge"
        message.write_text(text)
        try:
            done = subprocess.run(
                ["ssh-keygen", "-Y", "sign", "-n", NAMESPACE, "-f", str(key), str(message)],
                capture_output=True,
                text=True,
                timeout=SIGN_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(
                f"ssh-keygen could not sign: {exc}", step="factor", next_action="check --ssh-key"
            ) from None
        signature = message.with_name("challenge.sig")
        if done.returncode != 0 or not signature.is_file():
            raise ConfigError(
                f"ssh-keygen could not sign with {key}: {done.stderr.strip()}",
                step="factor",
                next_action="pass the private half of the Ed25519 key you enrolled",
            )
        return signature.read_text()
