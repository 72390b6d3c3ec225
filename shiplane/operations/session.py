"""What an operation runs with, once the boundary has validated and opened everything."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shiplane.caller import Caller
from shiplane.config.loader import LoadedConfig
from shiplane.layout import Layout
from shiplane.protection import Mode
from shiplane.state.db import StateDB
from shiplane.targets.base import DeployTarget

if TYPE_CHECKING:  # a type only: a client's validation imports no pipeline
    from shiplane.pipeline.context import Progress


@dataclass(frozen=True)
class Presented:
    """What the server learned about a request beyond its arguments: the person's factor it
    carries (never logged), the OS user on the other end of the socket (SO_PEERCRED), and
    whether it came with the server's own token (root, or the server's user)."""

    factor: dict[str, Any] | None = field(default=None, repr=False)
    peer_uid: int | None = None
    server_token: bool = False
    # The server itself asks (its watch rolling back): no client, no token; only code in the
    # server process sets it, never a request.
    internal: bool = False


@dataclass
class Session:
    """What an operation gets: who asks, the config, the root, the target."""

    caller: Caller
    loaded: LoadedConfig
    layout: Layout
    db: StateDB
    host_db: StateDB  # what belongs to the host, not the app: tokens
    target: DeployTarget
    progress: Progress | None = None
    recovered: list[dict[str, Any]] = field(default_factory=list)
    presented: Presented = field(default_factory=Presented)
    mode: Mode = "single-user"
