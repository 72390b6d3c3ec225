"""The people who may approve, and what verifies each of them: host.db's approvers table.

A verifier can check a factor but never produce one, so reading host.db (or every file the
server keeps) gives no one the power to approve:

- ``passphrase``: an scrypt hash (salted, memory-hard: a stolen hash is slow to guess);
- ``ssh``: an Ed25519 public key; the person signs a single-use challenge with the private
  half (``ssh-keygen -Y sign``), which never leaves their machine;
- ``totp``: the one exception, a shared secret (pyotp). It is enrolled only in enforced mode,
  where host.db is the server's OS user's alone, and each code is accepted once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shiplane.errors import ConfigError
from shiplane.state.db import StateDB, now

Kind = Literal["passphrase", "ssh", "totp"]
KINDS: tuple[Kind, ...] = ("passphrase", "ssh", "totp")
NAMESPACE = "shiplane"  # ssh-keygen -Y sign -n shiplane: a signature for nothing else
MIN_PASSPHRASE = 12
# scrypt cost: ~50 ms and 16 MiB per check here; a guesser pays the same per guess.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


@dataclass(frozen=True)
class Approver:
    name: str
    kind: Kind
    created_at: str
    created_by: str


def hash_passphrase(passphrase: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def passphrase_matches(stored: str, passphrase: str) -> bool:
    try:
        _scheme, n, r, p, salt, digest = stored.split("$")
        computed = _scrypt(passphrase, bytes.fromhex(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)


def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(passphrase.encode(), salt=salt, n=n, r=r, p=p, dklen=32)


def check_public_key(line: str) -> str:
    """An Ed25519 OpenSSH public key line, normalised to ``type base64``."""
    parts = line.strip().split()
    if len(parts) < 2 or parts[0] != "ssh-ed25519":
        raise ConfigError(
            "an approver's SSH key must be an Ed25519 public key (ssh-ed25519 AAAA...)",
            step="usage",
            next_action="ssh-keygen -t ed25519 -f ~/.ssh/shiplane, then pass the .pub file",
        )
    try:
        base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise ConfigError(
            "the SSH public key is not valid base64", step="usage", next_action="pass the .pub file"
        ) from None
    return f"{parts[0]} {parts[1]}"


class ApproverStore:
    def __init__(self, db: StateDB) -> None:
        self.db = db

    def add(self, name: str, kind: Kind, verifier: str, by: str) -> None:
        self.db.conn.execute(
            "INSERT OR REPLACE INTO approvers (name, kind, verifier, created_at, created_by)"
            " VALUES (?, ?, ?, ?, ?)",
            (name, kind, verifier, now(), by),
        )

    def remove(self, name: str) -> int:
        return self.db.conn.execute("DELETE FROM approvers WHERE name = ?", (name,)).rowcount

    def list(self) -> list[Approver]:
        rows = self.db.conn.execute(
            "SELECT name, kind, created_at, created_by FROM approvers ORDER BY name, kind"
        ).fetchall()
        return [Approver(r["name"], r["kind"], r["created_at"], r["created_by"]) for r in rows]

    def verifier(self, name: str, kind: Kind) -> str | None:
        row = self.db.conn.execute(
            "SELECT verifier FROM approvers WHERE name = ? AND kind = ?", (name, kind)
        ).fetchone()
        return str(row["verifier"]) if row else None

    def write_allowed_signers(self, path: Path) -> Path:
        """The allowed_signers file ``ssh-keygen -Y verify`` reads: every enrolled key, each
        limited to the shiplane namespace."""
        rows = self.db.conn.execute(
            "SELECT name, verifier FROM approvers WHERE kind = 'ssh' ORDER BY name"
        ).fetchall()
        lines = [f'{r["name"]} namespaces="{NAMESPACE}" {r["verifier"]}\n' for r in rows]
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(lines))
        tmp.chmod(0o600)
        tmp.replace(path)
        return path
