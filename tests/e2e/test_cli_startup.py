"""CLI startup: `--help`, `status` and `history` run without importing what they do not use
(database drivers, the verification machinery, the pipeline, migrations, encryption); the plain
`status` and `history` answer over the stdlib client (shiplane.cli.fast) without Typer,
Pydantic or httpx, with the JSON and exit code of the full (Typer) road. A real `python -c`
subprocess runs an entry point, then reports which modules it imported."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from typing import Any

import httpx

from tests.support.app_repo import AppRepo
from tests.support.faults import without_checks
from tests.support.wait import wait_for

# Runs the CLI as the `shiplane` console script would (ENTRY), then prints (last line) the
# loaded modules.
PROBE = """
import json, sys
from {entry} import run
sys.argv = ["shiplane", *sys.argv[1:]]
try:
    run()
except SystemExit as exc:
    print(json.dumps({{"exit": exc.code}}))
print(json.dumps(list(sys.modules)))
"""
FAST = "shiplane.cli.fast"  # the console entry point (pyproject, __main__)
FULL = "shiplane.cli.main"  # the Typer app alone: the road every other command takes

# Never for any of the three commands.
NEVER = (
    "psycopg",
    "alembic",
    "sqlalchemy",
    "pyrage",
    "jsonschema",
    "shiplane.verify",
    "shiplane.pipeline",
    "shiplane.migrate",
    "shiplane.backup",
    "shiplane.server",
    "shiplane.frontdoor",
)
# Not for `--help` either: it talks to no server and reads no config.
NOT_FOR_HELP = (*NEVER, "httpx", "pydantic", "shiplane.config.models", "shiplane.api")
# Not for a plain `status` or `history` against a live server: neither the Typer app nor the
# full client behind it.
NOT_FOR_FAST = (*NOT_FOR_HELP, "httpcore", "anyio", "typer", "click", "rich", "shiplane.cli.main")


def _run(
    args: list[str], cwd: str | None = None, env: dict | None = None, entry: str = FAST
) -> tuple[list[str], int, str]:
    """The modules the CLI loaded, its exit code, and what it printed before them."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(entry=entry), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    *printed, modules = proc.stdout.strip().splitlines()
    code = json.loads(printed.pop())["exit"] if printed and '"exit"' in printed[-1] else 0
    return list(json.loads(modules)), int(code or 0), "\n".join(printed)


def _loaded(
    args: list[str], cwd: str | None = None, env: dict | None = None
) -> tuple[list[str], str]:
    loaded, _code, printed = _run(args, cwd, env)
    return loaded, printed


def _offending(loaded: list[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == b or m.startswith(b + ".") for b in banned))


def _shape(value: Any) -> Any:
    """The keys of ``value`` at every depth (a list's items in order), without the values:
    what a status shows (ages, times, memory) changes between two calls."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return None


def test_help_imports_no_heavy_module() -> None:
    loaded, printed = _loaded(["--help"])
    assert "deploy" in printed and "rollback" in printed  # the help was shown
    assert _offending(loaded, NOT_FOR_HELP) == []


def test_status_and_history_answer_without_typer_pydantic_or_httpx(app_repo: AppRepo) -> None:
    """The stdlib road, with the full road's JSON (every key at every depth), its exit code
    and its error for a bad request; the files the config names travel as on the full road
    (the server keeps its copy of what arrives)."""
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace(
            'env = { APP_MODE = "development" }',
            'env = { APP_MODE = "development" }\nenv_file = "dev.env"',
        )
    )
    (app_repo.path / "dev.env").write_text("NOTES_SECRET=s3cret\n")
    assert app_repo.shiplane("deploy", "dev").code == 0
    kept = app_repo.root / "config" / "env" / "dev.env"
    cwd = str(app_repo.path)
    for args in (
        ["status", "dev", "--json"],
        ["status", "--json"],
        ["history", "--json"],
        ["history", "dev", "--limit", "1", "--json"],
        ["status", "nope", "--json"],  # refused by the server: the full road's words, exit 64
        ["history", "--json", "-c", str(config)],
    ):
        kept.unlink(missing_ok=True)
        fast_loaded, fast_code, fast_out = _run(args, cwd, app_repo.env)
        assert _offending(fast_loaded, NOT_FOR_FAST) == [], args
        fast = json.loads(fast_out)
        if fast["ok"]:  # sent, and kept again (a refused request writes nothing)
            assert kept.read_text() == "NOTES_SECRET=s3cret\n", args
        _, full_code, full_out = _run(args, cwd, app_repo.env, entry=FULL)
        full = json.loads(full_out)
        assert (fast_code, _shape(fast)) == (full_code, _shape(full)), args
        assert {k: fast[k] for k in ("ok", "command", "env", "error")} == {
            k: full[k] for k in ("ok", "command", "env", "error")
        }, args
        assert "s3cret" not in fast_out
    assert fast_code == 0 and fast["deployments"], fast
    _, refused_code, refused = _run(["status", "nope", "--json"], cwd, app_repo.env)
    assert refused_code == 64 and "'nope'" in json.loads(refused)["error"]["message"]


def test_a_dead_server_is_started_again(app_repo: AppRepo) -> None:
    """A server killed outright leaves its socket file: the stdlib road finds no one there and
    hands over to the full road, which starts a server; the next status is short again."""
    assert app_repo.shiplane("deploy", "dev").code == 0
    pid = int((app_repo.home / "server.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: _zombie(pid), timeout=10)
    assert (app_repo.home / "server.sock").exists()
    env, cwd = app_repo.env, str(app_repo.path)
    loaded, code, printed = _run(["status", "dev", "--json"], cwd, env)
    assert code == 0 and json.loads(printed)["ok"] is True, printed
    assert "shiplane.cli.main" in loaded  # the full road: it starts servers
    restarted = int((app_repo.home / "server.pid").read_text())
    assert restarted != pid
    loaded, code, printed = _run(["status", "dev", "--json"], cwd, env)
    assert code == 0 and json.loads(printed)["server"]["pid"] == restarted, printed
    assert _offending(loaded, NOT_FOR_FAST) == []


def test_a_stopped_server_is_exit_7_at_once(app_repo: AppRepo) -> None:
    """A stopped server accepts connections and answers nothing: the stdlib road does not
    wait on it; the full road says so (exit 7) and starts no second server."""
    assert app_repo.shiplane("status", "dev").code == 0  # starts the server
    pid = int((app_repo.home / "server.pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        _, code, printed = _run(["history", "--json"], str(app_repo.path), app_repo.env)
        assert code == 7, printed
        assert f"server not answering (pid {pid})" in json.loads(printed)["error"]["message"]
        assert time.monotonic() - started < 20
    finally:
        os.kill(pid, signal.SIGCONT)
    assert int((app_repo.home / "server.pid").read_text()) == pid


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_no_server_and_none_can_start_is_exit_7(app_repo: AppRepo) -> None:
    """No socket answers and the home's life lock is held (a server that lives but does not
    answer): the short road hands over, and the full road refuses to start a second server,
    exit 7, as before the short road existed."""
    app_repo.home.mkdir(parents=True, exist_ok=True)
    with open(app_repo.home / "server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for args in (["status", "dev", "--json"], ["history", "--json"]):
            loaded, code, printed = _run(args, str(app_repo.path), app_repo.env)
            assert code == 7, printed
            assert "server not answering" in json.loads(printed)["error"]["message"]
            assert "shiplane.cli.main" in loaded
    assert not (app_repo.home / "server.sock").exists()


def _two_releases(app_repo: AppRepo, **deploy: str) -> tuple[str, str]:
    """dev deployed twice (v1, then v2) without checks, ``deploy`` settings in [deploy]; the
    two shas."""
    without_checks(app_repo.path / "shiplane.toml")
    app_repo.git("checkout", "-q", "dev")  # both releases carry this config (from the commit)
    config = app_repo.path / "shiplane.toml"
    extra = "".join(f"{key} = {value}\n" for key, value in deploy.items())
    config.write_text(config.read_text().replace("[deploy]\n", "[deploy]\n" + extra, 1))
    app_repo.git("commit", "-qam", "config for this test", "--allow-empty")
    first = app_repo.shiplane("deploy", "dev")
    assert first.code == 0, first.stdout
    app_repo.commit("v2", {"VERSION": "2.0.0\n"})
    second = app_repo.shiplane("deploy", "dev")
    assert second.code == 0, second.stdout
    return str(first.data["sha"]), str(second.data["sha"])


def test_rollback_without_a_terminal_takes_the_short_road(app_repo: AppRepo) -> None:
    """An agent's `rollback` (no terminal) answers over the stdlib client with the full road's
    result and exit code, and moves refs/remotes/shiplane/dev as the full road does; a refused
    one says what the full road says."""
    v1, v2 = _two_releases(app_repo)
    env, cwd = app_repo.env, str(app_repo.path)
    assert app_repo.remote_branch("dev") == v2
    loaded, code, printed = _run(["rollback", "dev", "--json"], cwd, env)
    assert _offending(loaded, NOT_FOR_FAST) == []
    fast = json.loads(printed)
    assert (code, fast["ok"], fast["command"], fast["env"]) == (0, True, "rollback", "dev"), fast
    assert fast["sha"] == v1 and fast["standby"] is True
    branches = app_repo.git("--git-dir", str(app_repo.server_repo), "rev-parse", "refs/heads/dev")
    assert app_repo.remote_branch("dev") == branches  # fetched back, as on the full road
    # Forward again, and back on the full road: the same result, key for key.
    app_repo.commit("v3", {"VERSION": "3.0.0\n"})
    forward = app_repo.shiplane("deploy", "dev", "--include-rolled-back")
    assert forward.code == 0, forward.data["error"]
    _, full_code, full_out = _run(["rollback", "dev", "--json"], cwd, env, entry=FULL)
    full = json.loads(full_out)
    assert full_code == 0 and set(full) == set(fast), set(full) ^ set(fast)
    assert [s["name"] for s in full["steps"]] == [s["name"] for s in fast["steps"]]
    # Refused by the server (no such release): the full road's words and exit code.
    for entry in (FAST, FULL):
        loaded, code, printed = _run(["rollback", "dev", "--to", "nope", "--json"], cwd, env, entry)
        refused = json.loads(printed)
        assert (code, refused["ok"]) == (64, False), printed
        assert "nope" in refused["error"]["message"]
    assert "typer" in loaded  # the last one was the full road
    # A config outside any git repository: the refs cannot come back, which is a warning; the
    # rollback's result is printed all the same.
    outside = app_repo.path.parent / "elsewhere"
    outside.mkdir()
    (outside / "shiplane.toml").write_text((app_repo.path / "shiplane.toml").read_text())
    _, code, printed = _run(["rollback", "dev", "-c", str(outside / "shiplane.toml")], cwd, env)
    done = json.loads(printed)
    assert (code, done["ok"]) == (0, True), printed
    assert any("could not fetch the env branches back" in w for w in done["warnings"]), done


def test_a_rollback_the_server_took_is_never_sent_again(app_repo: AppRepo) -> None:
    """The server dies while it runs the rollback (SIGKILL): the short road reports the lost
    answer as the full road does (exit 7, recovery next) and does not hand the command to the
    full road, which would start a server and roll back a second time."""
    slow = 'sh -c "sleep 5; exec python -m gunicorn --bind 127.0.0.1:{port} --workers 1 app:app"'
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace(
            'run = "python -m gunicorn --bind 127.0.0.1:{port} --workers 2 --graceful-timeout'
            ' 10 app:app"',
            f"run = '{slow}'",
        )
    )
    _two_releases(app_repo, standby="false", watch="0")
    pid = int((app_repo.home / "server.pid").read_text())
    # v1 drained and stopped (no standby): the rollback starts it (5 s before it listens).
    assert wait_for(lambda: len(_instances(app_repo)) == 1, timeout=30)
    assert app_repo.shiplane("server", "status").data["envs"]["dev"]["standby"] is None
    # v1 starts (5 s before it listens) while the rollback is under way inside the server.
    lost = _killed_during(app_repo, pid, "rollback", 1)
    assert lost["error"]["message"].startswith(
        "the shiplane server stopped answering during rollback:"
    )
    assert lost["error"]["next_action"].startswith("run `shiplane status`")
    assert not (app_repo.home / "server.pid").exists() or (
        int((app_repo.home / "server.pid").read_text()) == pid
    )  # nobody started a server
    status = app_repo.shiplane("status", "dev")  # starts one, recovers what was left
    assert status.code == 0, status.stdout
    assert _count(app_repo, "rollback") == 1  # one rollback, ever


def _killed_during(app_repo: AppRepo, pid: int, command: str, nth: int) -> dict[str, Any]:
    """Run `command dev` on the short road; SIGKILL the server (``pid``) once state.db records
    the ``nth`` operation of that kind; the JSON it printed (exit 7), after checking it never
    handed the command to the full road."""
    client = subprocess.Popen(
        [sys.executable, "-c", PROBE.format(entry=FAST), command, "dev", "--json"],
        cwd=app_repo.path,
        env=app_repo.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: _count(app_repo, command) == nth, timeout=60)
        os.kill(pid, signal.SIGKILL)
        out, err = client.communicate(timeout=60)
    finally:
        client.kill()
    *printed, modules = out.strip().splitlines()
    assert "shiplane.cli.main" not in json.loads(modules), err  # never handed to the full road
    assert json.loads(printed[1])["exit"] == 7, printed[0]
    return dict(json.loads(printed[0]))


def _instances(app_repo: AppRepo) -> list[dict[str, Any]]:
    run = app_repo.shiplane("server", "status")
    assert run.code == 0, run.stdout
    return list(run.data["envs"]["dev"]["instances"])


def _count(app_repo: AppRepo, kind: str) -> int:
    """How many operations of ``kind`` state.db records (read directly: no server needed)."""
    if not (app_repo.root / "state.db").exists():
        return 0
    with sqlite3.connect(app_repo.root / "state.db") as db:
        row = db.execute("SELECT count(*) FROM deployments WHERE kind = ?", (kind,)).fetchone()
    return int(row[0])


def test_deploy_without_a_terminal_takes_the_short_road(app_repo: AppRepo) -> None:
    """An agent's `deploy` from a feature branch (dev has auto_merge): the stdlib client sends
    the commits and the request, the server merges and deploys, the env branch comes back into
    refs/remotes/shiplane/dev, and an uncommitted change is warned about, as on the full road.
    A gated environment is the full road's (and refused there)."""
    without_checks(app_repo.path / "shiplane.toml")
    env, cwd = app_repo.env, str(app_repo.path)
    # The first deploy starts the server, which makes its repository: the full road's.
    assert app_repo.shiplane("deploy", "dev").code == 0
    app_repo.git("checkout", "-q", "-b", "feature/x")
    feature = app_repo.commit("feature", {"FEATURE.txt": "x\n"})
    (app_repo.path / "VERSION").write_text("9.9.9\n")  # uncommitted: not deployed
    loaded, code, printed = _run(["deploy", "dev", "--json"], cwd, env)
    assert _offending(loaded, NOT_FOR_FAST) == []
    fast = json.loads(printed)
    assert (code, fast["ok"]) == (0, True), printed
    assert "the working tree has uncommitted changes: they were not deployed" in fast["warnings"]
    merged = app_repo.remote_branch("dev")
    assert merged == fast["sha"]  # the server's dev after the merge, fetched back
    assert app_repo.git("merge-base", "--is-ancestor", feature, merged) == ""
    served = httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"]
    assert served == merged
    # The full road, for the same kind of deploy: the same keys and steps.
    app_repo.commit("feature 2", {"FEATURE.txt": "y\n"})
    (app_repo.path / "VERSION").write_text("9.9.8\n")
    _, full_code, full_out = _run(["deploy", "dev", "--json"], cwd, env, entry=FULL)
    full = json.loads(full_out)
    assert full_code == 0 and set(full) == set(fast), set(full) ^ set(fast)
    assert full["warnings"] == fast["warnings"]
    assert [s["name"] for s in full["steps"]] == [s["name"] for s in fast["steps"]]
    # Gated: promotion is its road; the short road hands it over untouched.
    loaded, code, printed = _run(["deploy", "prod", "--json"], cwd, env)
    assert code == 6 and "typer" in loaded, printed
    assert "shiplane promote prod" in json.loads(printed)["error"]["next_action"]


def test_a_deploy_the_server_took_is_never_sent_again(app_repo: AppRepo) -> None:
    """The server dies during the deploy: exit 7 from the short road, and one deploy ever."""
    without_checks(app_repo.path / "shiplane.toml")
    assert app_repo.shiplane("deploy", "dev").code == 0  # the server and its repository
    app_repo.slow_build(20)
    app_repo.git("commit", "-qam", "a slow build")
    (app_repo.path / "VERSION").write_text("9.9.9\n")  # uncommitted: warned about, even now
    pid = int((app_repo.home / "server.pid").read_text())
    lost = _killed_during(app_repo, pid, "deploy", 2)
    assert lost["error"]["message"].startswith(
        "the shiplane server stopped answering during deploy"
    )
    assert lost["warnings"] == ["the working tree has uncommitted changes: they were not deployed"]
    assert app_repo.shiplane("status", "dev").code == 0  # a new server; recovery
    assert _count(app_repo, "deploy") == 2  # the first, and the killed one: never sent again


def test_an_agent_that_drops_promote_from_gets_no_short_road_into_prod(app_repo: AppRepo) -> None:
    """The short road reads "gated" from the raw TOML, which an agent controls: with
    `promote_from` deleted from the working tree, `deploy prod` from a feature branch goes the
    short way, and the server's pin refuses it (exit 6) before anything moves: prod's branch
    in the server's repository and what prod serves stay as they were."""
    without_checks(app_repo.path / "shiplane.toml")
    assert app_repo.shiplane("deploy", "dev").code == 0  # pins prod's protection
    assert app_repo.shiplane("verify", "dev").code == 0
    promoted = app_repo.shiplane("promote", "prod")
    assert promoted.code == 0, promoted.stdout
    branches = app_repo.git("--git-dir", str(app_repo.server_repo), "for-each-ref", "refs/heads")
    config = app_repo.path / "shiplane.toml"
    config.write_text(config.read_text().replace('promote_from = "dev"', ""))
    app_repo.git("checkout", "-q", "-b", "feature/sneak")
    app_repo.commit("sneak", {"VERSION": "6.6.6\n"})
    loaded, code, printed = _run(["deploy", "prod", "--json"], str(app_repo.path), app_repo.env)
    assert "shiplane.cli.main" not in loaded  # the short road took it: the server decides
    refused = json.loads(printed)
    assert code == 6 and refused["ok"] is False, printed
    assert "shiplane promote prod" in refused["error"]["next_action"]
    after = app_repo.git("--git-dir", str(app_repo.server_repo), "for-each-ref", "refs/heads")
    assert after == branches  # no env branch moved, main included
    served = httpx.get(app_repo.url("prod", "/_deploy/version"), timeout=5).json()
    assert served["sha"] == promoted.data["sha"]
