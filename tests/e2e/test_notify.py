"""Notifications ([notify], shiplane.notify): a real server sends through apprise's json://
to a real HTTP receiver in the test; tokens in the URL never show anywhere else."""

from __future__ import annotations

import time

from tests.e2e.test_undo_keeps_writes import smoke_only
from tests.e2e.test_watch import deploy_renaming_v2_that_fails, tiny_app
from tests.support.app_repo import AppRepo
from tests.support.ports import free_port
from tests.support.reader import reading
from tests.support.receiver import Received, receiver, silent_receiver
from tests.support.wait import wait_for

TOKEN = "tok-9f3a71c2e5b04d"


def _configure(app_repo: AppRepo, urls: list[str], events: list[str] | None = None) -> None:
    """[notify] with ``urls``; dev's env file holds NOTIFY_TOKEN."""
    config = app_repo.path / "shiplane.toml"
    text = _original(app_repo).replace(
        "auto_merge = true", 'auto_merge = true\nenv_file = ".env.dev"'
    )
    text += "\n[notify]\nurls = [" + ", ".join(f'"{u}"' for u in urls) + "]\n"
    if events is not None:
        text += "events = [" + ", ".join(f'"{e}"' for e in events) + "]\n"
    config.write_text(text)
    (app_repo.path / ".env.dev").write_text(f"NOTIFY_TOKEN={TOKEN}\n")
    app_repo.git("add", "shiplane.toml")
    app_repo.git("commit", "-qm", "notify")


def _original(app_repo: AppRepo) -> str:
    """shiplane.toml as the fixture wrote it, kept aside the first time it is configured."""
    kept = app_repo.path.parent / "shiplane.toml.orig"
    if not kept.exists():
        kept.write_text((app_repo.path / "shiplane.toml").read_text())
    return kept.read_text()


def _server_log(app_repo: AppRepo) -> str:
    path = app_repo.home / "server.log"
    return path.read_text() if path.exists() else ""


def _messages(received: Received, count: int) -> list[dict]:
    assert wait_for(lambda: len(received.messages) >= count, timeout=20), received.messages
    return [m["body"] for m in received.messages]


def test_failures_and_rollbacks_are_sent_successes_are_not(app_repo: AppRepo) -> None:
    app_repo.git("checkout", "-q", "dev")  # every commit below is on dev: the config too
    with receiver() as received:
        _configure(app_repo, [received.url("/hook/${NOTIFY_TOKEN}")])
        first = app_repo.shiplane("deploy", "dev")
        assert first.code == 0, first.stdout
        app_repo.commit("v2", {"VERSION": "2.0.0\n"})
        second = app_repo.shiplane("deploy", "dev")
        assert second.code == 0, second.stdout
        time.sleep(2)  # time enough for a message that should not exist to arrive
        assert received.messages == []  # a successful deploy is not a default event

        sha = app_repo.commit("v3", {"VERSION": "3.0.0\n"})
        failed = app_repo.shiplane("deploy", "dev", extra_env={"SHIPLANE_FAULT": "health:fail"})
        assert failed.code == 3, failed.stdout
        (message,) = _messages(received, 1)
        # The placeholder reached the receiver resolved, from dev's env file.
        assert received.messages[0]["path"] == f"/hook/{TOKEN}"
        assert message["title"] == f"shiplane notes/dev {sha[:7]}: deploy_failed"
        text = message["message"]
        assert "step health:" in text and failed.data["error"]["message"][:40] in text
        assert "next:" in text

        rollback = app_repo.shiplane("rollback", "dev")
        assert rollback.code == 0, rollback.stdout
        messages = _messages(received, 2)
        assert messages[1]["title"].startswith("shiplane notes/dev") and messages[1][
            "title"
        ].endswith(": rollback")
        time.sleep(1)
        assert len(received.messages) == 2  # one message per event

        status = app_repo.shiplane("status", "dev")
        assert status.code == 0
        for shown in (first, second, failed, rollback, status):
            assert TOKEN not in shown.stdout + shown.stderr
        assert TOKEN not in _server_log(app_repo)


def test_a_receiver_that_failed_gets_the_message_on_a_later_try(app_repo: AppRepo) -> None:
    """A webhook down for a moment (two 503s) still gets the rollback's message, once."""
    app_repo.git("checkout", "-q", "dev")
    with receiver(refuse_first=2) as received:
        _configure(app_repo, [received.url("/hook/${NOTIFY_TOKEN}")], events=["rollback"])
        assert app_repo.shiplane("deploy", "dev").code == 0
        app_repo.commit("v2", {"VERSION": "2.0.0\n"})
        assert app_repo.shiplane("deploy", "dev").code == 0
        started = time.monotonic()
        rollback = app_repo.shiplane("rollback", "dev")
        assert rollback.code == 0, rollback.stdout
        assert time.monotonic() - started < 10  # the tries run in the background
        (message,) = _messages(received, 1)
        assert message["title"].endswith(": rollback")
        assert received.attempts == 3
        time.sleep(1)
        assert len(received.messages) == 1
    log = _server_log(app_repo)
    assert log.count("(will try again)") == 2 and TOKEN not in log


def test_notify_test_reports_each_url_and_fails_fast_on_a_dead_one(app_repo: AppRepo) -> None:
    dead = free_port()  # nobody listens here
    with receiver() as received:
        _configure(app_repo, [received.url("/t/${NOTIFY_TOKEN}")])
        ok = app_repo.shiplane("notify", "test", "dev")
        assert ok.code == 0, ok.stdout
        assert ok.data["urls"] == [
            {"url": f"json://127.0.0.1:{received.port}", "ok": True, "error": None}
        ]
        (message,) = _messages(received, 1)
        assert received.messages[0]["path"] == f"/t/{TOKEN}"
        assert "test" in message["title"]

        _configure(app_repo, [received.url("/t/${NOTIFY_TOKEN}"), f"json://127.0.0.1:{dead}/x"])
        started = time.monotonic()
        failed = app_repo.shiplane("notify", "test")
        took = time.monotonic() - started
        assert failed.code == 7, failed.stdout
        assert [u["ok"] for u in failed.data["urls"]] == [True, False]
        assert failed.data["urls"][1]["url"] == f"json://127.0.0.1:{dead}"
        assert f"json://127.0.0.1:{dead}" in failed.data["error"]["message"]
        print(f"\nnotify test with a dead port: {took:.2f}s (the whole CLI call)")
        assert took < 15, took  # refused at once: no long wait on a dead port
        for shown in (ok, failed):
            assert TOKEN not in shown.stdout + shown.stderr
        assert TOKEN not in _server_log(app_repo)


def test_an_unknown_event_is_a_config_error(app_repo: AppRepo) -> None:
    _configure(app_repo, ["json://127.0.0.1:9/x"], events=["deploy_failed", "deploy_exploded"])
    run = app_repo.shiplane("notify", "test")
    assert run.code == 64, run.stdout
    message = run.data["error"]["message"]
    assert "notify: events = 'deploy_exploded'" in message
    assert "rolled_back_after_watch" in message  # the allowed names are listed


def test_a_receiver_that_never_answers_does_not_slow_a_deploy(app_repo: AppRepo) -> None:
    with silent_receiver() as silent:
        url = f"json://127.0.0.1:{silent.port}/hung/${{NOTIFY_TOKEN}}"
        _configure(app_repo, [url], events=["deploy_succeeded"])
        run = app_repo.shiplane("deploy", "dev")
        ended = time.time()
        assert run.code == 0, run.stdout
        assert wait_for(lambda: silent.connected, timeout=10)
        # The message went out around the time the deploy returned (before or just after: it
        # is sent in the background), and the deploy did not wait for an answer that never
        # comes: had it waited, it would have returned READ_TIMEOUT (4 s) after the connection.
        gap = ended - silent.connected[0]
        print(f"\nhung receiver: the deploy returned {gap:.3f}s after the message left")
        assert gap < 1.0, gap
        # The failure is a warning in the server log, naming the URL without its token.
        warning = f"notify deploy_succeeded to json://127.0.0.1:{silent.port}"
        assert wait_for(lambda: warning in _server_log(app_repo), timeout=20)
        assert TOKEN not in _server_log(app_repo)
        assert app_repo.shiplane("status", "dev").data["envs"]["dev"]["healthy"] is True


def test_the_watchs_own_rollback_is_sent_once(app_repo: AppRepo) -> None:
    tiny_app(app_repo, watch=10)
    with receiver() as received:
        config = app_repo.path / "shiplane.toml"
        config.write_text(config.read_text() + f'\n[notify]\nurls = ["{received.url()}"]\n')
        app_repo.commit(
            "notify, and a version that crashes 3 s after the switch", {"CRASH_AFTER": "3"}
        )
        with reading(app_repo.url("dev", "/")):
            run = app_repo.shiplane("deploy", "dev", "--wait-watch")
        assert run.code == 4 and run.data["watch"]["state"] == "rolled_back", run.stdout
        (message,) = _messages(received, 1)
        assert message["title"].startswith("shiplane notes/dev")
        assert message["title"].endswith(": rolled_back_after_watch")
        assert "step watch:" in message["message"] and "crashed" in message["message"]
        assert run.data["deployment_id"] in message["message"]
        time.sleep(2)
        assert len(received.messages) == 1  # not the deploy's exit 4 as well


def test_a_watch_alert_is_sent_when_only_a_destructive_down_would_undo(app_repo: AppRepo) -> None:
    smoke_only(app_repo)
    with receiver() as received:
        config = app_repo.path / "shiplane.toml"
        config.write_text(
            config.read_text().replace("[deploy]\n", "[deploy]\nwatch = 15\n")
            + f'\n[notify]\nurls = ["{received.url()}"]\n'
        )
        assert app_repo.shiplane("deploy", "dev").code == 0
        run = deploy_renaming_v2_that_fails(app_repo)
        assert run.code == 5 and run.data["watch"]["state"] == "alert", run.stdout
        (message,) = _messages(received, 1)
        assert message["title"].endswith(": watch_alert")
        assert "not rolled back" in message["message"] and "rollback dev" in message["message"]
        time.sleep(2)
        assert len(received.messages) == 1
