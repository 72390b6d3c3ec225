"""[notify] validation, which results are events, the message and how a URL is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiplane.config import parse_config
from shiplane.config.notify import DEFAULT_EVENTS, EVENTS
from shiplane.config.redact import Redactor
from shiplane.errors import ConfigError
from shiplane.notify.events import event_for
from shiplane.notify.message import Notice, build, notice_from_result
from shiplane.notify.send import resolve, send_all, shown
from tests.unit.test_config import GOOD  # the minimal config, one copy


def test_notify_defaults_to_no_urls_and_the_events_that_need_attention(tmp_path: Path) -> None:
    notify = parse_config(GOOD, tmp_path / "shiplane.toml").notify
    assert notify.urls == []
    assert list(notify.events) == list(DEFAULT_EVENTS)
    assert "deploy_succeeded" not in notify.events and "deploy_failed" in notify.events
    assert set(DEFAULT_EVENTS) <= set(EVENTS)


def test_an_unknown_event_names_the_key_the_value_and_the_allowed_names(tmp_path: Path) -> None:
    text = GOOD + '[notify]\nurls = ["json://h/x"]\nevents = ["deploy_failed", "boom"]\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "shiplane.toml")
    message = caught.value.message
    assert "notify: events = 'boom' is not an event" in message
    assert all(name in message for name in EVENTS)


def test_a_url_that_is_not_one_names_its_scheme_only(tmp_path: Path) -> None:
    text = GOOD + '[notify]\nurls = ["hooks.example/s3cr3t-path"]\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "shiplane.toml")
    assert "not an apprise URL" in caught.value.message
    assert "s3cr3t-path" not in caught.value.message


@pytest.mark.parametrize(
    ("command", "result", "event"),
    [
        ("deploy", {"ok": False, "exit_code": 3, "error": {"step": "health"}}, "deploy_failed"),
        ("deploy", {"ok": False, "exit_code": 2, "error": {"step": "build"}}, "deploy_failed"),
        ("deploy", {"ok": False, "exit_code": 1, "error": {"step": "verify"}}, None),
        ("deploy", {"ok": False, "exit_code": 6, "error": {"step": "lock"}}, None),
        ("deploy", {"ok": True, "exit_code": 0}, "deploy_succeeded"),
        ("deploy", {"ok": True, "exit_code": 0, "already_serving": True}, None),
        ("promote", {"ok": False, "exit_code": 4, "error": {"step": "smoke"}}, "promote_failed"),
        (
            "promote",
            {"ok": False, "exit_code": 6, "error": {"step": "approval"}},
            "approval_needed",
        ),
        ("approve", {"ok": False, "exit_code": 3, "error": {"step": "switch"}}, "promote_failed"),
        ("deploy", {"ok": False, "exit_code": 4, "error": {"step": "watch"}}, None),
        ("rollback", {"ok": True, "exit_code": 0}, "rollback"),
        ("rollback", {"ok": False, "exit_code": 5, "error": {}}, "rollback_failed"),
        ("status", {"ok": False, "exit_code": 7, "error": {}}, None),
    ],
)
def test_which_results_are_events(command: str, result: dict, event: str | None) -> None:
    assert event_for(command, result) == event


def test_the_message_names_env_app_sha_step_error_and_next_action() -> None:
    result = {
        "env": "prod",
        "exit_code": 3,
        "deployment_id": "prod-1",
        "sha": "0123456789abcdef",
        "error": {"step": "migrate", "message": "no such table: notes", "next_action": None},
    }
    title, body = build(notice_from_result("deploy_failed", "shop", result), Redactor())
    assert title == "shiplane shop/prod 0123456: deploy_failed"
    assert "step migrate: no such table: notes" in body
    assert "next: shiplane logs prod-1" in body  # no next action of its own: the full story


def test_the_message_never_carries_a_secret() -> None:
    notice = Notice("deploy_failed", "shop", "dev", error="connect to postgresql://u:pw@h failed")
    notice = Notice(**{**notice.__dict__, "next_action": "check the token hunter2-secret"})
    _, body = build(notice, Redactor(["hunter2-secret"]))
    assert "hunter2-secret" not in body and ":pw@" not in body
    long = Notice("deploy_failed", "shop", "dev", step="build", error="x" * 5000)
    assert len(build(long, Redactor())[1]) < 1000


def test_a_url_is_named_by_scheme_and_host_only() -> None:
    redact = Redactor(["tok-secret-value"])
    assert shown("json://127.0.0.1:9000/hook/${TOKEN}", redact) == "json://127.0.0.1:9000"
    assert shown("tgram://tok-secret-value/12345", redact) == "tgram://***"
    assert shown("slack://user:pass@T1/B2/C3", redact) == "slack://T1"


def test_placeholders_come_from_the_env_file_and_a_missing_one_is_named() -> None:
    redact = Redactor()
    url = resolve("json://h/${TOKEN}", {"TOKEN": "abc"}, "dev", redact)
    assert url == "json://h/abc"
    with pytest.raises(ConfigError) as caught:
        resolve("json://h/${MISSING}", {}, "dev", redact)
    assert "env file of dev" in caught.value.message
    # send_all reports it as that URL's failure, the others still sent.
    (delivery,) = send_all(["json://h/${MISSING}"], {}, "dev", "t", "b", redact)
    assert not delivery.ok and delivery.url == "json://h"
