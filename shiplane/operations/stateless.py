"""Operations that run without the app's state.db: ``state restore`` (its job is to replace
it) and, while it is damaged, a backup of the app's database (which needs no history).

Who asks and what they may do is settled as for every operation, except that the pins are
not known: the config's own gates stand in for them. What such an operation records (a
person's decision) goes to host.db, which no ``state restore`` rolls back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shiplane.caller import Caller
from shiplane.config.loader import LoadedConfig
from shiplane.errors import StateDamagedError
from shiplane.gate import guard
from shiplane.layout import Layout
from shiplane.operations.session import Presented, Session
from shiplane.protection import Mode
from shiplane.results import Result
from shiplane.state import integrity
from shiplane.state.db import StateDB
from shiplane.targets.registry import open_target

if TYPE_CHECKING:
    from shiplane.pipeline.context import Progress  # the pipeline loads only in the server


def damaged(layout: Layout) -> bool:
    try:
        integrity.check(layout.state_db)
    except StateDamagedError:
        return True
    return False


@dataclass(frozen=True)
class Run:
    command: str
    caller: Caller
    loaded: LoadedConfig
    layout: Layout
    mode: Mode
    presented: Presented
    progress: Progress | None

    def body(
        self,
        body: Callable[[Session], Result],
        rule: Callable[[LoadedConfig, Caller, set[str]], None] | None,
        check: Callable[[LoadedConfig, Caller], None] | None,
    ) -> Result:
        if rule is not None:
            rule(self.loaded, self.caller, guard.gated_envs(self.loaded, {}))
        if check is not None:
            check(self.loaded, self.caller)
        self.layout.server.ensure()
        host = StateDB(self.layout.server.state_db)
        try:
            session = Session(
                self.caller, self.loaded, self.layout, host, host, open_target(self.layout),
                self.progress, presented=self.presented, mode=self.mode,
            )  # fmt: skip
            return body(session)
        finally:
            host.close()
