"""Backups at rest: an env with backup_encryption keeps its backups only age-encrypted, the
manifest says so, a restore decrypts with the identity outside the deploy root, and a restore
without it says what is missing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.app_repo import AppRepo
from tests.support.encryption import encrypt_dev_backups


def test_encrypted_backup_and_restore(app_repo: AppRepo, tmp_path: Path) -> None:
    key = encrypt_dev_backups(app_repo, tmp_path / "keys")
    assert app_repo.shiplane("deploy", "dev").code == 0
    made = app_repo.shiplane("backup", "dev")
    assert made.code == 0, made.stdout
    backup_id = made.data["backup"]["id"]
    directory = app_repo.root / "dev" / "backups" / backup_id
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["encrypted"] == "age" and manifest["archive"].endswith(".age")
    assert (directory / manifest["archive"]).read_bytes().startswith(b"age-encryption.org/")
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["manifest.json", manifest["archive"]]
    )

    restored = app_repo.shiplane("restore", "dev", backup_id, "--yes")
    assert restored.code == 0, restored.stdout

    key.rename(key.with_name("elsewhere.key"))
    missing = app_repo.shiplane("restore", "dev", backup_id, "--yes")
    assert missing.code != 0, missing.stdout
    assert "encrypted (age)" in missing.data["error"]["message"]
    assert str(key) in missing.data["error"]["next_action"]
