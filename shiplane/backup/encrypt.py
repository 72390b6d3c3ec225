"""Backups at rest: an archive encrypted with age (pyrage) to the env's recipient, decrypted
for a restore with the identity the server reads from outside the deploy root."""

from __future__ import annotations

import os
from pathlib import Path

import pyrage
from pyrage import x25519

from shiplane.config.encryption import BackupEncryption
from shiplane.errors import BackupError

SUFFIX = ".age"


def outside_root(encryption: BackupEncryption, root: Path) -> None:
    """The identity must not live in the deploy root: whoever reads a backup would read it."""
    identity = encryption.identity_path.resolve()
    if identity.is_relative_to(root.resolve()):
        raise BackupError(
            f"backup_encryption.identity_file = {encryption.identity_file!r} lies inside the "
            f"deploy root {root}: a key beside the backups protects nothing",
            step="backup",
            next_action="move the age key outside the deploy root and point identity_file at it",
        )


def encrypt_file(archive: Path, encryption: BackupEncryption) -> Path:
    """``archive`` encrypted to ``archive.age`` (0600); the plaintext is removed."""
    recipient = x25519.Recipient.from_str(encryption.recipient)
    sealed = archive.with_name(archive.name + SUFFIX)
    fd = os.open(sealed, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pyrage.encrypt(archive.read_bytes(), [recipient]))
    archive.unlink()
    return sealed


def decrypt_file(sealed: Path, dest: Path, identity_file: Path | None, backup: str) -> None:
    """``sealed`` decrypted into ``dest`` (0600) with the age identity in ``identity_file``."""
    if identity_file is None:
        raise BackupError(
            f"backup {backup} is encrypted (age) and this env has no backup_encryption "
            "identity_file to decrypt it with; nothing was overwritten",
            step="restore",
            next_action="set environments.<env>.backup_encryption = { recipient = ..., "
            "identity_file = ... } to the key it was encrypted to, then restore again",
        )
    try:
        text = identity_file.read_text()
    except OSError as exc:
        raise BackupError(
            f"backup {backup} is encrypted (age); the identity {identity_file} is not readable "
            f"by the server ({exc.strerror}); nothing was overwritten",
            step="restore",
            next_action=f"put the age secret key at {identity_file}, readable by the server's "
            "user, then restore again",
        ) from exc
    lines = [line.strip() for line in text.splitlines() if line.startswith("AGE-SECRET-KEY-")]
    try:
        identities = [x25519.Identity.from_str(line) for line in lines]
        plain = pyrage.decrypt(sealed.read_bytes(), identities)
    except Exception as exc:  # pyrage raises its own errors for a wrong key or bad data
        raise BackupError(
            f"backup {backup}: decrypting with {identity_file} failed ({exc}); nothing was "
            "overwritten",
            step="restore",
            next_action="use the identity whose public key the backup was encrypted to "
            "(its manifest names the recipient)",
        ) from exc
    fd = os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(plain)


def for_env(encryption: BackupEncryption | None, home: Path) -> BackupEncryption | None:
    """The env's encryption, its identity checked to lie outside the server's ``home``."""
    if encryption is not None:
        outside_root(encryption, home)
    return encryption


def identity_of(encryption: BackupEncryption | None) -> Path | None:
    return encryption.identity_path if encryption is not None else None
