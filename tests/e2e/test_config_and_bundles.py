"""The config and the commits travel over the control socket: the server keeps its own copy of
the config and never reads the client's files; bundles are size-capped and fsck-checked."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.app_repo import SHIPLANE, AppRepo


def _post(app_repo: AppRepo, path: str, content: bytes) -> httpx.Response:
    token = (app_repo.home / "server.token").read_text()
    transport = httpx.HTTPTransport(uds=str(app_repo.home / "server.sock"))
    with httpx.Client(transport=transport, base_url="http://x", timeout=60) as client:
        return client.post(path, content=content, headers={"x-shiplane-token": token})


def _bundle_of(app_repo: AppRepo, sha: str, ref: str) -> bytes:
    """A bundle carrying ``sha`` as ``ref``, made in a scratch clone (the user's refs stay)."""
    scratch = app_repo.path.parent / "scratch.git"
    app_repo.git("clone", "-q", "--bare", str(app_repo.path), str(scratch))
    try:
        app_repo.git("--git-dir", str(scratch), "fetch", "-q", str(app_repo.path), sha)
        app_repo.git("--git-dir", str(scratch), "update-ref", ref, sha)
        out = app_repo.path.parent / "out.bundle"
        app_repo.git("--git-dir", str(scratch), "bundle", "create", "-q", str(out), ref)
        return out.read_bytes()
    finally:
        shutil.rmtree(scratch)


def test_bad_bundles_are_refused_and_leave_nothing(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    garbage = _post(app_repo, "/apps/notes/bundle", b"# v2 git bundle\nnot a bundle\n")
    assert garbage.status_code == 422 and "git bundle verify" in garbage.json()["error"]

    # A commit git itself would refuse: no email on the author line.
    tree = app_repo.git("rev-parse", "HEAD^{tree}")
    broken = app_repo.path.parent / "broken"
    broken.write_text(f"tree {tree}\nauthor x 1 +0000\ncommitter x <x> 1 +0000\n\nbad\n")
    sha = app_repo.git("hash-object", "-t", "commit", "--literally", "-w", str(broken))
    refused = _post(
        app_repo, "/apps/notes/bundle", _bundle_of(app_repo, sha, f"refs/shiplane/incoming/{sha}")
    )
    assert refused.status_code == 422, refused.text
    assert "fsck" in refused.json()["error"] and "missingEmail" in refused.json()["error"]
    missing = subprocess.run(
        ["git", "--git-dir", str(app_repo.server_repo), "cat-file", "-e", sha],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert missing.returncode != 0  # the quarantine was thrown away

    # A good commit under any other name than its incoming ref: refused too.
    app_repo.git("checkout", "-q", "dev")
    good = app_repo.commit("good", {"G.txt": "g\n"})
    renamed = _post(app_repo, "/apps/notes/bundle", _bundle_of(app_repo, good, "refs/heads/main"))
    assert renamed.status_code == 422 and "only refs/shiplane/incoming" in renamed.json()["error"]
    assert app_repo.shiplane("deploy", "dev").code == 0  # the server still takes good ones


def test_an_oversized_config_is_refused_before_it_travels(app_repo: AppRepo) -> None:
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace("auto_merge = true", 'auto_merge = true\nenv_file = ".env.dev"')
    )
    (app_repo.path / ".env.dev").write_text("PAD=" + "x" * 200_000 + "\n")
    run = app_repo.shiplane("status", "dev")
    assert run.code == 64, run.stdout
    assert "at most 131072 travel" in run.data["error"]["message"]
    assert "x" * 100 not in run.stdout + run.stderr  # the env file's text is never shown
    assert not (app_repo.home / "server.sock").exists()  # nothing reached (or started) a server


def test_the_server_uses_the_config_it_was_sent_not_the_clients_files(
    app_repo: AppRepo,
) -> None:
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace("auto_merge = true", 'auto_merge = true\nenv_file = ".env.dev"')
    )
    (app_repo.path / ".env.dev").write_text("NOTES_SECRET=s3cr3t-from-the-env-file\n")
    assert app_repo.shiplane("deploy", "dev").code == 0
    copy = app_repo.root / "config"
    assert (copy / "env" / "dev.env").read_text() == "NOTES_SECRET=s3cr3t-from-the-env-file\n"
    assert (copy / "env" / "dev.env").stat().st_mode & 0o777 == 0o600

    # A slow deploy; once it runs, the client's work tree goes away entirely.
    app_repo.git("checkout", "-q", "dev")
    new_sha = app_repo.commit("v2", {"VERSION": "2.0.0\n"})
    app_repo.slow_build(3)
    client = subprocess.Popen(
        [*SHIPLANE, "deploy", "dev", "--json"],
        cwd=app_repo.path,
        env=app_repo.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            latest = app_repo.shiplane("history", "dev", "--limit", "1").data["deployments"][0]
            if latest["status"] == "running":
                break
            time.sleep(0.1)
        moved = app_repo.path.parent / "moved-away"
        app_repo.path.rename(moved)
        out, _ = client.communicate(timeout=120)
    finally:
        if client.poll() is None:
            client.send_signal(signal.SIGKILL)
            client.wait(timeout=10)
    result = json.loads(out.decode().strip().splitlines()[-1])
    # The new instance started after the move, with the env file the server kept.
    assert result["ok"], result
    assert result["sha"] == new_sha
    assert "s3cr3t" not in out.decode()
    version = httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()
    assert version["sha"] == new_sha
    app_repo.path = moved  # for the fixture's teardown


def test_a_bad_config_sent_by_hand_names_the_users_path(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    text = (
        (app_repo.path / "shiplane.toml")
        .read_text()
        .replace(f"port = {app_repo.ports['dev']}", "port = 0")
    )
    body = {
        "caller": {"role": "person", "label": "person:x"},
        "args": {"env": "dev"},
        "config": {"path": "/home/someone/notes/shiplane.toml", "text": text, "files": {}},
    }
    response = _post(app_repo, "/ops/status", json.dumps(body).encode())
    result = json.loads(response.text.strip().splitlines()[-1])["result"]
    assert result["exit_code"] == 64
    assert result["error"]["message"].startswith(
        "/home/someone/notes/shiplane.toml: environments.dev.port = 0"
    )
    missing = {**body, "config": {**body["config"], "text": text.replace("port = 0", "port = 1")}}
    del missing["config"]["path"]
    response = _post(app_repo, "/ops/status", json.dumps(missing).encode())
    assert "malformed" in response.text
    assert not Path("/home/someone").exists()
