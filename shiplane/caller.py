"""Who asks for an operation: the Caller every operation in ``shiplane.api`` takes.

The role comes from the caller's credentials, never from what the process can see: a terminal
proves nothing (``script`` fakes one) and a server cannot observe it. ``person_verified`` says
a person's factor was checked for this request.

With a token (``Caller.from_token``) the role is the token's, and ``SHIPLANE_ACTOR`` is only a
name inside it: the recorded actor is always ``<token role>:<name>``. A role-like prefix in the
label is dropped, not believed, so an agent token labelled ``person:alice`` is recorded as
``agent:alice``; every log line and promotion record then says truthfully who acted.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["agent", "person"]
ROLES: tuple[Role, ...] = ("agent", "person")


class Credential(Protocol):
    """What a verified token tells about its holder (``shiplane.state.tokens.TokenRecord``)."""

    @property
    def id(self) -> str: ...
    @property
    def role(self) -> Role: ...
    @property
    def label(self) -> str | None: ...


@dataclass(frozen=True)
class Caller:
    role: Role
    label: str  # recorded as the actor: "agent:claude", "person:ana"
    person_verified: bool = False
    token_id: str | None = None  # the credential this caller presented, if any

    @classmethod
    def from_actor(cls, actor: str, person_verified: bool = False) -> Caller:
        role: Role = "agent" if is_agent(actor) else "person"
        return cls(role=role, label=actor, person_verified=person_verified and role == "person")

    @classmethod
    def from_token(
        cls, record: Credential, label: str | None, *, person_verified: bool = False
    ) -> Caller:
        """The caller a verified token stands for. ``label`` (``SHIPLANE_ACTOR``) names the
        caller within the token's role; without one, the token's own label or id does."""
        name = _bare_name(label) or _bare_name(record.label) or record.id
        return cls(
            role=record.role,
            label=f"{record.role}:{name}",
            # A token is not a person's factor: only the factor check may set this, and never
            # for an agent token.
            person_verified=person_verified and record.role == "person",
            token_id=record.id,
        )

    @property
    def is_agent(self) -> bool:
        return self.role == "agent"

    def __str__(self) -> str:
        return self.label


def is_agent(actor: str) -> bool:
    return actor.startswith("agent")


def _bare_name(label: str | None) -> str:
    """``label`` without a leading ``agent:`` / ``person:`` claim (the role is not the label's
    to say), stripped; "" when nothing is left."""
    name = (label or "").strip()
    while True:  # "person:agent:x" must not leave a claim behind either
        prefix, sep, rest = name.partition(":")
        if not sep or prefix.strip().lower() not in ROLES:
            return name
        name = rest.strip()


def local_caller() -> Caller:
    """The caller as the client describes it: SHIPLANE_ACTOR or the OS user. Only a label:
    the server sets the role from the token, and a person's decision needs a factor the
    server verifies (a terminal proves nothing: ``script`` fakes one)."""
    actor = os.environ.get("SHIPLANE_ACTOR", "").strip()
    if not actor:
        try:
            actor = f"person:{getpass.getuser()}"
        except (KeyError, OSError):
            actor = "person:unknown"
    return Caller.from_actor(actor)
