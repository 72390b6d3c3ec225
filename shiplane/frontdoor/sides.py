"""What a client connection (client.py) asks of the listener that accepted it (listener.py),
as protocols. The listener creates client connections; naming what they use of it here keeps
the two modules from importing each other."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from shiplane.frontdoor import replies
from shiplane.frontdoor.settings import LimitLog
from shiplane.frontdoor.wire import Head


class Challenges(Protocol):
    """ACME HTTP-01 answers (``acme_client.ChallengeResponder``), asked before any routing."""

    def owns(self, path: bytes | str) -> bool: ...

    def answer(self, path: bytes | str) -> bytes | None: ...


class RoutedSite(Protocol):
    """An environment's door as a connection sees it (``listener.Site``)."""

    async def handle(self, conn: Any, head: Head) -> bool: ...


class ListenerSide(replies.Listener, Protocol):
    @property
    def port(self) -> int: ...

    @property
    def log(self) -> LimitLog: ...

    @property
    def challenges(self) -> Challenges | None: ...

    @property
    def leaving(self) -> bool:
        """True once the listener stopped accepting to go away: each connection closes after
        its next answer, which says so (its client then opens a new one, elsewhere)."""
        ...

    def route(self, head: Head) -> RoutedSite | None: ...

    def admit(self, client: str, writer: asyncio.StreamWriter) -> bool: ...

    def leave(self, client: str, writer: asyncio.StreamWriter) -> None: ...
