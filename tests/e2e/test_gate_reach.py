"""Issue 13, the rest of the pin and the person-only acts: where a gated environment answers
(listen, domains, TLS) is pinned; `restore --discard-writes` there needs a person's factor;
a promotion that brings back a rolled-back commit names `promote --include-rolled-back`.
Real server, sockets, git and SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from tests.support.app_repo import AppRepo
from tests.support.approvers import as_person, enroll

COLUMN = (
    "ALTER TABLE notes ADD COLUMN starred INTEGER;\n"
    "-- down\nALTER TABLE notes DROP COLUMN starred;\n"
)


def _edit(config: Path, old: str, new: str) -> None:
    text = config.read_text()
    assert old in text, old
    config.write_text(text.replace(old, new))


def _promote_first(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    assert app_repo.shiplane("verify", "dev").code == 0
    first = app_repo.shiplane("promote", "prod")
    assert first.code == 0, first.stdout


def test_where_prod_answers_is_pinned(app_repo: AppRepo, tmp_path: Path) -> None:
    _promote_first(app_repo)  # single-user mode: the first promotion pins prod
    alice = as_person(enroll(app_repo, tmp_path))
    config = app_repo.path / "shiplane.toml"
    good = config.read_text()
    _edit(config, 'promote_from = "dev"', 'promote_from = "dev"\nlisten = "0.0.0.0"')
    exposed = app_repo.shiplane("promote", "prod")
    assert exposed.code == 6 and exposed.data["error"]["step"] == "protect", exposed.stdout
    assert "listen '127.0.0.1' -> '0.0.0.0'" in exposed.data["error"]["message"]
    assert "shiplane protect prod" in exposed.data["error"]["next_action"]
    config.write_text(good)
    _edit(config, 'promote_from = "dev"', 'promote_from = "dev"\ndomains = ["shop.test"]')
    named = app_repo.shiplane("rollback", "prod")
    assert named.code == 6 and "domains [] -> ['shop.test']" in named.data["error"]["message"]
    # A person confirms it with the factor; then the new setting is the pin.
    confirmed = app_repo.shiplane("protect", "prod", extra_env=alice)
    assert confirmed.code == 0, confirmed.stdout
    assert confirmed.data["pinned"]["domains"] == ["shop.test"]


def test_discarding_writes_in_a_gated_env_is_a_persons_act(
    app_repo: AppRepo, tmp_path: Path
) -> None:
    _promote_first(app_repo)
    alice = as_person(enroll(app_repo, tmp_path))
    backed_up = app_repo.shiplane("backup", "prod")
    assert backed_up.code == 0, backed_up.stdout
    backup_id = app_repo.shiplane("backups", "prod").data["backups"][0]["id"]
    written = httpx.post(
        app_repo.url("prod", "/api/notes"), json={"title": "after", "body": "the backup"}
    )
    assert written.status_code == 201
    restore = ("restore", "prod", backup_id, "--yes", "--discard-writes")
    without = app_repo.shiplane(*restore)
    assert without.code == 6 and without.data["error"]["step"] == "factor", without.stdout
    assert f"shiplane restore prod {backup_id}" in without.data["error"]["next_action"]
    agent = app_repo.shiplane(*restore, extra_env={**alice, "SHIPLANE_ACTOR": "agent:bot"})
    assert agent.code == 6, agent.stdout
    db = app_repo.root / "prod" / "shared" / "notes.db"
    with sqlite3.connect(db) as conn:
        titles = {row[0] for row in conn.execute("SELECT title FROM notes")}
    assert "after" in titles  # refused: nothing discarded
    done = app_repo.shiplane(*restore, extra_env=alice)
    assert done.code == 0, done.stdout
    assert done.data["pre_restore_backup"], done.stdout  # what it discarded is kept
    with sqlite3.connect(db) as conn:
        titles = {row[0] for row in conn.execute("SELECT title FROM notes")}
    assert "after" not in titles
    events = app_repo.shiplane("history", "prod").data["gate_events"]
    assert any(e["command"] == "restore" and e["actor"] == "person:alice" for e in events)


def test_a_promotion_names_the_flag_for_a_rolled_back_commit(app_repo: AppRepo) -> None:
    _promote_first(app_repo)
    app_repo.git("checkout", "-q", "-b", "feature/star", "dev")
    starred = app_repo.commit("star", {"migrations/003_add_starred.sql": COLUMN})
    assert app_repo.shiplane("deploy", "dev").code == 0
    assert app_repo.shiplane("verify", "dev").code == 0
    promoted = app_repo.shiplane("promote", "prod")
    assert promoted.code == 0, promoted.stdout
    back = app_repo.shiplane("rollback", "prod")
    assert back.code == 0 and starred in back.data["rolled_back"], back.stdout
    prod_before = app_repo.remote_branch("main")

    # dev moves on from the rolled-back commit, verified there: promoting it brings it back.
    app_repo.commit("2.0", {"VERSION": "2.0.0\n"})
    assert app_repo.shiplane("deploy", "dev").code == 0
    assert app_repo.shiplane("verify", "dev").code == 0
    refused = app_repo.shiplane("promote", "prod")
    assert refused.code == 6, refused.stdout
    assert starred[:12] in refused.data["error"]["message"]
    assert "shiplane promote prod --include-rolled-back" in refused.data["error"]["next_action"]
    assert app_repo.remote_branch("main") == prod_before
    again = app_repo.shiplane("promote", "prod", "--include-rolled-back")
    assert again.code == 0, again.stdout
    version = httpx.get(app_repo.url("prod", "/api/version"), timeout=5).json()["version"]
    assert version == "2.0.0"
