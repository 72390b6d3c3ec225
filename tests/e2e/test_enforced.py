"""Enforced mode with real OS users, a real supervisord and real sockets and git: the server runs
as its own user, and an agent (another OS user, in the clients' group, with an agent token)
cannot read or write what the server owns, push to its branches, signal it, or start a private
server of its own; prod stays as it was. Run alone with `pytest -m enforced`."""

from __future__ import annotations

import errno
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.app_repo import SHIPLANE, AppRepo, Run, make_repo, pids_under
from tests.support.enforced_host import EnforcedHost, enforced_host, run_root, shared_venv

pytestmark = pytest.mark.enforced


@dataclass
class Seeded:
    host: EnforcedHost
    admin_factor: str
    person_token: str
    agent_token: str
    prod_sha: str
    agent_repo: Path


@pytest.fixture(scope="module")
def venv_python() -> Iterator[Path]:
    with shared_venv() as python:
        yield python


@pytest.fixture(scope="module")
def seeded(venv_python: Path) -> Iterator[Seeded]:
    """An enforced host whose prod serves a promoted commit, with a person's and an agent's
    token. The admin seeds it as the server's own user (the one user who may push to the
    server's repository directly), then root mints the host's first token."""
    with enforced_host(venv_python) as host:
        admin_home = host.user_home(host.server_user)
        admin_home.mkdir(mode=0o700)
        os.chown(admin_home, *_ids(host.server_user))
        admin_repo = host.app_repo(host.server_user)
        # The first approver, enrolled by the server token's holder; an enforced host's gated
        # environment takes code only once a person has pinned its protection.
        factor = admin_home / "admin.passphrase"
        factor.write_text("admin passphrase " + secrets.token_hex(8))
        os.chown(factor, *_ids(host.server_user))
        as_admin = {
            "SHIPLANE_ACTOR": "person:admin",
            "SHIPLANE_FACTOR": factor.read_text(),
            "SHIPLANE_APPROVER": "admin",
        }
        for args in (
            ("approvers", "add", "admin", "--passphrase-file", str(factor)),
            ("deploy", "dev"),
            ("verify", "dev"),
            ("protect", "prod"),
            ("promote", "prod"),
        ):
            run = host.shiplane(host.server_user, *args, cwd=admin_repo, extra_env=as_admin)
            assert run.code == 0, f"{args}: {run.stdout}{run.stderr}\n{host.diagnostics()}"
        first = host.shiplane(
            "root", "tokens", "create", "--role", "person", "--label", "admin", cwd=admin_repo
        )
        assert first.code == 0, first.stdout + first.stderr
        agent = host.shiplane(
            host.person,
            "tokens", "create", "--role", "agent", "--label", "bot",
            cwd=admin_repo,
            extra_env={"SHIPLANE_TOKEN": first.data["token"]},
        )  # fmt: skip
        assert agent.code == 0, agent.stdout + agent.stderr
        yield Seeded(
            host,
            factor.read_text(),
            first.data["token"],
            agent.data["token"],
            _server_branch(host, "main"),
            host.app_repo(host.agent, clone=admin_repo),
        )


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def _server_repo(host: EnforcedHost) -> Path:
    return host.home / "apps" / host.app / "repo.git"


def _server_branch(host: EnforcedHost, branch: str) -> str:
    return run_root("git", "--git-dir", str(_server_repo(host)), "rev-parse", branch).stdout.strip()


def _assert_prod_unchanged(seeded: Seeded) -> None:
    host = seeded.host
    assert _server_branch(host, "main") == seeded.prod_sha
    status = host.shiplane(
        host.person,
        "status",
        "prod",
        cwd=seeded.agent_repo,
        extra_env={"SHIPLANE_TOKEN": seeded.person_token},
    )
    assert status.code == 0, status.stdout + status.stderr
    prod = status.data["envs"]["prod"]
    assert (prod["sha"], prod["serving_sha"], prod["healthy"]) == (seeded.prod_sha,) * 2 + (True,)


def _as_agent_python(seeded: Seeded, code: str) -> dict[str, object]:
    """Run ``code`` as the agent; it prints one JSON object."""
    done = seeded.host.python_as(seeded.host.agent, code)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _server_files(host: EnforcedHost) -> list[Path]:
    app = host.home / "apps" / host.app
    backups = sorted((app / "prod" / "backups").rglob("*.gz"))
    assert backups, "prod's promotion took a backup"
    return [
        app / "state.db",
        host.home / "host.db",
        host.home / "server.token",
        backups[0],
        app / "prod" / "shared" / "notes.db",
        _server_repo(host) / "config",
    ]


def test_the_agent_cannot_read_what_the_server_owns(seeded: Seeded) -> None:
    paths = [str(p) for p in _server_files(seeded.host)]
    for path in paths:
        assert Path(path).exists(), path  # they exist: the refusals below are about access
    outcome = _as_agent_python(
        seeded,
        f"""
import json, os
out = {{}}
for path in {paths!r}:
    try:
        open(path, "rb").read(1)
        out[path] = "read"
    except OSError as exc:
        out[path] = exc.errno
try:
    os.listdir({str(seeded.host.home)!r})
    out["listdir"] = "listed"
except OSError as exc:
    out["listdir"] = exc.errno
print(json.dumps(out))
""",
    )
    assert outcome == {**dict.fromkeys(paths, errno.EACCES), "listdir": errno.EACCES}
    _assert_prod_unchanged(seeded)


def test_the_agent_cannot_edit_the_pinned_protection(seeded: Seeded) -> None:
    state_db = seeded.host.home / "apps" / seeded.host.app / "state.db"
    outcome = _as_agent_python(
        seeded,
        f"""
import json, sqlite3
try:
    db = sqlite3.connect({str(state_db)!r})
    db.execute("DELETE FROM deployments")
    db.commit()
    print(json.dumps({{"wrote": True}}))
except sqlite3.Error as exc:
    print(json.dumps({{"error": str(exc)}}))
""",
    )
    assert outcome == {"error": "unable to open database file"}
    _assert_prod_unchanged(seeded)


def test_the_agent_cannot_push_to_the_servers_branches(seeded: Seeded) -> None:
    host, repo = seeded.host, seeded.agent_repo
    (repo / "PWNED").write_text("prod is mine\n")
    for argv in (("add", "PWNED"), ("commit", "-qm", "pwn")):
        done = host.as_user(host.agent, "git", *argv, cwd=repo)
        assert done.returncode == 0, done.stderr
    before = {branch: _server_branch(host, branch) for branch in ("main", "dev")}
    for branch in ("main", "dev"):
        push = host.as_user(
            host.agent, "git", "push", "--force", str(_server_repo(host)),
            f"HEAD:refs/heads/{branch}", cwd=repo,
        )  # fmt: skip
        assert push.returncode != 0
        assert "Permission denied" in push.stderr or "not appear to be a git" in push.stderr, (
            push.stderr
        )
    assert {branch: _server_branch(host, branch) for branch in ("main", "dev")} == before
    _assert_prod_unchanged(seeded)


def test_the_agent_cannot_signal_the_server(seeded: Seeded) -> None:
    pid = seeded.host.server_pid()
    assert pid is not None
    outcome = _as_agent_python(
        seeded,
        f"""
import json, os, signal
out = {{}}
for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP):
    try:
        os.kill({pid}, sig)
        out[sig.name] = "sent"
    except OSError as exc:
        out[sig.name] = exc.errno
print(json.dumps(out))
""",
    )
    assert outcome == dict.fromkeys(("SIGTERM", "SIGKILL", "SIGSTOP"), errno.EPERM)
    assert seeded.host.server_pid() == pid
    _assert_prod_unchanged(seeded)


def test_the_agent_cannot_stop_the_server_through_shiplane(seeded: Seeded) -> None:
    stop = seeded.host.shiplane(
        seeded.host.agent,
        "server",
        "stop",
        cwd=seeded.agent_repo,
        extra_env={"SHIPLANE_TOKEN": seeded.agent_token},
    )
    assert stop.code == 6, stop.stdout + stop.stderr
    assert "supervisorctl" in stop.data["error"]["next_action"]
    _assert_prod_unchanged(seeded)


def test_the_agent_works_through_the_socket_with_its_token(seeded: Seeded) -> None:
    host = seeded.host
    # The token kept in the agent's own config file (0600), as `tokens use` stores it.
    used = host.shiplane(host.agent, "tokens", "use", seeded.agent_token)
    assert used.code == 0, used.stdout + used.stderr
    token_file = Path(used.data["path"])
    assert token_file.stat().st_mode & 0o777 == 0o600
    status = host.shiplane(host.agent, "status", cwd=seeded.agent_repo)
    assert status.code == 0, status.stdout + status.stderr
    assert (status.data["mode"], status.data["server_user"]) == ("enforced", host.server_user)
    assert status.data["protection"] == "enforced"
    server = host.shiplane(host.agent, "server", "status", cwd=seeded.agent_repo)
    assert server.code == 0, server.stdout + server.stderr
    assert (server.data["mode"], server.data["server_user"]) == ("enforced", host.server_user)
    # The gate and the role rules hold for it: prod is a person's.
    refused = host.shiplane(host.agent, "deploy", "prod", cwd=seeded.agent_repo)
    assert refused.code == 6, refused.stdout + refused.stderr
    assert refused.data["protection"] == "enforced"
    backup = host.shiplane(host.agent, "backup", "prod", cwd=seeded.agent_repo)
    assert backup.code == 6 and backup.data["error"]["step"] == "policy", backup.stdout
    _assert_prod_unchanged(seeded)


def test_the_agent_deploys_dev_by_sending_a_bundle(seeded: Seeded) -> None:
    """It cannot push to the server's repository: the CLI sends its commit as a git bundle
    over the socket, and fetches the env branches back the same way."""
    host, repo = seeded.host, seeded.agent_repo
    for argv in (
        ("checkout", "-q", "-b", "feature/hello"),
        ("commit", "-q", "--allow-empty", "-m", "hello from the agent"),
    ):
        done = host.as_user(host.agent, "git", *argv, cwd=repo)
        assert done.returncode == 0, done.stderr
    sha = host.as_user(host.agent, "git", "rev-parse", "HEAD", cwd=repo).stdout.strip()
    deployed = host.shiplane(
        host.agent, "deploy", "dev", cwd=repo, extra_env={"SHIPLANE_TOKEN": seeded.agent_token}
    )
    assert deployed.code == 0, deployed.stdout + deployed.stderr
    assert "protection" not in deployed.data  # not gated: nothing for the rules to decide
    dev = _server_branch(host, "dev")
    merged = host.as_user(host.agent, "git", "merge-base", "--is-ancestor", sha, dev, cwd=repo)
    assert merged.returncode == 0, merged.stderr  # dev took the agent's commit...
    fetched = host.as_user(host.agent, "git", "rev-parse", "refs/remotes/shiplane/dev", cwd=repo)
    assert fetched.stdout.strip() == dev  # ...and came back into the agent's repository
    assert "warnings" not in deployed.data, deployed.data.get("warnings")
    _assert_prod_unchanged(seeded)


def test_install_again_changes_nothing_and_needs_root(seeded: Seeded) -> None:
    host = seeded.host
    again = host.install()
    assert again.code == 0, again.stdout + again.stderr
    assert again.data["changed"] == [], again.data
    as_agent = host.shiplane(host.agent, "server", "install", "--user", "x", "--etc", "/tmp/no")
    assert as_agent.code == 6, as_agent.stdout + as_agent.stderr
    assert "root" in as_agent.data["error"]["message"]
    marker = host.etc / "shiplane" / "enforced"
    assert marker.stat().st_mode & 0o777 == 0o644
    program = (host.supervisor / "conf.d" / "shiplane.conf").read_text()
    assert "server --foreground --enforced" in program
    assert f'SHIPLANE_ETC="{host.etc}"' in program
    unit = (host.base / "systemd" / "shiplane.service").read_text()
    assert "ExecStart=" + str(host.python) + " -m shiplane server --foreground --enforced" in unit
    assert again.data["systemd_unit"] == str(host.base / "systemd" / "shiplane.service")
    expected = "ok" if shutil.which("systemd-analyze") else "skipped: systemd-analyze not found"
    assert again.data["systemd_check"] == expected, again.data
    assert not Path("/tmp/no").exists()


def test_supervisor_brings_a_killed_server_back_and_prod_serves_again(seeded: Seeded) -> None:
    """The server under the program `server install` wrote, SIGKILLed (nothing of it runs its
    shutdown): supervisor starts it again, and it restores what served."""
    host = seeded.host
    port = tomllib.loads((seeded.agent_repo / "shiplane.toml").read_text())["environments"]["prod"][
        "port"
    ]
    old = host.server_pid()
    assert old is not None
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 120
    served: object = None
    while time.monotonic() < deadline:
        if host.server_pid() not in (None, old):
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/_deploy/version", timeout=2)
                served = answer.json().get("sha") if answer.status_code == 200 else answer
            except httpx.HTTPError as exc:
                served = exc
            if served == seeded.prod_sha:
                break
        time.sleep(0.3)
    assert served == seeded.prod_sha, f"{served!r}\n{host.diagnostics()}"
    # supervisor saw the kill and counts the new server running once it lived startsecs (2 s).
    assert "terminated by SIGKILL" in (host.supervisor / "supervisord.log").read_text()
    deadline = time.monotonic() + 30
    while "RUNNING" not in host.supervisorctl("status", "shiplane").stdout:
        assert time.monotonic() < deadline, host.supervisorctl("status", "shiplane").stdout
        time.sleep(0.3)
    _assert_prod_unchanged(seeded)


def test_the_marker_stops_a_client_from_starting_a_private_server(tmp_path: Path) -> None:
    """No users needed: the marker alone makes the client report the server missing (exit 7)
    instead of starting one as itself; nothing is created, nothing runs."""
    etc, home = tmp_path / "etc", tmp_path / "srv"
    (etc / "shiplane").mkdir(parents=True)
    (etc / "shiplane" / "enforced").write_text(
        f'home = "{home}"\nsocket = "{tmp_path / "run" / "server.sock"}"\n'
        'user = "nobody"\ngroup = "nogroup"\napps_group = "nogroup"\n'
    )
    app = make_repo(tmp_path)
    env = {**app.env, "SHIPLANE_ETC": str(etc)}
    for args in (("status",), ("deploy", "dev"), ("tokens", "list"), ("server",)):
        done = subprocess.run(
            [*SHIPLANE, *args, "--json"],
            cwd=app.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        data = json.loads(done.stdout.strip().splitlines()[-1])
        assert done.returncode == 7, done.stdout + done.stderr
        assert "supervisorctl start shiplane" in data["error"]["next_action"], data
    # Not in the foreground either (what a root shell or a confused agent would try).
    foreground = subprocess.run(
        [*SHIPLANE, "server", "--foreground", "--root", str(app.home)],
        cwd=app.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert foreground.returncode == 6, foreground.stdout + foreground.stderr
    assert "supervisorctl" in json.loads(foreground.stdout)["error"]["next_action"]
    # The marker wins over SHIPLANE_HOME too: neither home was created, no server runs.
    assert not home.exists() and not app.home.exists()
    assert not (tmp_path / "run").exists()
    assert pids_under(tmp_path) == []


def test_single_user_mode_says_its_protection_is_advisory(app_repo: AppRepo) -> None:
    """No marker: the gate still refuses, and says how much that refusal is worth."""
    status = app_repo.shiplane("status")
    assert status.code == 0, status.stdout
    assert status.data["mode"] == "single-user"
    assert status.data["server_user"] == "root"
    assert status.data["protection"] == "advisory"
    refused = app_repo.shiplane("deploy", "prod")  # refused by the client's check of the gate
    assert refused.code == 6, refused.stdout
    assert refused.data["protection"] == "advisory"
    assert "same OS user" in refused.data["protection_reason"]
    tokens = app_repo.shiplane("tokens", "create", "--role", "person")  # refused in the server
    assert tokens.code == 0 and tokens.data["protection"] == "advisory", tokens.stdout
    as_agent = {"SHIPLANE_TOKEN": tokens.data["token"], "SHIPLANE_ACTOR": "agent:x"}
    forced = app_repo.shiplane("deploy", "prod", "--force", extra_env=as_agent)
    assert forced.code == 6 and forced.data["protection"] == "advisory", forced.stdout
    dev = app_repo.shiplane("deploy", "dev", extra_env=as_agent)
    assert dev.code == 0 and "protection" not in dev.data, dev.stdout


def test_a_dev_build_cannot_read_the_state_or_prods_data(seeded: Seeded) -> None:
    """What a dev commit runs (its build) runs as dev's own OS user: state.db, the server's
    copy of the config (env files: secrets), prod's database and prod's release are EACCES.
    The build succeeds only if every read is refused, so a leak fails the deploy."""
    host, repo = seeded.host, seeded.agent_repo
    app = host.home / "apps" / host.app
    prod_release = next((app / "prod" / "releases").iterdir())
    secrets = [
        app / "state.db",
        app / "config" / "shiplane.toml",
        app / "prod" / "shared" / "notes.db",
        prod_release / "app.py",
    ]
    script = (
        f"for f in {' '.join(str(p) for p in secrets)}; do "
        'if cat "$f" > /dev/null 2> err.txt; then echo "read $f"; exit 1; fi; '
        'grep -q "Permission denied" err.txt || { cat err.txt; exit 1; }; done; '
        "echo every-read-refused"
    )
    config = repo / "shiplane.toml"
    text = host.as_user(host.agent, "cat", str(config)).stdout
    build_line = next(line for line in text.splitlines() if line.startswith("build = ["))
    snoop = build_line.replace("build = [", f"build = [{json.dumps(f'sh -c {script!r}')}, ", 1)
    host.as_user(host.agent, "git", "checkout", "-q", "-b", "feature/snoop", cwd=repo)
    python = (
        "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
        "p.write_text(p.read_text().replace(sys.argv[2], sys.argv[3], 1))"
    )
    edited = host.as_user(
        host.agent, str(host.python), "-c", python, str(config), build_line, snoop
    )
    assert edited.returncode == 0, edited.stderr
    committed = host.as_user(host.agent, "git", "commit", "-qam", "snoop on prod", cwd=repo)
    assert committed.returncode == 0, committed.stderr
    deployed = host.shiplane(
        host.agent, "deploy", "dev", cwd=repo, extra_env={"SHIPLANE_TOKEN": seeded.agent_token}
    )
    assert deployed.code == 0, deployed.stdout + deployed.stderr
    # The build did run the reads (its output is in the deployment's log, the server's).
    assert "every-read-refused" in Path(deployed.data["log"]).read_text()
    _assert_prod_unchanged(seeded)


def test_the_gate_holds_against_the_agent_and_opens_for_the_persons_factor(
    seeded: Seeded,
) -> None:
    """Issue 13 on an enforced host: each of the agent's ways round the gate is exit 6 and in
    history, prod unchanged; the person (another OS user, a person token, the factor) passes.
    A TOTP code is good once."""
    host, repo = seeded.host, seeded.agent_repo
    agent = {"SHIPLANE_TOKEN": seeded.agent_token, "SHIPLANE_ACTOR": "agent:bot"}
    person = {
        "SHIPLANE_TOKEN": seeded.person_token,
        "SHIPLANE_FACTOR": seeded.admin_factor,
        "SHIPLANE_APPROVER": "admin",
    }
    config = repo / "shiplane.toml"
    good = config.read_text()

    def as_agent(*args: str) -> Run:
        return host.shiplane(host.agent, *args, cwd=repo, extra_env=agent)

    for argv in (("checkout", "-q", "-B", "feature/gate"),
                 ("commit", "-q", "--allow-empty", "-m", "unverified")):  # fmt: skip
        assert host.as_user(host.agent, "git", *argv, cwd=repo).returncode == 0
    assert as_agent("deploy", "dev").code == 0
    config.write_text(good.replace('promote_from = "dev"\n', ""))
    dropped = as_agent("deploy", "prod", "--ref", "HEAD")
    assert dropped.code == 6 and dropped.data["protection"] == "enforced", dropped.stdout
    config.write_text(good)
    faked = host.as_user(
        host.agent, "script", "-qec",
        shlex.join([str(host.python), "-m", "shiplane", "deploy", "prod", "--force", "--json"]),
        "/dev/null", cwd=repo, extra_env=agent,
    )  # fmt: skip
    assert faked.returncode == 6, faked.stdout + faked.stderr
    assert as_agent("promote", "prod", "--approve").code == 6
    assert as_agent("verify", "dev").code == 0
    tight = good.replace('promote_from = "dev"', 'promote_from = "dev"\nrequires_approval = true')
    config.write_text(tight)  # a tightening applies at once
    pending = as_agent("promote", "prod")
    assert pending.code == 6 and pending.data["error"]["step"] == "approval", pending.stdout
    promotion = pending.data["promotion"]["id"]
    config.write_text(good)  # now a loosening of the pin
    loosened = as_agent("promote", "prod")
    assert loosened.code == 6 and "requires_approval" in loosened.data["error"]["message"]
    config.write_text(tight)
    assert as_agent("approve", promotion).code == 6
    # The person's token is bound to the person's OS user: no use to the agent.
    borrowed = host.shiplane(host.agent, "approve", promotion, cwd=repo, extra_env=person)
    assert borrowed.code == 6 and borrowed.data["error"]["step"] == "auth", borrowed.stdout
    _assert_prod_unchanged(seeded)
    history = host.shiplane(host.person, "history", "prod", cwd=repo, extra_env=person)
    refused = {e["command"] for e in history.data["gate_events"]
               if e["outcome"] == "refused" and e["actor"] == "agent:bot"}  # fmt: skip
    assert refused >= {"deploy", "promote", "approve"}, history.data["gate_events"]

    approved = host.shiplane(host.person, "approve", promotion, cwd=repo, extra_env=person)
    assert approved.code == 0, approved.stdout + approved.stderr
    assert approved.data["promotion"]["decided_by"] == "person:admin"
    assert approved.data["promotion"]["requested_by"] == "agent:bot"

    # TOTP: enrolled by an approver (root here, with the admin's passphrase), good once.
    totp = host.shiplane(
        "root", "approvers", "add", "admin", "--totp", cwd=repo,
        extra_env={"SHIPLANE_FACTOR": seeded.admin_factor, "SHIPLANE_APPROVER": "admin"},
    )  # fmt: skip
    assert totp.code == 0, totp.stdout + totp.stderr
    import pyotp

    code = pyotp.parse_uri(totp.data["totp_uri"]).now()
    with_code = {**person, "SHIPLANE_FACTOR": code}
    first = host.shiplane(host.person, "protect", "prod", "--totp", cwd=repo, extra_env=with_code)
    assert first.code == 0, first.stdout + first.stderr
    again = host.shiplane(host.person, "protect", "prod", "--totp", cwd=repo, extra_env=with_code)
    assert again.code == 6 and again.data["error"]["step"] == "factor", again.stdout
