"""Verification on the real example app: every check kind passing, and failing for a real reason."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from shiplane.config.checks import VersionCheck
from shiplane.verify.http import run_version
from shiplane.verify.target import CheckFailed, Target
from tests.support.app_repo import AppRepo


def statuses(run_data: dict) -> dict[str, str]:
    return {r["name"]: r["status"] for r in run_data["verification"]["results"]}


def test_passing_suite_and_report(app_repo: AppRepo) -> None:
    deploy = app_repo.shiplane("deploy", "dev")
    assert deploy.code == 0, deploy.stdout
    run = app_repo.shiplane("verify", "dev")
    assert run.code == 0, run.stdout
    got = statuses(run.data)
    kinds = {r["kind"] for r in run.data["verification"]["results"] if r["status"] == "passed"}
    assert kinds == {"http", "openapi", "schema", "sql", "tests", "load", "version"}
    assert got["same api shape"] == "skipped"  # diff needs a candidate beside what serves
    again = app_repo.shiplane("report", run.data["verification"]["id"])
    assert again.code == 0 and again.data["verification"] == {
        **run.data["verification"],
        "age_s": again.data["verification"]["age_s"],
    }
    only = app_repo.shiplane("verify", "dev", "--only", "api")
    assert only.code == 0
    assert set(statuses(only.data)) == {"api lists notes", "every api route"}
    bad = app_repo.shiplane("verify", "dev", "--only", "nope")
    assert bad.code == 64 and "groups:" in bad.data["error"]["message"]


def test_wrong_sha_fails_version_check(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    target = Target(env="dev", base_url=app_repo.url("dev", ""), sha="0" * 40, phase="serving")
    with pytest.raises(CheckFailed, match="expected 0000000"):
        run_version(VersionCheck(kind="version", name="v"), target)


def test_failures_for_real_reasons(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    db = app_repo.root / "dev" / "shared" / "notes.db"
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO notes (title) VALUES ('')")  # violates "no untitled notes"
    conn.commit()
    conn.close()
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text()
        .replace(
            'tables = { notes = ["id", "title", "body", "tags"] }',
            'tables = { notes = ["id", "title", "body", "tags", "pinned"] }',
        )
        .replace("p95_ms = 2000", "p95_ms = 0.001")
    )
    run = app_repo.shiplane("verify", "dev")
    assert run.code == 1
    assert run.data["error"]["step"] == "verify"
    got = statuses(run.data)
    assert got["no untitled notes"] == "failed"
    assert got["schema and migrations"] == "failed"
    assert got["list under load"] == "failed"
    assert got["home page"] == "passed"
    results = {r["name"]: r for r in run.data["verification"]["results"]}
    assert "pinned" in results["schema and migrations"]["message"]
    assert "p95" in results["list under load"]["message"]


def test_broken_candidate_is_caught_before_any_traffic(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    before = httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"]
    app_repo.git("checkout", "-q", "dev")
    source = (app_repo.path / "app.py").read_text()
    broken = (
        source.replace(
            'return jsonify(version=VERSION, sha=os.environ.get("SHIPLANE_SHA"))',
            'raise RuntimeError("boom")',
        )  # a route that 500s
        .replace(
            "return jsonify(notes=[note_dict(r) for r in rows], version=VERSION)",
            "return jsonify(items=[note_dict(r) for r in rows])",
        )  # a shape change
        .replace('return jsonify(error="title is required"), 400', 'title = "untitled"')  # e2e
    )
    template = (app_repo.path / "templates" / "index.html").read_text()
    app_repo.commit(
        "broken",
        {
            "app.py": broken,
            "templates/index.html": template.replace(
                "</body>", "<pre>Traceback (most recent call last)</pre></body>"
            ),
        },
    )
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 1, run.stdout
    assert run.data["error"]["step"] == "verify"
    steps = {s["name"]: s["status"] for s in run.data["steps"]}
    assert "switch" not in steps  # nothing switched
    assert httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"] == before
    verification = app_repo.shiplane("report", _verification_id(run.data)).data["verification"]
    got = {r["name"]: r for r in verification["results"]}
    assert got["every api route"]["status"] == "failed"
    assert "500" in str(got["every api route"]["detail"])
    assert got["home page"]["status"] == "failed"
    assert "must not appear" in got["home page"]["message"]
    assert got["same api shape"]["status"] == "failed"
    assert "/api/notes" in got["same api shape"]["message"]
    assert got["e2e suite"]["status"] == "failed"
    assert got["api lists notes"]["status"] == "failed"  # $.notes is gone


def _verification_id(data: dict) -> str:
    import re

    match = re.search(r"shiplane report (v-\S+)`", data["error"]["next_action"])
    assert match, data["error"]
    return match.group(1)


def test_smoke_failure_after_switch_rolls_back_exit_4(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    before = httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"]
    app_repo.git("checkout", "-q", "dev")
    source = (app_repo.path / "app.py").read_text()
    # A bug only behind the proxy: the page breaks when X-Forwarded-Host is set.
    proxied_bug = source.replace(
        '@app.get("/")\ndef index():\n',
        '@app.get("/")\ndef index():\n    if request.headers.get("X-Forwarded-Host"):\n'
        '        raise RuntimeError("proxy bug")\n',
    )
    assert proxied_bug != source
    app_repo.commit("proxy bug", {"app.py": proxied_bug})
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 4, run.stdout
    assert run.data["error"]["step"] == "smoke"
    assert any("traffic back" in u for u in run.data["error"]["undone"])
    assert httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"] == before
    assert httpx.get(app_repo.url("dev", "/"), timeout=5).status_code == 200
