"""Client tokens: who may ask the server to act, and in which role (agent | person).

A token reads ``shp_<id>_<secret>``. The id is public (it names the token in ``list`` and
``revoke``); the secret is shown once, by ``create``, and only its SHA-256 is stored. A plain
hash is enough because the secret is 256 random bits, not a password: there is nothing to guess
that a slow hash would protect. Whoever can read state.db therefore learns ids, roles and labels,
never a usable token.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import asdict, dataclass
from typing import Any, cast

from shiplane.caller import Role
from shiplane.state.db import StateDB, now

PREFIX = "shp"
# A real token is ~60 characters; refusing long input before hashing keeps verify cheap.
MAX_TOKEN_LENGTH = 200

_PUBLIC_COLUMNS = "id, role, label, created_at, revoked_at, last_used_at, uid"


@dataclass(frozen=True)
class TokenRecord:
    """What state.db knows about a token, minus its hash: safe to list and to print."""

    id: str
    role: Role
    label: str | None
    created_at: str
    revoked_at: str | None
    last_used_at: str | None
    uid: int | None = None  # the OS user it is bound to (the first to present it)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "revoked": self.revoked}


class TokenStore:
    """The tokens table of one state.db. Callers validate role and label first
    (``shiplane.operations.tokens``); the CHECK constraint is the last line."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def create(self, role: Role, label: str | None = None) -> tuple[str, str]:
        """Mint a token; returns ``(token_id, plaintext)``. The plaintext exists only here."""
        token_id = secrets.token_hex(6)  # hex: never contains the "_" that separates the parts
        secret = secrets.token_urlsafe(32)
        self.db.conn.execute(
            "INSERT INTO tokens (id, role, label, secret_sha256, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (token_id, role, label, _digest(secret), now()),
        )
        return token_id, f"{PREFIX}_{token_id}_{secret}"

    def verify(self, plaintext: str, peer_uid: int | None = None) -> TokenRecord | None:
        """The record of a live token whose secret matches, or None (malformed, unknown, wrong
        secret, revoked, or presented by another OS user than the first one to present it: a
        caller learns no more than "not valid"). Marks it used, and binds it to ``peer_uid``
        (the socket peer's uid) on first use."""
        parsed = _parse(plaintext)
        if parsed is None:
            return None
        token_id, secret = parsed
        row = self.db.conn.execute(
            "SELECT secret_sha256, revoked_at, uid FROM tokens WHERE id = ?", (token_id,)
        ).fetchone()
        if row is None:
            return None
        # Constant-time, so response timing says nothing about how much of a secret was right.
        if not hmac.compare_digest(_digest(secret), str(row["secret_sha256"])):
            return None
        if row["revoked_at"] is not None:
            return None
        if peer_uid is not None and row["uid"] is not None and row["uid"] != peer_uid:
            return None
        self.db.conn.execute(
            "UPDATE tokens SET last_used_at = ?, uid = COALESCE(uid, ?) WHERE id = ?",
            (now(), peer_uid, token_id),
        )
        return self.get(token_id)

    def get(self, token_id: str) -> TokenRecord | None:
        row = self.db.conn.execute(
            f"SELECT {_PUBLIC_COLUMNS} FROM tokens WHERE id = ?", (token_id,)
        ).fetchone()
        return _record(row) if row else None

    def list(self) -> builtins.list[TokenRecord]:
        """Every token, oldest first, revoked ones included (they are the audit trail)."""
        rows = self.db.conn.execute(
            f"SELECT {_PUBLIC_COLUMNS} FROM tokens ORDER BY created_at, rowid"
        ).fetchall()
        return [_record(row) for row in rows]

    def revoke(self, token_id: str) -> TokenRecord | None:
        """Revoke ``token_id`` (a second revoke keeps the first time); None if unknown."""
        self.db.conn.execute(
            "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
            (now(), token_id),
        )
        return self.get(token_id)


def well_formed(plaintext: str) -> bool:
    """Whether ``plaintext`` reads like a token (``shp_<id>_<secret>``); says nothing of its
    validity, which only the server's store knows."""
    return _parse(plaintext) is not None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _parse(plaintext: str) -> tuple[str, str] | None:
    if len(plaintext) > MAX_TOKEN_LENGTH:
        return None
    parts = plaintext.strip().split("_", 2)  # the secret itself may contain "_"
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def _record(row: sqlite3.Row) -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        role=cast("Role", row["role"]),
        label=row["label"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
        uid=row["uid"],
    )
