"""A real demo: copy examples/notes into a fresh git repo, deploy it to dev, verify it, promote
it to prod, then deploy and roll back a change.

Every step calls the `shiplane` CLI exactly as an agent would and prints its JSON verdict.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPLANE = str(Path(sys.executable).parent / "shiplane")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sh(repo: Path, *args: str) -> None:
    subprocess.run(args, cwd=repo, check=True, capture_output=True)


def shiplane(repo: Path, env: dict[str, str], *args: str) -> dict:
    proc = subprocess.run(
        [SHIPLANE, *args, "--json"], cwd=repo, env=env, capture_output=True, text=True, timeout=300
    )
    result = json.loads(proc.stdout)
    steps = ", ".join(f"{s['name']} {s['duration_ms']}ms" for s in result["steps"])
    verdict = "ok" if result["ok"] else f"FAILED: {result['error']}"
    print(f"$ shiplane {' '.join(args)}  -> exit {proc.returncode}, {verdict}")
    if steps:
        print(f"    {steps}")
    for step in result["steps"]:
        if step["name"] == "start" and step.get("detail"):
            print(f"    new instance on {step['detail']}")
    if "verification" in result:
        for check in result["verification"]["results"]:
            print(f"    {check['status']:8} {check['name']} ({check['kind']}): {check['message']}")
    if proc.returncode != 0:
        raise SystemExit(proc.returncode)
    return result


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def main() -> None:
    import os

    work = Path(tempfile.mkdtemp(prefix="shiplane-demo-"))
    repo = work / "notes"
    shutil.copytree(ROOT / "examples" / "notes", repo)
    dev_port, prod_port = free_port(), free_port()
    config = repo / "shiplane.toml"
    config.write_text(
        config.read_text()
        .replace("port = 8001", f"port = {dev_port}")
        .replace("port = 8000", f"port = {prod_port}")
    )
    env = {
        **os.environ,
        "SHIPLANE_HOME": str(work / "home"),
        "GIT_AUTHOR_NAME": "demo",
        "GIT_AUTHOR_EMAIL": "demo@example.com",
        "GIT_COMMITTER_NAME": "demo",
        "GIT_COMMITTER_EMAIL": "demo@example.com",
    }
    git = ["git", "-c", "user.name=demo", "-c", "user.email=demo@example.com"]
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "add", "-A")
    sh(repo, *git, "commit", "-qm", "notes 1.0.0")
    sh(repo, "git", "checkout", "-qb", "feature/hello")
    (repo / "VERSION").write_text("1.1.0\n")
    sh(repo, *git, "commit", "-qam", "notes 1.1.0")
    print(f"demo repository: {repo}\ndeploy root:     {work / 'home'}\n")
    try:
        # The ports as the config and the server hold them, not as this script chose them.
        envs = tomllib.loads(config.read_text())["environments"]
        dev_port, prod_port = envs["dev"]["port"], envs["prod"]["port"]
        settings = shiplane(repo, env, "server", "config", "instance_ports=20000-29999")
        ranged = settings["settings"]["instance_ports"]
        print(
            f"    front doors (shiplane.toml): dev 127.0.0.1:{dev_port}, prod 127.0.0.1:{prod_port}"
            f"\n    instance ports (shiplane server config): {ranged}"
        )
        shiplane(repo, env, "deploy", "dev")
        print(f"    dev  serves {get(f'http://127.0.0.1:{dev_port}/api/version')}")
        urllib.request.urlopen(
            urllib.request.Request(
                f"http://127.0.0.1:{dev_port}/api/notes",
                method="POST",
                data=json.dumps({"title": "shipped by shiplane"}).encode(),
                headers={"content-type": "application/json"},
            ),
            timeout=5,
        ).read()
        shiplane(repo, env, "verify", "dev")
        shiplane(repo, env, "promote", "prod")
        print(f"    prod serves {get(f'http://127.0.0.1:{prod_port}/api/version')}")
        (repo / "VERSION").write_text("1.2.0\n")
        sh(repo, *git, "commit", "-qam", "notes 1.2.0")
        shiplane(repo, env, "deploy", "dev")
        print(f"    dev  serves {get(f'http://127.0.0.1:{dev_port}/api/version')}")
        shiplane(repo, env, "rollback", "dev")
        print(f"    dev  serves {get(f'http://127.0.0.1:{dev_port}/api/version')}")
        print(f"    dev  notes  {get(f'http://127.0.0.1:{dev_port}/api/notes')}")
        status = shiplane(repo, env, "status")
        for name, info in status["envs"].items():
            print(
                f"    {name}: {info['release']} healthy={info['healthy']} "
                f"consistent={info['consistent']} url={info['url']}"
            )
    finally:
        subprocess.run(
            [SHIPLANE, "server", "stop"], cwd=repo, env=env, capture_output=True, timeout=60
        )
    print("\ndemo finished: dev and prod deployed, dev rolled back; server stopped.")


if __name__ == "__main__":
    main()
