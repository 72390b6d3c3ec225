"""The redaction corpus: odd secrets (quotes, unicode, `%`, backslashes, a long value) in an
env file, deployed and verified through a real server, reach no output, report, deploy log,
server log or state row, in any of the forms an encoder gives them."""

from __future__ import annotations

import base64
import secrets
from urllib.parse import quote

import httpx

from shiplane.config.redact import encoded_forms
from tests.support.app_repo import AppRepo

FAILING_CHECK = """
[[verify.check]]
name = "corpus"
kind = "http"
group = "corpus"
path = "/api/notes"
contains = ["text-no-note-has"]
"""


def corpus() -> dict[str, str]:
    tag = secrets.token_hex(6)
    return {
        "QUOTED_SECRET": f"quo\"te's-{tag}",
        "UNICODE_SECRET": f"ünï-çødé-€-{tag}",
        "PERCENT_SECRET": f"100%-pure%20{tag}",
        "BACKSLASH_SECRET": f"back\\slash\\n-{tag}",
        "LONG_SECRET": f"long-{tag}-" + secrets.token_hex(200),
    }


def test_no_secret_in_any_output_report_log_or_state_row(app_repo: AppRepo) -> None:
    values = corpus()
    env_file = app_repo.path / ".env.dev"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace("auto_merge = true", 'auto_merge = true\nenv_file = ".env.dev"')
    )
    deployed = app_repo.shiplane("deploy", "dev")
    assert deployed.code == 0, deployed.stdout + deployed.stderr
    # The app hands them back in every form (its JSON escapes them), and a failing check
    # stores that response in its report.
    for value in values.values():
        for title in (value, quote(value, safe=""), base64.b64encode(value.encode()).decode()):
            created = httpx.post(app_repo.url("dev", "/api/notes"), json={"title": title})
            assert created.status_code == 201
    config.write_text(config.read_text() + FAILING_CHECK)
    verified = app_repo.shiplane("verify", "dev", "--only", "corpus")
    assert verified.code == 1, verified.stdout
    report_id = verified.data["verification"]["id"]
    runs = [
        deployed,
        verified,
        app_repo.shiplane("report", report_id),
        app_repo.shiplane("logs", deployed.data["deployment_id"]),
        app_repo.shiplane("status", "dev"),
        app_repo.shiplane("history", "dev"),
    ]
    assert "***" in verified.stdout  # the response was there, masked
    kept = app_repo.root / "config" / "env"
    app_data = [app_repo.root / "dev" / "shared", app_repo.root / "dev" / "backups"]
    files = [
        p
        for p in app_repo.home.rglob("*")
        if p.is_file() and kept not in p.parents and not any(d in p.parents for d in app_data)
    ]
    assert app_repo.root / "state.db" in files and app_repo.home / "host.db" in files
    assert app_repo.home / "server.log" in files
    for value in values.values():
        forms = encoded_forms(value)
        for run in runs:
            shown = [f for f in forms if f in run.stdout + run.stderr]
            assert shown == [], (run.stdout, shown)
        for path in files:
            data = path.read_bytes()
            assert [f for f in forms if f.encode() in data] == [], path
