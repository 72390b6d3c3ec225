"""Issue 14, output that never misleads: every command's --help reads right (no ``<bool>``
beside a flag) and accepts --json; what commands print follows the published schema
(`shiplane schema`), on success and on failure alike. Real CLI processes and a real server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import typer.main
from typer.testing import CliRunner

from shiplane.cli.main import app
from tests.support.app_repo import SHIPLANE, AppRepo


def _leaf_commands() -> list[tuple[str, ...]]:
    def walk(command: Any, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        if hasattr(command, "commands"):  # a group (typer vendors click: no isinstance)
            return [p for name, sub in command.commands.items() for p in walk(sub, (*path, name))]
        return [path]

    return walk(typer.main.get_command(app), ())


def test_every_command_has_help_without_bool_and_takes_json(tmp_path: Path) -> None:
    commands = _leaf_commands()
    assert ("deploy",) in commands and ("server", "status") in commands
    missing_json = []
    runner = CliRunner()
    for path in commands:  # in-process: forty interpreters would cost a minute on a busy CI
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0, (path, shown.output)
        assert "<bool>" not in shown.output, path
        assert "Usage:" in shown.output, path
        if "--json" not in shown.output:
            missing_json.append(" ".join(path))
    assert missing_json == []
    # The same help through a real process, for one command.
    real = subprocess.run(
        [*SHIPLANE, "deploy", "--help"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert real.returncode == 0 and "--force" in real.stdout and "<bool>" not in real.stdout


def _schema(cwd: Path) -> dict[str, object]:
    shown = subprocess.run(
        [*SHIPLANE, "schema", "--json"], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    schema = json.loads(shown.stdout)["schema"]
    jsonschema.Draft202012Validator.check_schema(schema)
    assert isinstance(schema, dict)
    return schema


def test_results_follow_the_published_schema(app_repo: AppRepo) -> None:
    schema = _schema(app_repo.path)
    validator = jsonschema.Draft202012Validator(schema)
    runs = [
        app_repo.shiplane("exit-codes"),
        app_repo.shiplane("deploy", "dev"),  # success, with steps
        app_repo.shiplane("status"),
        app_repo.shiplane("history", "dev"),
        app_repo.shiplane("deploy", "prod"),  # refused by the gate: exit 6
        app_repo.shiplane("deploy", "nosuchenv"),  # usage: exit 64
        app_repo.shiplane("server", "status"),
    ]
    codes = [run.code for run in runs]
    assert codes[:4] == [0, 0, 0, 0] and codes[4] == 6 and codes[5] == 64, codes
    for run in runs:
        errors = [e.message for e in validator.iter_errors(run.data)]
        assert errors == [], (run.data.get("command"), errors)
        assert run.data["exit_code"] == run.code
    # The schema can fail: a result that says ok with an error does not pass.
    broken = {**runs[1].data, "error": {"step": "x", "message": "y", "next_action": None}}
    assert list(validator.iter_errors(broken))


def test_repeating_a_deploy_or_promotion_is_a_no_op_unless_redeploy(app_repo: AppRepo) -> None:
    first = app_repo.shiplane("deploy", "dev")
    assert first.code == 0, first.stdout
    again = app_repo.shiplane("deploy", "dev")
    assert again.code == 0 and again.data["already_serving"] is True, again.stdout
    assert again.data["release"] == first.data["release"] and again.data["steps"] == []
    count = len(app_repo.shiplane("history", "dev").data["deployments"])
    assert count == 1
    # A changed config is a change: the new variable needs a new instance.
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace(
            'APP_MODE = "development"', 'APP_MODE = "development", GREETING = "hi"'
        )
    )
    changed = app_repo.shiplane("deploy", "dev")
    assert changed.code == 0 and not changed.data.get("already_serving"), changed.stdout
    forced = app_repo.shiplane("deploy", "dev", "--redeploy")
    assert forced.code == 0 and not forced.data.get("already_serving"), forced.stdout
    assert forced.data["release"] != changed.data["release"]
    assert len(app_repo.shiplane("history", "dev").data["deployments"]) == 3

    assert app_repo.shiplane("verify", "dev").code == 0
    promoted = app_repo.shiplane("promote", "prod")
    assert promoted.code == 0, promoted.stdout
    repeated = app_repo.shiplane("promote", "prod")
    assert repeated.code == 0 and repeated.data["already_serving"] is True, repeated.stdout
    # A refused deploy of a ref into a gated env names the road for that ref.
    refused = app_repo.shiplane("deploy", "prod", "--ref", "dev")
    assert refused.code == 6
    road = "shiplane deploy dev --ref dev && shiplane verify dev && shiplane promote prod"
    assert refused.data["error"]["next_action"] == road
