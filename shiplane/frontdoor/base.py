"""The front door's interface: the one place where traffic moves between an environment's instances.

A front door listens on the environment's port and relays each request to its active upstream.
Moving traffic (switch, drain, hold) belongs to the front door alone; a deploy target only starts
and stops instances and says where they listen (an ``Upstream``).

Adding an implementation (nginx is next):

1. Subclass ``FrontDoor`` in a module beside ``builtin.py`` (``nginx.py``) and implement every
   abstract method. ``switch`` must be atomic from a client's point of view: each request goes
   wholly to the old or wholly to the new upstream (nginx: write the upstream block, then
   ``nginx -s reload``; old workers finish their requests). ``drain`` waits for the requests
   already relayed to an instance; where the back end cannot count them (nginx without its
   status API), wait for the old workers to exit or for the timeout.
2. ``hold``/``release``: while held, new requests wait (bounded) instead of reaching an upstream,
   and a request that waits past the bound gets 503, never a half-applied schema.
3. Serve ``/_deploy/*`` beside the proxy by handing those paths to a ``DeployHook``
   (``endpoints.DeployEndpoints.answer``); nginx routes ``location /_deploy/`` to a small listener
   that calls the same hook.
4. Construct it where the server builds its front doors (``shiplane/server/doors.py``); the rest of
   the server uses only the methods below.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shiplane.frontdoor.static import StaticFiles


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where one instance listens. ``host`` lets a door route to remote hosts and containers,
    not only to processes on this machine; ``info`` is what /_deploy/version reports;
    ``static`` the release's static mounts, which the door serves itself (and switches with
    the instance)."""

    instance_id: str
    host: str
    port: int
    info: dict[str, Any] = field(default_factory=dict, compare=False)
    static: StaticFiles | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class FrontDoorStats:
    port: int  # where the door listens
    requests: int  # relayed to an upstream since the door started
    inflight: Mapping[str, int]  # instance id -> requests being relayed now (absent: none)
    switched_at: float | None  # time.time() of the last switch
    held: bool
    waiting: int  # requests waiting for a release
    held_timeouts: int = 0  # requests answered 503 because a hold outlasted its bound
    tripped: Mapping[str, int] = field(default_factory=dict)  # limit -> times it tripped
    websockets: int = 0  # open WebSocket (upgraded) connections, counted in inflight too
    connections: int = 0  # open client connections on the door's listener
    maintenance: bool = False


class DeployHook(Protocol):
    """Answers one /_deploy/* request: (HTTP status, JSON body)."""

    async def __call__(
        self, path: str, client: str, headers: Mapping[str, str], active: Upstream | None
    ) -> tuple[int, dict[str, Any]]: ...


class FrontDoor(ABC):
    @abstractmethod
    def switch(self, upstream: Upstream | None) -> Upstream | None:
        """Send new requests to ``upstream`` (None: answer 503); returns the previous one."""

    @abstractmethod
    def active(self) -> Upstream | None:
        """The upstream new requests go to."""

    @abstractmethod
    async def drain(self, instance_id: str, timeout: float) -> bool:
        """Wait until no request is in flight on ``instance_id``; False when the timeout hit."""

    @abstractmethod
    def hold(self, timeout: float | None = None) -> None:
        """New requests wait (at most ``timeout`` s, default the door's bound) until
        ``release``; requests in flight go on. Past the bound: 503 with Retry-After."""

    @abstractmethod
    def release(self) -> None:
        """Let waiting and new requests through, to whatever is active by then."""

    @abstractmethod
    def maintenance(self, on: bool, bypass: str | None = None) -> None:
        """While on, answer 503 with Retry-After and a small page instead of relaying (but
        /_deploy/health and /_deploy/version; a request carrying ``bypass`` is relayed)."""

    @abstractmethod
    def stats(self) -> FrontDoorStats: ...

    @abstractmethod
    async def close(self) -> None:
        """Stop listening and free the door's connections."""
