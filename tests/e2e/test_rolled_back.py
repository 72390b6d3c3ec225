"""Rolled-back commits do not come back silently: a rollback records what it took out and
moves the server's env branch back; a later deploy whose commit has one of them among its
ancestors is refused (exit 6, naming them) unless it says --include-rolled-back."""

from __future__ import annotations

from tests.support.app_repo import AppRepo
from tests.support.sqlite_util import columns

PINNED = (
    "ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;\n"
    "-- down\nALTER TABLE notes DROP COLUMN pinned;\n"
)


def test_a_rolled_back_commit_needs_the_flag_to_come_back(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    before = app_repo.remote_branch("dev")
    assert before is not None
    app_repo.git("checkout", "-q", "-b", "feature/pinned", "dev")
    pinned = app_repo.commit("add pinned", {"migrations/003_add_pinned.sql": PINNED})
    assert app_repo.shiplane("deploy", "dev").code == 0
    db = app_repo.root / "dev" / "shared" / "notes.db"
    assert "pinned" in columns(db, "notes")
    mine = app_repo.local_branches()

    back = app_repo.shiplane("rollback", "dev")
    assert back.code == 0, back.stdout
    assert pinned in back.data["rolled_back"]
    # Code went back; the additive column stays (the old release runs on it: issue 12).
    assert back.data["database"]["action"] == "kept", back.stdout
    assert "pinned" in columns(db, "notes")
    # The server's dev went back; the client sees it as shiplane/dev, its own branches stay.
    assert app_repo.git("--git-dir", str(app_repo.server_repo), "rev-parse", "dev") == before
    assert app_repo.remote_branch("dev") == before
    assert app_repo.local_branches() == mine

    # Another feature branch that carries the rolled-back commit: refused, nothing changes.
    app_repo.git("checkout", "-q", "-b", "feature/tags", "feature/pinned")
    app_repo.commit("tags 2", {"VERSION": "2.0.0\n"})
    refused = app_repo.shiplane("deploy", "dev")
    assert refused.code == 6, refused.stdout
    assert pinned[:12] in refused.data["error"]["message"]
    assert "--include-rolled-back" in refused.data["error"]["next_action"]
    assert app_repo.git("--git-dir", str(app_repo.server_repo), "rev-parse", "dev") == before

    # On purpose: it comes back, and is no longer held against later deploys.
    included = app_repo.shiplane("deploy", "dev", "--include-rolled-back")
    assert included.code == 0, included.stdout
    assert "pinned" in columns(db, "notes")
    app_repo.commit("tags 3", {"VERSION": "3.0.0\n"})
    assert app_repo.shiplane("deploy", "dev").code == 0
