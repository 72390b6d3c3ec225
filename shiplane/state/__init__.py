"""state.db: deployments, steps, releases, locks, client tokens."""

from shiplane.state.db import StateDB
from shiplane.state.lock import acquire, holder, release
from shiplane.state.tokens import TokenRecord, TokenStore

__all__ = ["StateDB", "TokenRecord", "TokenStore", "acquire", "holder", "release"]
