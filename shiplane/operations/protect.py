"""`shiplane protect ENV`, `shiplane approvers add|list|remove`, and the challenges an
approver signs.

``protect`` pins (or re-pins) ``ENV``'s protection from the config sent, after a person's
factor: that is how a person confirms a loosening, and how an enforced host's gated
environments get their first pin. Enrolling approvers is a person's act too: the first one
on a host by whoever holds the server's own token (root or the server's user, or
``shiplane server install``'s operator), every later one with an enrolled person's factor.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from shiplane.errors import ConfigError, RefusedError
from shiplane.gate import events
from shiplane.gate.approvers import KINDS, MIN_PASSPHRASE, ApproverStore, check_public_key
from shiplane.gate.approvers import hash_passphrase as _hash
from shiplane.gate.challenges import Binding, issue
from shiplane.gate.pins import PinStore, compare, protected
from shiplane.operations.decide import person_decision
from shiplane.operations.session import Session
from shiplane.operations.tokens import MAX_LABEL
from shiplane.results import Result
from shiplane.state.db import StateDB


def protection_id(settings: dict[str, Any]) -> str:
    """What a protect challenge is bound to: the exact protection being confirmed."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def protect(session: Session, env: str) -> Result:
    if env not in session.loaded.config.environments:
        raise ConfigError(f"no environment {env!r}", next_action="shiplane status")
    settings = protected(session.loaded, env)
    if settings["promote_from"] is None:
        raise ConfigError(
            f"environments.{env}.promote_from is not set: only a gated environment is pinned",
            step="usage",
            next_action=f'set promote_from = "dev" under [environments.{env}] first',
        )
    decided = person_decision(session, Binding("protect", env, protection_id(settings)))
    store = PinStore(session.db)
    before = store.get(env)
    changes = compare(before.settings, settings) if before else None
    pin = store.put(env, settings, decided.label)
    events.record(
        session.db,
        env,
        "protect",
        "protected",
        decided.label,
        loosened=changes.loosened if changes else [],
        tightened=changes.tightened if changes else [],
        first=before is None,
    )
    result = Result(command="protect", env=env)
    result.data.update(
        pinned=pin.settings,
        pinned_by=pin.pinned_by,
        confirmed=(changes.loosened + changes.tightened) if changes else ["first pin"],
    )
    return result


def check_add(name: str, kind: str, value: str | None) -> None:
    """Usage errors (exit 64) before anything is written; never echoes the value."""
    if (
        not name.strip()
        or len(name) > MAX_LABEL
        or not name.replace("-", "").replace("_", "").replace(".", "").isalnum()
    ):
        raise ConfigError(
            f"an approver's name is 1-{MAX_LABEL} letters, digits, '-', '_' or '.'",
            step="usage",
            next_action="shiplane approvers add alice --passphrase",
        )
    if kind not in KINDS:
        raise ConfigError(
            f"unknown factor kind {kind!r}", step="usage", next_action=f"use one of {KINDS}"
        )
    if kind == "passphrase" and len(value or "") < MIN_PASSPHRASE:
        raise ConfigError(
            f"a passphrase has at least {MIN_PASSPHRASE} characters",
            step="usage",
            next_action="choose a longer one",
        )
    if kind == "ssh":
        check_public_key(value or "")


def _enroller(session: Session, name: str, action: str) -> str:
    """Who enrolls: the server token's holder while no approver exists, else a person with
    a factor."""
    store = ApproverStore(session.host_db)
    if not store.list():
        if not session.presented.server_token:
            raise RefusedError(
                "no approver is enrolled yet: the first one is enrolled by whoever holds the "
                "server's own token (root, or the server's OS user)",
                step="factor",
                next_action=f"as root: shiplane {action} {name} --passphrase",
            )
        return f"server:{session.caller.label}"
    return person_decision(session, Binding(action, "", name)).label


def approvers_add(session: Session, name: str, kind: str, value: str | None = None) -> Result:
    by = _enroller(session, name, "approvers add")
    store = ApproverStore(session.host_db)
    secret_shown: str | None = None
    if kind == "passphrase":
        verifier = _hash(value or "")
    elif kind == "ssh":
        verifier = check_public_key(value or "")
    else:
        if session.mode != "enforced":
            raise RefusedError(
                "TOTP is enrolled only in enforced mode: here its secret would be readable by "
                "any process of the server's user, an agent's included",
                step="usage",
                next_action=f"shiplane approvers add {name} --passphrase, or --ssh-key KEY.pub",
            )
        import pyotp

        verifier = pyotp.random_base32()
        secret_shown = pyotp.TOTP(verifier).provisioning_uri(name=name, issuer_name="shiplane")
    store.add(name, kind, verifier, by)  # type: ignore[arg-type]
    if kind == "ssh":
        store.write_allowed_signers(session.layout.server.root / "allowed_signers")
    result = Result(command="approvers add")
    result.data.update(approver=name, kind=kind, enrolled_by=by)
    if secret_shown is not None:
        # The one showing of the TOTP secret, for the person's authenticator app.
        result.data["totp_uri"] = secret_shown
        result.warnings.append("this is the only time the TOTP secret is shown")
    return result


def approvers_list(session: Session) -> Result:
    result = Result(command="approvers list")
    result.data["approvers"] = [a.__dict__ for a in ApproverStore(session.host_db).list()]
    return result


def approvers_remove(session: Session, name: str) -> Result:
    _enroller(session, name, "approvers remove")
    removed = ApproverStore(session.host_db).remove(name)
    if not removed:
        raise ConfigError(
            f"no approver {name!r}", step="usage", next_action="shiplane approvers list"
        )
    ApproverStore(session.host_db).write_allowed_signers(
        session.layout.server.root / "allowed_signers"
    )
    result = Result(command="approvers remove")
    result.data["removed"] = name
    return result


def challenge(
    session: Session,
    action: str,
    env: str | None = None,
    promotion_id: str | None = None,
    sha: str | None = None,
    subject: str | None = None,
) -> Result:
    """A single-use challenge for one decision: the server fills in what it knows (a
    promotion's env and sha, what a promotion would ship, the protection to confirm)."""
    binding = binding_for(session, action, env, promotion_id, sha, subject)
    nonce, text = issue(session.host_db, binding)
    result = Result(command="challenge", env=binding.env or None)
    result.data.update(nonce=nonce, text=text)
    return result


def binding_for(
    session: Session,
    action: str,
    env: str | None,
    promotion_id: str | None,
    sha: str | None,
    subject: str | None,
) -> Binding:
    db: StateDB = session.db
    if action == "approve":
        promotion = db.promotion(promotion_id or "")
        if promotion is None:
            raise ConfigError(f"no promotion {promotion_id!r}", step="usage")
        return Binding("approve", promotion["env"], promotion["id"], promotion["sha"])
    if env is None:
        if action in ("approvers add", "approvers remove"):
            return Binding(action, "", subject or "")
        raise ConfigError(f"a challenge for {action!r} needs --env", step="usage")
    if action == "promote":
        return Binding("promote", env, "", promote_sha(session, env))
    if action == "protect":
        return Binding("protect", env, protection_id(protected(session.loaded, env)))
    if action in ("deploy", "rollback"):
        return Binding(action, env, subject or "", sha or "")
    raise ConfigError(f"no challenge for {action!r}", step="usage")


def promote_sha(session: Session, env: str) -> str:
    """The sha ``promote ENV`` would ship: what serves in its source environment."""
    source = session.loaded.config.environments[env].promote_from
    pin = PinStore(session.db).get(env)
    source = source or (pin.settings.get("promote_from") if pin else None)
    state = session.db.env_state(source) if source else None
    return str(state["sha"]) if state and state.get("sha") else ""
