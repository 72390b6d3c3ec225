"""Approvers for the tests: a passphrase in a file (a non-interactive person's factor), and an
Ed25519 key made with ssh-keygen."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from tests.support.app_repo import AppRepo


def passphrase_file(directory: Path, name: str = "alice") -> Path:
    """A fresh passphrase for ``name``, in a 0600 file."""
    path = directory / f"{name}.passphrase"
    path.write_text(f"correct horse {secrets.token_hex(8)}\n")
    path.chmod(0o600)
    return path


def enroll(
    app_repo: AppRepo,
    directory: Path,
    name: str = "alice",
    extra_env: dict[str, str] | None = None,
) -> Path:
    """Enroll ``name`` with a passphrase (the first approver: the server token's holder, which
    in single-user mode is the same user) and return the passphrase file."""
    path = passphrase_file(directory, name)
    run = app_repo.shiplane(
        "approvers", "add", name, "--passphrase-file", str(path), extra_env=extra_env
    )
    assert run.code == 0, run.stdout + run.stderr
    return path


def ssh_key(directory: Path, name: str = "alice") -> Path:
    """An Ed25519 key pair without a passphrase; the private key's path (``.pub`` beside it)."""
    key = directory / f"{name}_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return key


def as_person(factor: Path, name: str = "alice") -> dict[str, str]:
    """The environment of a non-interactive person giving their factor from a file."""
    return {"SHIPLANE_FACTOR": factor.read_text().strip(), "SHIPLANE_APPROVER": name}
