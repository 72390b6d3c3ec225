"""Minting the ids of deployments, promotions and verifications (sortable by time, unique),
and checking the ids a caller passes."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from shiplane.errors import ConfigError


def new_id(env: str, prefix: str = "") -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{prefix}{env}-{stamp}-{secrets.token_hex(2)}"


# What a name shiplane made (deployment, backup, release, verification, promotion, token id)
# or an environment's name looks like: it becomes a path or a lookup key, so it is checked
# before anything is written (".", "..", "a/b" and 5,000 characters never reach a file).
MAX_ID_LENGTH = 128
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# Operation arguments that carry such a name, and how a message calls each.
ID_ARGUMENTS = {
    "env": "environment name",
    "backup_id": "backup id",
    "deployment_id": "deployment id",
    "verification_id": "verification id",
    "promotion_id": "promotion id",
    "token_id": "token id",
    "to": "release name or sha",
    "resolve": "deployment id",
}


def check_id(what: str, value: str) -> None:
    """Raise ConfigError (exit 64) unless ``value`` is 1-128 letters, digits, '.', '_' or '-',
    starting with a letter or digit."""
    if len(value) <= MAX_ID_LENGTH and _ID.fullmatch(value):
        return
    shown = value if len(value) <= 40 else f"{value[:40]}... ({len(value)} characters)"
    raise ConfigError(
        f"{what} {shown!r} is not valid: 1-{MAX_ID_LENGTH} letters, digits, '.', '_' or '-', "
        "starting with a letter or digit",
        step="usage",
        next_action="copy the id from `shiplane history`, `shiplane backups ENV` or "
        "`shiplane status`",
    )


def check_arguments(args: dict[str, object]) -> None:
    """``check_id`` on every id an operation's arguments carry."""
    for key, what in ID_ARGUMENTS.items():
        value = args.get(key)
        if isinstance(value, str):
            check_id(what, value)
