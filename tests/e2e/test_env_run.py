"""`restart`, `env set|unset|list` and `run` on real parts: a real git repo, the real server and
CLI, gunicorn instances and a client hammering the front door throughout."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx

from tests.support.app_repo import AppRepo, Run
from tests.support.faults import client_loop, without_checks

PERSON = {"SHIPLANE_ACTOR": "person:tester"}


def _serving(app_repo: AppRepo) -> dict[str, Any]:
    instances = app_repo.shiplane("server", "status").data["envs"]["dev"]["instances"]
    serving = [i for i in instances if i["serving"]]
    assert len(serving) == 1, instances
    return dict(serving[0])


def _environ(pid: int) -> dict[str, str]:
    """What the instance's process really got (gunicorn's master: its workers inherit it)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _deployed(app_repo: AppRepo) -> str:
    without_checks(app_repo.path / "shiplane.toml")
    deployed = app_repo.shiplane("deploy", "dev")
    assert deployed.code == 0, deployed.stdout + deployed.stderr
    return str(deployed.data["sha"])


def test_restart_serves_the_same_sha_from_a_new_instance_without_a_failed_request(
    app_repo: AppRepo,
) -> None:
    sha = _deployed(app_repo)
    before = _serving(app_repo)
    with client_loop(app_repo.url("dev", "/api/version")) as loop:
        restarted = app_repo.shiplane("restart", "dev")
    assert restarted.code == 0, restarted.stdout + restarted.stderr
    assert loop.failures == [] and loop.ok > 0, loop.failures[:5]
    assert [s["name"] for s in restarted.data["steps"]] == [
        "lock",
        "target",
        "start",
        "health",
        "switch",
        "smoke",
        "workers",
        "drain",
        "record",
    ]
    after = _serving(app_repo)
    assert after["id"] != before["id"] and after["id"] == restarted.data["instance_id"]
    assert after["sha"] == sha == restarted.data["sha"]
    assert httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"] == sha
    status = app_repo.shiplane("status", "dev").data["envs"]["dev"]
    assert status["consistent"] and status["healthy"] and status["serving_sha"] == sha
    # No new release: the restart reused the serving one.
    history = app_repo.shiplane("history", "dev").data["deployments"]
    assert history[0]["kind"] == "restart" and history[0]["release"] == history[1]["release"]


def test_env_set_restarts_with_the_variable_and_never_shows_a_secret(app_repo: AppRepo) -> None:
    _deployed(app_repo)
    secret = "s3cr3t-" + secrets.token_hex(12)
    runs: list[Run] = []
    with client_loop(app_repo.url("dev", "/api/version")) as loop:
        runs.append(app_repo.shiplane("env", "set", "dev", "GREETING=hi", "EMPTY="))
        runs.append(app_repo.shiplane("env", "set", "dev", "--secret", f"API_KEY={secret}"))
    assert [r.code for r in runs] == [0, 0], [r.stdout for r in runs]
    assert loop.failures == [] and loop.ok > 0, loop.failures[:5]
    assert runs[0].data["set"] == ["EMPTY", "GREETING"] and runs[0].data["applied"]
    assert runs[1].data["set"] == ["API_KEY"] and runs[1].data["secret"] is True

    # The serving instance itself got both (its process environment, not a report of it).
    environ = _environ(int(_serving(app_repo)["pid"]))
    assert environ["GREETING"] == "hi" and environ["API_KEY"] == secret
    assert environ["APP_MODE"] == "development"  # shiplane.toml's env is still there

    listed = app_repo.shiplane("env", "list", "dev")
    runs.append(listed)
    assert listed.code == 0, listed.stdout
    by_key = {v["key"]: v for v in listed.data["variables"]}
    assert by_key["GREETING"] == {
        "key": "GREETING",
        "value": "hi",
        "secret": False,
        "source": "server",
    }
    assert by_key["API_KEY"] == {
        "key": "API_KEY",
        "value": "***",
        "secret": True,
        "source": "server",
    }
    assert by_key["APP_MODE"]["source"] == "config"

    # A one-off command sees what the app sees; its output is redacted on the way back.
    shown = app_repo.shiplane(
        "run",
        "dev",
        "--",
        "python",
        "-c",
        "import os; print(os.environ['GREETING'], os.environ['API_KEY'])",
    )
    runs.append(shown)
    assert shown.code == 0 and shown.data["exit_status"] == 0, shown.stdout
    assert shown.data["output"]["stdout"] == "hi ***\n"

    # Every deployment's log, as `shiplane logs` hands it out.
    for deployment in app_repo.shiplane("history", "dev").data["deployments"]:
        runs.append(app_repo.shiplane("logs", deployment["id"]))

    unset = app_repo.shiplane("env", "unset", "dev", "GREETING")
    runs.append(unset)
    assert unset.code == 0 and unset.data["unset"] == ["GREETING"], unset.stdout
    assert "GREETING" not in _environ(int(_serving(app_repo)["pid"]))

    for run in runs:
        assert secret not in run.stdout + run.stderr
    leaked = [
        path
        for path in [*app_repo.root.rglob("*"), *app_repo.home.glob("*.log")]
        if path.is_file()
        # Where the server keeps it, by design: state.db and its copies (state-backups/).
        and not path.name.startswith("state.db")
        and path.parent.name != "state-backups"
        and secret.encode() in path.read_bytes()
    ]
    assert leaked == []


def test_bad_keys_are_one_usage_error_naming_the_key(app_repo: AppRepo) -> None:
    for bad in ("lower=1", "PORT=1", "DATABASE_URL=x", "SHIPLANE_ENV=x", "1ST=x", "NOEQUALS"):
        refused = app_repo.shiplane("env", "set", "dev", "GOOD=1", bad)
        assert refused.code == 64, refused.stdout
        assert repr(bad.split("=")[0]) in refused.data["error"]["message"], refused.stdout
    assert app_repo.shiplane("env", "unset", "dev", "bad-key").code == 64
    # Without "=", a --secret argument may be the secret itself: it is named by its place.
    mistyped = app_repo.shiplane("env", "set", "dev", "--secret", "A=1", "hunter2-value")
    assert mistyped.code == 64 and "argument 2" in mistyped.data["error"]["message"]
    assert "hunter2-value" not in mistyped.stdout + mistyped.stderr
    assert not (app_repo.root / "server.sock").exists()  # found before any server started


def test_run_a_one_off_command_with_the_apps_environment(app_repo: AppRepo) -> None:
    sha = _deployed(app_repo)
    ran = app_repo.shiplane(
        "run",
        "dev",
        "--",
        "python",
        "-c",
        "import os; print(os.environ['SHIPLANE_ENV'], os.environ['DATABASE_URL'])",
    )
    assert ran.code == 0, ran.stdout + ran.stderr
    database = app_repo.root / "dev" / "shared" / "notes.db"
    assert ran.data["output"]["stdout"] == f"dev sqlite:///{database}\n"
    assert ran.data["exit_status"] == 0 and ran.data["succeeded"] and ran.data["sha"] == sha

    in_release = app_repo.shiplane(
        "run",
        "dev",
        "--",
        "python",
        "-c",
        "import os, sys; print(os.getcwd()); print(os.environ['SHIPLANE_SHA']); sys.exit(3)",
    )
    assert in_release.code == 0, in_release.stdout  # it ran; how it went is in data
    assert in_release.data["exit_status"] == 3 and not in_release.data["succeeded"]
    cwd, seen_sha = in_release.data["output"]["stdout"].split()
    assert Path(cwd).parent == app_repo.root / "dev" / "releases" and seen_sha == sha

    slow = app_repo.shiplane(
        "run", "dev", "--timeout", "1", "--", "python", "-c", "import time; time.sleep(60)"
    )
    assert slow.code == 0 and slow.data["timed_out"] and slow.data["exit_status"] is None

    missing = app_repo.shiplane("run", "dev", "--", "no-such-program-here")
    assert missing.code == 3 and "no-such-program-here" in missing.data["error"]["message"]
    assert app_repo.shiplane("run", "dev").code == 64
    assert app_repo.shiplane("run", "dev", "--timeout", "0", "--", "true").code == 64


def test_an_agent_token_may_not_change_or_run_in_a_gated_env(app_repo: AppRepo) -> None:
    created = app_repo.shiplane("tokens", "create", "--role", "agent", extra_env=PERSON)
    assert created.code == 0, created.stdout
    agent = {"SHIPLANE_TOKEN": created.data["token"]}
    for args in (
        ["env", "set", "prod", "GREETING=hi"],
        ["env", "unset", "prod", "GREETING"],
        ["restart", "prod"],
        ["run", "prod", "--", "true"],
    ):
        refused = app_repo.shiplane(*args, extra_env=agent)
        assert refused.code == 6, (args, refused.stdout)
        assert refused.data["error"]["step"] == "policy"
    listed = app_repo.shiplane("env", "list", "prod", extra_env=agent)
    assert listed.code == 0, listed.stdout
    assert {v["key"] for v in listed.data["variables"]} == {"APP_MODE"}
