"""Which DeployTarget an environment uses. One line per target."""

from __future__ import annotations

from collections.abc import Callable

from shiplane.layout import Layout
from shiplane.targets.base import DeployTarget
from shiplane.targets.local import LocalTarget

TARGETS: dict[str, Callable[[Layout], DeployTarget]] = {
    LocalTarget.name: LocalTarget,
}


def open_target(layout: Layout, name: str = "local") -> DeployTarget:
    return TARGETS[name](layout)
