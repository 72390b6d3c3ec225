"""A person's decision, made once per request: the caller must be a person (a person token;
on a host without tokens, their word, which is advisory) and must give a factor that
verifies for exactly this decision. The record then names the approver: ``person:NAME``."""

from __future__ import annotations

from shiplane.caller import Caller
from shiplane.errors import RefusedError
from shiplane.gate import events, factors
from shiplane.gate.challenges import Binding
from shiplane.operations.session import Session


def person_decision(session: Session, binding: Binding) -> Caller:
    caller = session.caller
    if caller.is_agent:
        raise RefusedError(
            f"{caller} is an agent; `{binding.action}` is a person's decision",
            step="factor",
            next_action=factors.how_to(binding),
        )
    name = factors.verify(
        session.host_db,
        session.presented.factor,
        binding,
        enforced=session.mode == "enforced",
        signers=session.layout.server.root / "allowed_signers",
    )
    _check_os_user(session, binding)
    decided = Caller(
        role="person", label=f"person:{name}", person_verified=True, token_id=caller.token_id
    )
    events.record(
        session.db,
        binding.env,
        binding.action,
        "decided",
        decided.label,
        requested_by=caller.label,
        subject=binding.subject,
        sha=binding.sha,
    )
    session.caller = decided
    return decided


def _check_os_user(session: Session, binding: Binding) -> None:
    """Enforced mode: the person's OS user must not be one an agent works as. An agent
    running as the person's user can use their keys and files; only a different user (and
    the socket's peer credentials) tells them apart."""
    uid = session.presented.peer_uid
    if session.mode != "enforced" or uid is None:
        return
    row = session.host_db.conn.execute(
        "SELECT id FROM tokens WHERE role = 'agent' AND uid = ? LIMIT 1", (uid,)
    ).fetchone()
    if row is not None:
        raise RefusedError(
            f"this request comes from OS user {uid}, which agent token {row['id']} works as: "
            "a person decides from their own OS user",
            step="factor",
            next_action=f"log in as your own user (not the agent's) and run it again: "
            f"{factors.how_to(binding).removeprefix('a person runs ')}",
        )
