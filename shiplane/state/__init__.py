"""state.db: deployments, steps, releases, locks, client tokens, kept env variables."""

from shiplane.state.db import StateDB
from shiplane.state.envvars import EnvVar, EnvVarStore
from shiplane.state.lock import acquire, holder, release
from shiplane.state.tokens import TokenRecord, TokenStore

__all__ = [
    "EnvVar",
    "EnvVarStore",
    "StateDB",
    "TokenRecord",
    "TokenStore",
    "acquire",
    "holder",
    "release",
]
