"""Verifying a person's factor for one decision (approve, ``--force``, ``--discard-writes``,
``--restore-db`` in a gated environment, ``protect``, enrolling an approver).

The client sends ``{"kind": "passphrase" | "ssh" | "totp", "approver": NAME, ...}`` with the
request; the server checks it against host.db's verifiers (``approvers``) and learns the
approver's name, which is what the record then says (``person:NAME``). A terminal is not a
factor: ``script`` fakes one. Nothing here logs or returns a secret.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from shiplane.errors import RefusedError
from shiplane.gate import approvers as approvers_mod
from shiplane.gate import challenges
from shiplane.gate.challenges import Binding
from shiplane.state.db import StateDB

SSH_KEYGEN_TIMEOUT = 30.0


class FactorRefused(RefusedError):
    """Exit 6: no factor, or one that does not verify."""


def how_to(binding: Binding) -> str:
    """The next action for a person who must give a factor for ``binding``."""
    command = {
        "approve": f"shiplane approve {binding.subject or 'ID'}",
        "promote": f"shiplane promote {binding.env} --approve",
        "deploy": f"shiplane deploy {binding.env} --force",
        "rollback": f"shiplane rollback {binding.env} --restore-db",
        "restore": f"shiplane restore {binding.env} {binding.subject or 'BACKUP'} --yes"
        " --discard-writes",
        "protect": f"shiplane protect {binding.env}",
        "approvers add": "shiplane approvers add NAME ...",
        "approvers remove": "shiplane approvers remove NAME",
    }.get(binding.action, f"shiplane {binding.action}")
    return (
        f"a person runs `{command} --passphrase` (prompts on the terminal), or with "
        "--ssh-key KEY or --totp; non-interactive: --factor-file FILE or SHIPLANE_FACTOR"
    )


def verify(
    db: StateDB,
    factor: dict[str, Any] | None,
    binding: Binding,
    *,
    enforced: bool,
    signers: Path,
) -> str:
    """The approver ``factor`` proves, for ``binding``; FactorRefused otherwise."""
    store = approvers_mod.ApproverStore(db)
    if not factor:
        enrolled = bool(store.list())
        raise FactorRefused(
            f"`{binding.action}` is a person's decision and needs a factor (passphrase, SSH "
            "signature or TOTP code); none was given"
            + ("" if enrolled else ", and no approver is enrolled on this host"),
            step="factor",
            next_action=how_to(binding)
            if enrolled
            else "root (who holds the server's token) enrolls the first person: "
            "shiplane approvers add NAME --passphrase",
        )
    name = str(factor.get("approver") or "")
    kind = factor.get("kind")
    ok = False
    if kind == "passphrase":
        stored = store.verifier(name, "passphrase")
        ok = stored is not None and approvers_mod.passphrase_matches(
            stored, str(factor.get("passphrase") or "")
        )
    elif kind == "ssh":
        ok = _ssh_ok(db, store, name, factor, binding, signers)
    elif kind == "totp":
        if not enforced:
            raise FactorRefused(
                "a TOTP code is accepted only in enforced mode: here its secret would be "
                "readable by any process of the server's user, an agent's included",
                step="factor",
                next_action=how_to(binding).replace(" or --totp", ""),
            )
        ok = _totp_ok(db, store, name, str(factor.get("code") or ""))
    if not ok:
        raise FactorRefused(
            f"the {kind or 'given'} factor for approver {name!r} did not verify "
            "(wrong, unknown approver, expired or already used)",
            step="factor",
            next_action=how_to(binding),
        )
    return name


def _ssh_ok(
    db: StateDB,
    store: approvers_mod.ApproverStore,
    name: str,
    factor: dict[str, Any],
    binding: Binding,
    signers: Path,
) -> bool:
    if store.verifier(name, "ssh") is None:
        return False
    text = challenges.redeem(db, str(factor.get("nonce") or ""), binding)
    if text is None:
        return False
    store.write_allowed_signers(signers)
    with tempfile.TemporaryDirectory(prefix="shiplane-sig-") as scratch:
        signature = Path(scratch) / "challenge.sig"
        signature.write_text(str(factor.get("signature") or ""))
        try:
            done = subprocess.run(
                [
                    "ssh-keygen",
                    "-Y",
                    "verify",
                    "-f",
                    str(signers),
                    "-I",
                    name,
                    "-n",
                    approvers_mod.NAMESPACE,
                    "-s",
                    str(signature),
                ],
                input=text.encode(),
                capture_output=True,
                timeout=SSH_KEYGEN_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
    return done.returncode == 0


def _totp_ok(db: StateDB, store: approvers_mod.ApproverStore, name: str, code: str) -> bool:
    import pyotp  # only enforced hosts use it

    secret = store.verifier(name, "totp")
    if secret is None or not code.isdigit():
        return False
    totp = pyotp.TOTP(secret)
    now = time.time()
    for drift in (0, -1, 1):  # one step of clock drift either way
        at = now + drift * totp.interval
        if totp.at(at) == code:
            step = int(at // totp.interval)
            cursor = db.conn.execute(
                "INSERT OR IGNORE INTO used_codes (name, step) VALUES (?, ?)", (name, step)
            )
            return cursor.rowcount == 1  # a code is good once
    return False
