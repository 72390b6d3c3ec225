"""Honest about what protects the gate: the host's mode, and the ``protection`` a result carries.

- ``enforced``: the host's marker (``shiplane.hostconfig``) names this server's home, which
  belongs to the marker's dedicated user; nobody else may list or write it. An agent running as
  another OS user reaches state.db, backups, env files, tokens and the server's repository only
  through the socket and its token, where the role rules apply.
- ``single-user``: everything else. The server runs as the same OS user as its clients, so an
  agent with a shell can rewrite state.db, the pinned protection and the repository directly:
  the role rules and the promotion gate are advisory. Every gated operation says so in its JSON
  (``"protection": "advisory"`` and ``"protection_reason"``) instead of implying a guarantee.

The mode is read from facts anyone on the host can check (the marker, the home's owner and
permissions), so the client and the server agree on it without asking each other.
"""

from __future__ import annotations

import os
import pwd
from typing import Literal

from shiplane.hostconfig import load_host_config
from shiplane.layout import ServerLayout

Mode = Literal["enforced", "single-user"]

ADVISORY_REASON = (
    "single-user mode: the server runs as the same OS user as its clients, so anything with a "
    "shell as that user (an agent included) can rewrite state.db, the pinned protection and "
    "the server's repository directly; the role rules and the promotion gate only bind clients "
    "that go through shiplane. Enforced mode (`shiplane server install`) makes them binding."
)


def mode_of(server: ServerLayout) -> Mode:
    host = load_host_config()
    if host is None or host.home != server.root:
        return "single-user"
    try:
        owner = pwd.getpwnam(host.user).pw_uid
        info = os.stat(host.home)
    except (KeyError, OSError):
        return "single-user"
    # Others may traverse the home (per-app users reach their releases), never list or write.
    if info.st_uid != owner or owner == 0 or info.st_mode & 0o066:
        return "single-user"
    return "enforced"


def server_user() -> str:
    """Who this process runs as (in the server: the user that owns the deploy)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def marks(server: ServerLayout) -> dict[str, str]:
    """What a gated operation's result carries: ``enforced``, or ``advisory`` and why."""
    if mode_of(server) == "enforced":
        return {"protection": "enforced"}
    return {"protection": "advisory", "protection_reason": ADVISORY_REASON}
