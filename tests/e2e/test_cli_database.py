"""`shiplane migrate|backup|backups|restore|init|server install-unit` through the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from shiplane.config import load_config
from tests.support.app_repo import AppRepo


def test_migrate_backup_restore_cycle(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    status = app_repo.shiplane("migrate", "dev", "status")
    assert status.code == 0 and status.data["applied"] == ["001_create_notes", "002_add_tags"]

    dry = app_repo.shiplane("migrate", "dev", "down", "--to", "1", "--dry-run")
    assert dry.data["would_revert"] == ["002_add_tags"]
    assert app_repo.shiplane("migrate", "dev", "status").data["pending"] == []

    backup = app_repo.shiplane("backup", "dev")
    assert backup.code == 0
    backup_id = backup.data["backup"]["id"]
    at_backup = httpx.get(app_repo.url("dev", "/api/notes"), timeout=5).json()["notes"]
    httpx.post(app_repo.url("dev", "/api/notes"), json={"title": "after backup"}, timeout=5)
    notes = httpx.get(app_repo.url("dev", "/api/notes"), timeout=5).json()["notes"]
    assert len(notes) == len(at_backup) + 1

    refused = app_repo.shiplane("restore", "dev", backup_id)
    assert refused.code == 64 and "--yes" in refused.data["error"]["message"]
    written = app_repo.shiplane("restore", "dev", backup_id, "--yes")
    assert written.code == 6 and "notes (" in written.data["error"]["message"]  # a write since
    restored = app_repo.shiplane("restore", "dev", backup_id, "--yes", "--discard-writes")
    assert restored.code == 0, restored.stdout
    assert restored.data["verified"]["integrity"] == "ok"
    assert httpx.get(app_repo.url("dev", "/api/notes"), timeout=5).json()["notes"] == at_backup
    ids = [b["id"] for b in app_repo.shiplane("backups", "dev").data["backups"]]
    assert backup_id in ids and restored.data["safety_backup"] in ids

    missing = app_repo.shiplane("restore", "dev", "nope", "--yes")
    assert missing.code == 64 and "shiplane backups dev" in missing.data["error"]["next_action"]


def test_init_writes_a_valid_config(tmp_path: Path) -> None:
    repo = tmp_path / "My App"
    repo.mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "shiplane", "init", "--json"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout
    config = load_config(repo / "shiplane.toml").config
    assert config.app.name == "my-app" and set(config.environments) == {"dev", "prod"}
    again = subprocess.run(
        [sys.executable, "-m", "shiplane", "init", "--json"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 64 and "--force" in again.stdout


def test_install_unit(app_repo: AppRepo) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "shiplane", "server", "install-unit"],
        cwd=app_repo.path,
        env=app_repo.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0
    assert "server --foreground --root" in run.stdout and str(app_repo.home) in run.stdout
