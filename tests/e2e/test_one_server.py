"""One server per host: every app on it has its own routes, and a port belongs to one app/env."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.app_repo import AppRepo, make_repo


def test_two_apps_share_one_server(app_repo: AppRepo, tmp_path: Path) -> None:
    other = make_repo(tmp_path / "second", name="tasks", home=app_repo.home)
    try:
        assert app_repo.shiplane("deploy", "dev").code == 0
        deployed = other.shiplane("deploy", "dev")
        assert deployed.code == 0, deployed.stdout
        notes_sha = app_repo.git("rev-parse", "HEAD")
        other.commit("tasks v2", {"VERSION": "2.0.0\n"})
        tasks_sha = other.git("rev-parse", "HEAD")
        assert other.shiplane("deploy", "dev").code == 0
        # Each app's front door serves its own release.
        assert httpx.get(app_repo.url("dev", "/_deploy/version")).json()["sha"] == notes_sha
        assert httpx.get(other.url("dev", "/_deploy/version")).json()["sha"] == tasks_sha
        # One server process holds both, each app in its own directory.
        assert (app_repo.home / "server.pid").is_file()
        assert (app_repo.home / "apps" / "notes" / "state.db").is_file()
        assert (app_repo.home / "apps" / "tasks" / "state.db").is_file()
        server = app_repo.shiplane("server", "status").data
        assert set(server["apps"]) == {"notes", "tasks"}
        assert set(server["envs"]) == {"dev"} and server["app"] == "notes"
        # Rolling one app back leaves the other alone.
        assert other.shiplane("rollback", "dev").code == 0
        assert httpx.get(app_repo.url("dev", "/_deploy/version")).json()["sha"] == notes_sha
        assert httpx.get(other.url("dev", "/_deploy/version")).json()["sha"] != tasks_sha

        # A port another app's environment holds is refused, naming who holds it.
        config = other.path / "shiplane.toml"
        config.write_text(
            config.read_text().replace(
                f"port = {other.ports['dev']}", f"port = {app_repo.ports['dev']}"
            )
        )
        clash = other.shiplane("deploy", "dev")
        assert clash.code == 64, clash.stdout
        assert "the front door of notes/dev" in clash.data["error"]["message"]
        # The first app still serves on its port.
        assert httpx.get(app_repo.url("dev", "/_deploy/version")).json()["sha"] == notes_sha
    finally:
        other.stop_server()
