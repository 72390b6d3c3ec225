"""state.db: deployments, steps, releases, locks."""

from shiplane.state.db import StateDB
from shiplane.state.lock import acquire, holder, release

__all__ = ["StateDB", "acquire", "holder", "release"]
