"""Security: secrets never leave the env file; private files are 0600; the status endpoints
refuse a client on another host (a real network namespace) without the token."""

from __future__ import annotations

import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app_repo import AppRepo


def test_secrets_stay_secret_through_a_full_run(app_repo: AppRepo) -> None:
    dev_secret, prod_secret = f"dev-{secrets.token_hex(12)}", f"prod-{secrets.token_hex(12)}"
    (app_repo.path / ".env.dev").write_text(f"API_TOKEN={dev_secret}\n")
    (app_repo.path / ".env.prod").write_text(f"API_TOKEN={prod_secret}\n")
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text()
        .replace("auto_merge = true", 'auto_merge = true\nenv_file = ".env.dev"')
        .replace('promote_from = "dev"', 'promote_from = "dev"\nenv_file = ".env.prod"')
    )
    runs = [
        app_repo.shiplane("deploy", "dev"),
        app_repo.shiplane("verify", "dev"),
        app_repo.shiplane("promote", "prod"),
        app_repo.shiplane("backup", "prod"),
        app_repo.shiplane("status"),
        app_repo.shiplane("history"),
    ]
    assert [r.code for r in runs] == [0] * len(runs), [r.stdout for r in runs if r.code]
    runs.append(app_repo.shiplane("logs", runs[2].data["deployment_id"]))
    for run in runs:
        for secret in (dev_secret, prod_secret):
            assert secret not in run.stdout + run.stderr
    # The server's own copies of the env files it was sent (0600, in a 0700 dir) are what it
    # reads when an instance starts; nothing else may hold a secret.
    kept = app_repo.root / "config" / "env"
    assert kept.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in kept.glob("*.env"))
    everything = [p for p in app_repo.home.rglob("*") if p.is_file() and p.parent != kept]
    leaked = [
        p for p in everything for s in (dev_secret, prod_secret) if s.encode() in p.read_bytes()
    ]
    assert leaked == []
    private = [
        app_repo.root / "state.db",
        app_repo.home / "server.token",
        *(app_repo.root / "prod" / "backups").rglob("*"),
        *(app_repo.root / "prod" / "logs").glob("*.log"),
    ]
    for path in private:
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(app_repo.root.stat().st_mode) == 0o700


@pytest.fixture
def other_host() -> Iterator[tuple[str, str]]:
    """A network namespace joined by a veth pair: (our address, the other host's namespace)."""
    suffix = secrets.token_hex(2)
    ns, here, there = f"shp{suffix}", f"shpa{suffix}", f"shpb{suffix}"
    block = int(suffix, 16) % 60 * 4 + 8  # a /30 inside 10.231.200.0/24
    ours, theirs = f"10.231.200.{block + 1}", f"10.231.200.{block + 2}"
    commands = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", here, "type", "veth", "peer", "name", there],
        ["ip", "link", "set", there, "netns", ns],
        ["ip", "addr", "add", f"{ours}/30", "dev", here],
        ["ip", "link", "set", here, "up"],
        ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{theirs}/30", "dev", there],
        ["ip", "netns", "exec", ns, "ip", "link", "set", there, "up"],
    ]
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True, timeout=30)
        yield ours, ns
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def from_other_host(ns: str, url: str, token: str | None = None) -> int:
    headers = {"x-shiplane-token": token} if token else {}
    code = f"import httpx; print(httpx.get({url!r}, headers={headers!r}, timeout=10).status_code)"
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(proc.stdout.strip())


def test_status_endpoints_need_the_token_off_loopback(
    app_repo: AppRepo, other_host: tuple[str, str]
) -> None:
    # The front door listens on loopback unless the config exposes it, explicitly.
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace("auto_merge = true", 'auto_merge = true\nlisten = "0.0.0.0"')
    )
    assert app_repo.shiplane("deploy", "dev").code == 0
    address, ns = other_host
    base = f"http://{address}:{app_repo.ports['dev']}"
    token = Path(app_repo.home / "server.token").read_text()
    assert from_other_host(ns, f"{base}/_deploy/version") == 200  # public
    assert from_other_host(ns, f"{base}/_deploy/health") == 200  # public
    assert from_other_host(ns, f"{base}/_deploy/status") == 401
    assert from_other_host(ns, f"{base}/_deploy/migrations") == 401
    assert from_other_host(ns, f"{base}/_deploy/status", token="wrong") == 401
    assert from_other_host(ns, f"{base}/_deploy/status", token=token) == 200
    assert from_other_host(ns, f"{base}/api/notes") == 200  # the app itself is served
