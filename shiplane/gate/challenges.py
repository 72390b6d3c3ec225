"""Single-use challenges an approver signs: a server nonce bound to the action, the id, the
sha, the environment and an expiry. A signature over one cannot approve anything else, and
cannot be used twice (``redeem`` marks it used in the same statement that finds it)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from shiplane.state.db import StateDB, now

TTL = 300.0  # seconds to sign and send; a person reads the challenge first
HEADER = "shiplane approval challenge v1"


@dataclass(frozen=True)
class Binding:
    """What a person's decision is about; ``subject`` is a promotion id, a release or a hash
    of the protection being confirmed (empty when the action has none)."""

    action: str
    env: str
    subject: str = ""
    sha: str = ""

    def lines(self) -> str:
        return f"action: {self.action}\nenv: {self.env}\nid: {self.subject}\nsha: {self.sha}\n"


def issue(db: StateDB, binding: Binding) -> tuple[str, str]:
    """A new challenge: ``(nonce, text)``; the text is what gets signed, byte for byte."""
    nonce = secrets.token_hex(16)
    expires = time.time() + TTL
    text = f"{HEADER}\nnonce: {nonce}\n{binding.lines()}expires: {int(expires)}\n"
    db.conn.execute(
        "DELETE FROM challenges WHERE expires_epoch < ?", (time.time() - TTL,)
    )  # keep the table small
    db.conn.execute(
        "INSERT INTO challenges (nonce, text, expires_epoch) VALUES (?, ?, ?)",
        (nonce, text, expires),
    )
    return nonce, text


def redeem(db: StateDB, nonce: str, binding: Binding) -> str | None:
    """The challenge's text if ``nonce`` is live, unused and bound to ``binding``; it is then
    used up. None otherwise (unknown, expired, used, or about something else)."""
    row = db.conn.execute(
        "UPDATE challenges SET used_at = ? WHERE nonce = ? AND used_at IS NULL"
        " AND expires_epoch >= ? RETURNING text",
        (now(), nonce, time.time()),
    ).fetchone()
    if row is None:
        return None
    text = str(row["text"])
    return text if binding.lines() in text else None
