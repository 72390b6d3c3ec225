"""Age-encrypted backups for a test's dev environment: a fresh identity in a 0600 key file
outside the deploy root, and the config naming its recipient and the file."""

from __future__ import annotations

from pathlib import Path

from pyrage import x25519

from tests.support.app_repo import AppRepo


def encrypt_dev_backups(app_repo: AppRepo, keys: Path) -> Path:
    """Write the key under ``keys`` and set dev's ``backup_encryption``; the key file's path."""
    identity = x25519.Identity.generate()
    key = keys / "dev.key"
    key.parent.mkdir()
    key.write_text(str(identity) + "\n")
    key.chmod(0o600)
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace(
            "auto_merge = true",
            "auto_merge = true\nbackup_encryption = { recipient = "
            f'"{identity.to_public()}", identity_file = "{key}" }}',
        )
    )
    return key
