"""The bad-input corpus (tests/e2e/bad_inputs/): every malformed shiplane.toml and CLI invocation
gets one clear message naming the problem and a fix, exit 64, and changes nothing on disk."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shiplane.config import parse_config
from shiplane.errors import ConfigError
from tests.support.app_repo import GIT_ENV, SHIPLANE, AppRepo, make_repo, wait_no_children

CORPUS = Path(__file__).parent / "bad_inputs"
CONFIGS = sorted((CORPUS / "configs").glob("*.toml"))
CLI = [
    tuple(part.strip() for part in line.split("|", 1))
    for line in (CORPUS / "cli.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file under the roots by content; state.db by its logical content."""
    found: dict[str, str] = {}
    for root in roots:
        for path in sorted(root.rglob("*")) if root.exists() else []:
            if not path.is_file() or path.name.endswith(("-wal", "-shm")) or ".git" in path.parts:
                continue
            if path.name == "state.db":
                conn = sqlite3.connect(path)
                found[str(path)] = "\n".join(conn.iterdump())
                conn.close()
            else:
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def test_corpus_is_big_enough() -> None:
    assert len(CONFIGS) + len(CLI) >= 50


@pytest.mark.parametrize("case", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_bad_config(tmp_path: Path, case: Path) -> None:
    expect = case.read_text().splitlines()[0].removeprefix("# expect: ")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "shiplane.toml").write_text(case.read_text())
    env = {**os.environ, **GIT_ENV, "SHIPLANE_HOME": str(tmp_path / "home")}
    subprocess.run(["git", "init", "-q", "-b", "dev"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "x"], cwd=repo, check=True, env=env)
    before = snapshot(repo)
    try:
        proc = subprocess.run(
            [*SHIPLANE, "deploy", "dev", "--json"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        root = tmp_path / "home"
        if root.exists():  # a case that got further than it should: stop what it started
            subprocess.run(
                [*SHIPLANE, "server", "stop", "--root", str(root)],
                env=env,
                capture_output=True,
                timeout=60,
            )
    data = json.loads(proc.stdout)
    assert proc.returncode == 64, proc.stdout + proc.stderr
    assert expect in data["error"]["message"], data["error"]
    assert data["error"]["next_action"]
    assert "Traceback" not in proc.stderr
    assert snapshot(repo) == before
    assert not (tmp_path / "home").exists()


@pytest.fixture(scope="module")
def valid_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppRepo]:
    app = make_repo(tmp_path_factory.mktemp("cli"))
    # Starts the host's server (every command is its client); it is stopped after the module.
    subprocess.run([*SHIPLANE, "history"], cwd=app.path, env=app.env, capture_output=True)
    yield app
    app.stop_server()
    wait_no_children(app.path.parent)


@pytest.mark.parametrize(("args", "expect"), CLI, ids=[a for a, _ in CLI])
def test_bad_invocation(valid_repo: AppRepo, args: str, expect: str) -> None:
    before = snapshot(valid_repo.path, valid_repo.home)
    branches = valid_repo.git("branch", "--list")
    words = args.split()
    run = valid_repo.shiplane(*(words if "--json" in words else [*words, "--json"]))
    assert run.code == 64, run.stdout + run.stderr
    assert expect in run.data["error"]["message"], run.data["error"]
    assert run.data["error"]["next_action"]
    assert snapshot(valid_repo.path, valid_repo.home) == before
    assert valid_repo.git("branch", "--list") == branches


TOML_VALUES = st.recursive(
    st.none().map(lambda _: "x") | st.booleans() | st.integers(-5, 70000) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = st.sampled_from(["app", "environments", "database", "health", "deploy", "verify", "x"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, TOML_VALUES, max_size=5))
def test_config_loader_never_crashes(document: dict[str, object]) -> None:
    """Whatever TOML says, the loader returns a Config or one ConfigError, never a traceback."""
    import tomli_w

    text = tomli_w.dumps(document)
    tomllib.loads(text)
    try:
        parse_config(text, Path("shiplane.toml"))
    except ConfigError as exc:
        assert exc.exit_code == 64 and exc.message.startswith("shiplane.toml")
