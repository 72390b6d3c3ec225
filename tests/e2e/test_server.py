"""The shiplane server: instance restart with backoff, secrets, token, restore after restart."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx

from tests.support.app_repo import AppRepo
from tests.support.wait import serves, wait_for

SECRET = "sup3r-s3cret-Value-91"


def test_crashed_instance_is_restarted(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    before = app_repo.shiplane("server", "status").data["envs"]["dev"]["instances"][0]
    os.killpg(before["pid"], signal.SIGKILL)

    def restarted() -> bool:
        now = app_repo.shiplane("server", "status").data["envs"]["dev"]["instances"][0]
        return now["restarts"] >= 1 and now["state"] == "running" and now["pid"] != before["pid"]

    assert wait_for(restarted)
    assert wait_for(lambda: serves(app_repo.url("dev", "/api/notes")))


def test_secrets_never_leave_the_env_file(app_repo: AppRepo) -> None:
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace("auto_merge = true", 'auto_merge = true\nenv_file = ".env.dev"')
    )
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit(
        "print the env",
        {
            "app.py": (app_repo.path / "app.py")
            .read_text()
            .replace(
                "app = Flask(__name__)",
                "import sys\nprint(dict(os.environ), file=sys.stderr)\napp = Flask(__name__)",
            ),
        },
    )
    (app_repo.path / ".env.dev").write_text(f"API_TOKEN={SECRET}\n")
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout
    # The app got it...
    status = app_repo.shiplane("status")
    assert status.code == 0
    # ...and it is nowhere in what shiplane printed or wrote.
    for text in (run.stdout, run.stderr, status.stdout):
        assert SECRET not in text
    leaked = [
        p for p in app_repo.home.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()
    ]
    # ...but in the server's own copy of the env file it was sent (0600): what it starts from.
    kept = app_repo.root / "config" / "env" / "dev.env"
    assert leaked == [kept] and kept.stat().st_mode & 0o777 == 0o600
    app_log = next((app_repo.root / "dev" / "logs").glob("app-*.log")).read_text()
    assert "API_TOKEN" in app_log and "***" in app_log  # the app printed it; the log masks it


def test_token_required(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    sock = str(app_repo.home / "server.sock")
    with httpx.Client(transport=httpx.HTTPTransport(uds=sock), base_url="http://x") as client:
        assert client.get("/status").status_code == 401
        assert client.get("/status", headers={"x-shiplane-token": "wrong"}).status_code == 401
        token = (app_repo.home / "server.token").read_text()
        assert client.get("/status", headers={"x-shiplane-token": token}).status_code == 200
    assert Path(sock).stat().st_mode & 0o777 == 0o600
    assert (app_repo.home / "server.token").stat().st_mode & 0o777 == 0o600
    # public endpoints on the front door; status needs the token, from loopback too
    assert httpx.get(app_repo.url("dev", "/_deploy/health"), timeout=5).json()["ok"] is True
    url = app_repo.url("dev", "/_deploy/migrations")
    assert httpx.get(url, timeout=5).status_code == 401
    migrations = httpx.get(url, headers={"x-shiplane-token": token}, timeout=5).json()
    assert [m["name"] for m in migrations["applied"]] == ["create_notes", "add_tags"]


def test_server_restart_restores_what_serves(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    sha = httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"]
    pid = int((app_repo.home / "server.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not serves(app_repo.url("dev", "/_deploy/health")))
    assert app_repo.shiplane("server").code == 0  # starts it again in the background
    assert wait_for(lambda: serves(app_repo.url("dev", "/api/notes")))
    assert httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"] == sha


def test_server_commands_take_json_like_every_command(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    status = app_repo.shiplane("server", "status", "--json")
    assert status.code == 0 and status.data["running"] and "dev" in status.data["envs"]
    stopped = app_repo.shiplane("server", "stop", "--json")
    assert stopped.code == 0 and stopped.data["was_running"] is True
    assert app_repo.shiplane("server", "status", "--json").data["running"] is False
