"""Minting the ids of deployments, promotions and verifications: sortable by time, unique."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


def new_id(env: str, prefix: str = "") -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{prefix}{env}-{stamp}-{secrets.token_hex(2)}"
