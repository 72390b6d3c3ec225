"""`shiplane tokens create|list|revoke`: the credentials clients present, and their roles.

Only a person may create or revoke a token (``shiplane.policy``, checked by ``shiplane.api``
before anything is written). ``create`` is the one result that ever carries a token in plain
text; ``list`` and ``revoke`` show ids, roles and labels only.
"""

from __future__ import annotations

from typing import cast

from shiplane.caller import ROLES, Role
from shiplane.errors import ConfigError
from shiplane.operations.session import Session
from shiplane.results import Result
from shiplane.state.tokens import TokenStore

MAX_LABEL = 64


def check_create(role: str, label: str | None) -> None:
    """Usage errors (exit 64) found before anything is written."""
    if role not in ROLES:
        raise ConfigError(
            f"unknown role {role!r}",
            step="usage",
            next_action="shiplane tokens create --role agent|person [--label NAME]",
        )
    if label is not None and (
        not label.strip() or len(label) > MAX_LABEL or not label.isprintable()
    ):
        # The label ends up in every actor a token records; keep it one readable line.
        raise ConfigError(
            f"a token label is 1-{MAX_LABEL} printable characters, got {label!r}",
            step="usage",
            next_action="pass a short name, e.g. --label ci-bot",
        )


def create(session: Session, role: str, label: str | None) -> Result:
    label = label.strip() if label is not None else None
    token_id, plaintext = TokenStore(session.host_db).create(cast("Role", role), label)
    result = Result(command="tokens create")
    result.data.update(id=token_id, role=role, label=label, token=plaintext)
    result.warnings.append("this is the only time the token is shown: store it now")
    return result


def list_tokens(session: Session) -> Result:
    result = Result(command="tokens list")
    result.data["tokens"] = [record.to_dict() for record in TokenStore(session.host_db).list()]
    return result


def revoke(session: Session, token_id: str) -> Result:
    record = TokenStore(session.host_db).revoke(token_id)
    if record is None:
        raise ConfigError(
            f"no token {token_id!r}",
            step="usage",
            next_action="token ids are in `shiplane tokens list`",
        )
    result = Result(command="tokens revoke")
    result.data["revoked"] = record.to_dict()
    return result
