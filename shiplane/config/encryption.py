"""``environments.<env>.backup_encryption``: backups at rest, encrypted with age."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class BackupEncryption(BaseModel):
    """Backups of the env are encrypted to ``recipient`` (an age X25519 public key); restores
    decrypt with ``identity_file`` (its secret key, readable by the server's user, outside the
    deploy root: a key beside the backups would protect nothing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipient: str = Field(description="age public key (age1...) backups are encrypted to.")
    identity_file: str = Field(description="Absolute path of the age secret key, for restores.")

    @field_validator("recipient")
    @classmethod
    def _recipient(cls, value: str) -> str:
        if not value.startswith("age1"):
            raise ValueError("an age public key starts with 'age1' (`age-keygen -y KEYFILE`)")
        return value

    @field_validator("identity_file")
    @classmethod
    def _identity(cls, value: str) -> str:
        if not Path(value).expanduser().is_absolute():
            raise ValueError("give an absolute path outside the deploy root")
        return value

    @property
    def identity_path(self) -> Path:
        return Path(self.identity_file).expanduser()
