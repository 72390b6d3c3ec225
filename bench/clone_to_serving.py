"""From `git clone` to serving in dev, for the Flask and Django examples (issue 15's benchmark).

Run: .venv/bin/python bench/clone_to_serving.py [--examples flask_notes django_notes]

Each example is committed without its shiplane.toml into a repository that stands for the
user's remote. Timed from `git clone` to the deploy's answer (the app serving in dev):
`shiplane init` (no virtualenv active: the build makes one from requirements.txt), commit, and
the first `shiplane deploy dev`, on a new server whose wheel cache is
  - cold: empty (pip or uv downloads every package),
  - warm: what the cold run left (a new server, so the virtualenv is built again, from cache);
then a second deploy of a new commit with requirements.txt unchanged (the virtualenv is
reused). Beside them, `python -m venv` + `pip install -r requirements.txt` alone, with a cold
and with a warm pip cache. Prints seconds and ratios. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.example import ROOT, SHIPLANE, free_port

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 1800) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def shiplane(args: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    out = run([*SHIPLANE, *args, "--json"], cwd, env)
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return data


def origin_of(example: str, work: Path, env: dict[str, str]) -> Path:
    """The example as the user's remote has it: committed, no shiplane.toml."""
    source = work / f"{example}-source"
    shutil.copytree(
        ROOT / "examples" / example,
        source,
        ignore=shutil.ignore_patterns("__pycache__", "*.db", "shiplane.toml", "staticfiles"),
    )
    run(["git", "init", "-q", "-b", "main"], source, env)
    run(["git", "add", "-A"], source, env)
    run(["git", "commit", "-qm", f"{example}"], source, env)
    return source


def build_seconds(deploy: dict[str, Any]) -> float:
    step = next(s for s in deploy["steps"] if s["name"] == "build")
    return float(step["duration_ms"]) / 1000


def clone_to_serving(origin: Path, home: Path, work: Path, env: dict[str, str]) -> dict[str, float]:
    """git clone, init, commit, deploy dev: seconds in all, and the build step's share; then
    a second deploy with unchanged requirements."""
    env = {**env, "SHIPLANE_HOME": str(home)}
    clone = work / f"clone-{home.name}"
    ports = ["--dev-port", str(free_port()), "--prod-port", str(free_port())]
    try:
        started = time.perf_counter()
        run(["git", "clone", "-q", str(origin), str(clone)], work, env)
        init_started = time.perf_counter()
        shiplane(["init", *ports], clone, env)
        init = time.perf_counter() - init_started
        run(["git", "add", "shiplane.toml"], clone, env)
        run(["git", "commit", "-qm", "shiplane init"], clone, env)
        run(["git", "checkout", "-q", "-b", "dev"], clone, env)
        deploy_started = time.perf_counter()
        first = shiplane(["deploy", "dev"], clone, env)
        total = time.perf_counter() - started
        deploy = total - (deploy_started - started)
        (clone / "NOTE.txt").write_text("a change that is not a dependency\n")
        run(["git", "add", "NOTE.txt"], clone, env)
        run(["git", "commit", "-qm", "a note"], clone, env)
        again_started = time.perf_counter()
        second = shiplane(["deploy", "dev"], clone, env)
        again = time.perf_counter() - again_started
    finally:
        subprocess.run(
            [*SHIPLANE, "server", "stop", "--root", str(home)], env=env, capture_output=True
        )
    slowest = sorted(first["steps"], key=lambda s: -s["duration_ms"])[:4]
    print(f"  {home.name}, first deploy's slowest steps: {', '.join(_ms(s) for s in slowest)}")
    return {
        "total": total,
        "init": init,
        "deploy": deploy,
        "build": build_seconds(first),
        "redeploy": again,
        "rebuild": build_seconds(second),
    }


def _ms(step: dict[str, Any]) -> str:
    return f"{step['name']} {step['duration_ms'] / 1000:.1f}s"


def pip_alone(requirements: Path, cache: Path, work: Path, env: dict[str, str]) -> float:
    venv = work / f"pip-alone-{cache.name}-{time.monotonic_ns()}"
    started = time.perf_counter()
    run([sys.executable, "-m", "venv", str(venv)], work, env)
    pip_env = {**env, "PIP_CACHE_DIR": str(cache), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(requirements)], work, pip_env)
    return time.perf_counter() - started


def bench(example: str, work: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "SHIPLANE_HOME")}
    env.update(GIT_ENV)
    origin = origin_of(example, work, env)
    cold = clone_to_serving(origin, work / "home-cold", work, env)
    # A new server (no virtualenv to reuse) with the cold run's wheel cache.
    warm_home = work / "home-warm"
    warm_home.mkdir()
    if (work / "home-cold" / "cache").is_dir():  # none when every wheel came from local files
        shutil.copytree(work / "home-cold" / "cache", warm_home / "cache")
    warm = clone_to_serving(origin, warm_home, work, env)
    requirements = origin / "requirements.txt"
    pip_cold = pip_alone(requirements, work / "pip-cache", work, env)
    pip_warm = pip_alone(requirements, work / "pip-cache", work, env)

    print(f"\n{example}: git clone -> serving in dev (init + first deploy)")
    rows = [
        ("clone -> serving, cold wheel cache", cold["total"], pip_cold),
        ("  of which shiplane init", cold["init"], pip_cold),
        ("  of which the first deploy", cold["deploy"], pip_cold),
        ("  of which the build (virtualenv)", cold["build"], pip_cold),
        ("clone -> serving, warm wheel cache", warm["total"], pip_warm),
        ("  of which the build (virtualenv)", warm["build"], pip_warm),
        ("second deploy, same requirements", warm["redeploy"], pip_warm),
        ("  of which the build (reused)", warm["rebuild"], pip_warm),
        ("venv + pip install -r, cold pip cache", pip_cold, pip_cold),
        ("venv + pip install -r, warm pip cache", pip_warm, pip_warm),
    ]
    for label, seconds, base in rows:
        print(f"  {label:42} {seconds:7.2f} s  {seconds / base:5.2f}x pip alone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", nargs="+", default=["flask_notes", "django_notes"])
    args = parser.parse_args()
    uv = shutil.which("uv")
    print(f"installer: {'uv (' + uv + ')' if uv else 'pip (no uv on PATH)'}")
    for example in args.examples:
        with tempfile.TemporaryDirectory(prefix=f"bench-{example}-") as work:
            bench(example, Path(work))


if __name__ == "__main__":
    main()
