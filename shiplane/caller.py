"""Who asks for an operation: the Caller every operation in ``shiplane.api`` takes.

The role comes from the caller's credentials, never from what the process can see: a terminal
proves nothing (``script`` fakes one) and a server cannot observe it. ``person_verified`` says
a person's factor was checked for this request.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass
from typing import Literal

Role = Literal["agent", "person"]


@dataclass(frozen=True)
class Caller:
    role: Role
    label: str  # free-form, recorded as the actor: "agent:claude", "person:ana"
    person_verified: bool = False

    @classmethod
    def from_actor(cls, actor: str, person_verified: bool = False) -> Caller:
        role: Role = "agent" if is_agent(actor) else "person"
        return cls(role=role, label=actor, person_verified=person_verified and role == "person")

    @property
    def is_agent(self) -> bool:
        return self.role == "agent"

    def __str__(self) -> str:
        return self.label


def is_agent(actor: str) -> bool:
    return actor.startswith("agent")


def local_caller() -> Caller:
    """Single-user mode's caller: SHIPLANE_ACTOR or the OS user. Until approvals need a TOTP
    code, an interactive stdin stands in for a person's factor here; that protection is
    advisory, since an agent with a shell can fake a terminal."""
    actor = os.environ.get("SHIPLANE_ACTOR", "").strip()
    if not actor:
        try:
            actor = f"person:{getpass.getuser()}"
        except (KeyError, OSError):
            actor = "person:unknown"
    return Caller.from_actor(actor, person_verified=sys.stdin.isatty())
