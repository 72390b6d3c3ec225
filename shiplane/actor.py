"""Who runs a command: an agent (SHIPLANE_ACTOR=agent:NAME) or a person, and at a terminal?"""

from __future__ import annotations

import getpass
import os
import sys


def current_actor() -> str:
    explicit = os.environ.get("SHIPLANE_ACTOR", "").strip()
    if explicit:
        return explicit
    try:
        return f"person:{getpass.getuser()}"
    except (KeyError, OSError):
        return "person:unknown"


def is_agent(actor: str) -> bool:
    return actor.startswith("agent")


def at_terminal() -> bool:
    return sys.stdin.isatty()
