"""Per-release virtualenvs (issue 15 item 3): an app with requirements.txt and no virtualenv
configured gets one built from it, content-addressed under ``<app root>/venvs/``; its
processes, migrations and `tests` checks run in it (never in shiplane's own environment); an
unchanged requirements file reuses it, a changed one makes another, pruning releases removes
the one no release points at, and a pin that cannot be installed fails the build (exit 2)
leaving nothing half-built; so does a build killed by its timeout. A promoted release shares
dev's environment."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shiplane.errors import BuildError
from shiplane.layout import Layout
from shiplane.procenv import RELEASE_VENV
from shiplane.venvs import Builder, ensure_release_venv
from tests.support.app_repo import AppRepo, Run, pids_under, wait_no_children
from tests.support.examples import example_without_config
from tests.support.venv_app import local_wheels, make_venv_app, pin, requirements
from tests.support.wait import serves, wait_for


@pytest.fixture
def venv_app(tmp_path: Path) -> Iterator[tuple[AppRepo, Path]]:
    app, wheels = make_venv_app(tmp_path, keep=1)
    try:
        yield app, wheels
    finally:
        app.stop_server()
        wait_no_children(tmp_path)


def step(run: Run, name: str) -> dict[str, Any]:
    return next(s for s in run.data["steps"] if s["name"] == name)


def seen(app: AppRepo, env: str = "dev") -> dict[str, Any]:
    answer = httpx.get(app.url(env, "/env"), timeout=10)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def published(app: AppRepo) -> set[str]:
    """The environments the app's store holds (published names only)."""
    venvs = app.root / "venvs"
    return {p.name for p in venvs.iterdir() if not p.name.startswith(".")}


def deploy(app: AppRepo) -> Run:
    run = app.shiplane("deploy", "dev", "--json", timeout=300)
    assert run.code == 0, run.stdout + run.stderr
    return run


def test_a_release_runs_in_its_own_virtualenv_reused_until_requirements_change(
    venv_app: tuple[AppRepo, Path],
) -> None:
    app, wheels = venv_app
    first = deploy(app)
    assert "built from requirements.txt" in step(first, "build")["detail"]
    (key,) = published(app)
    venv = (app.root / "venvs" / key).resolve()
    env = seen(app)
    # The app's process, its migration tool and its `tests` check ran in that environment,
    # with its pins; shiplane's own packages are not there.
    assert Path(env["prefix"]).resolve() == venv
    assert env["probe"] == "1.0"
    assert env["itsdangerous"] == "0.1" != importlib.metadata.version("itsdangerous")
    assert env["shiplane_importable"] is False
    # Nor is shiplane's pip on its PATH (it would install into shiplane's environment).
    assert env["pip"] is None or not Path(env["pip"]).resolve().is_relative_to(sys.prefix)
    assert [(str(Path(p).resolve()), v) for p, v in env["migrated_in"]] == [(str(venv), "1.0")]
    assert step(first, "verify")["status"] == "done"

    # Same requirements: the same environment, not a copy, and no install.
    app.commit("a new page", {"page.txt": "hello\n"})
    second = deploy(app)
    detail = step(second, "build")["detail"]
    assert "reused" in detail, detail
    assert step(second, "build")["duration_ms"] < 5000
    assert published(app) == {key}
    assert Path(seen(app)["prefix"]).resolve() == venv

    # A changed pin: a new environment beside the old one (the rollback target still uses it).
    pin(app, wheels, "venvprobe==2.0", "itsdangerous==0.1")
    third = deploy(app)
    assert "built from requirements.txt" in step(third, "build")["detail"]
    (new_key,) = published(app) - {key}
    assert seen(app)["probe"] == "2.0"
    assert Path(seen(app)["prefix"]).resolve() == (app.root / "venvs" / new_key).resolve()
    assert key in published(app)

    # The last release on the old environment is pruned (releases_kept = 1): so is it.
    app.commit("another page", {"page.txt": "hello again\n"})
    fourth = deploy(app)
    assert published(app) == {new_key}
    assert not venv.exists()
    assert "1 unused virtualenv" in step(fourth, "prune")["detail"]
    assert os.listdir(app.root / "venvs" / ".builds") == [
        (app.root / "venvs" / new_key).resolve().name
    ]


def test_a_bad_pin_fails_the_build_leaving_nothing_and_promote_shares_the_environment(
    venv_app: tuple[AppRepo, Path],
) -> None:
    app, wheels = venv_app
    deploy(app)
    before = published(app)
    builds = set(os.listdir(app.root / "venvs" / ".builds"))
    releases = set(os.listdir(app.root / "dev" / "releases"))

    pin(app, wheels, "venvprobe==1.0", "no-such-package-shiplane==9.9")
    run = app.shiplane("deploy", "dev", "--json", timeout=300)
    assert run.code == 2, run.stdout + run.stderr
    error = run.data["error"]
    assert error["step"] == "build"
    # pip's own verdict, quoted.
    assert "No matching distribution found for no-such-package-shiplane==9.9" in error["message"]
    assert published(app) == before
    assert set(os.listdir(app.root / "venvs" / ".builds")) == builds
    assert set(os.listdir(app.root / "dev" / "releases")) == releases
    assert seen(app)["probe"] == "1.0"  # the old release still serves

    # What serves in dev, promoted: prod's copy of the release points at the same environment
    # (nothing built), and prod's own migration ran in it too.
    assert app.shiplane("verify", "dev").code == 0
    promoted = app.shiplane("promote", "prod", "--json", timeout=300)
    assert promoted.code == 0, promoted.stdout + promoted.stderr
    assert step(promoted, "build")["detail"].startswith("reused the build")
    (key,) = before
    venv = str((app.root / "venvs" / key).resolve())
    prod = seen(app, "prod")
    assert str(Path(prod["prefix"]).resolve()) == venv and prod["itsdangerous"] == "0.1"
    assert [str(Path(p).resolve()) for p, _ in prod["migrated_in"]] == [venv]
    assert published(app) == before


def builder(timeout: float, lines: list[str]) -> Builder:
    return Builder(dict(os.environ), None, timeout, lines.append, str)


def test_a_build_stopped_by_its_timeout_leaves_nothing_then_one_builds(tmp_path: Path) -> None:
    wheels = local_wheels(tmp_path / "wheels")
    layout = Layout(tmp_path / "home", "app")
    path = layout.releases("dev") / "1-a"
    path.mkdir(parents=True)
    (path / "requirements.txt").write_text(requirements(wheels, "venvprobe==1.0"))
    lines: list[str] = []
    with pytest.raises(BuildError, match="timed out"):
        ensure_release_venv(layout, path, builder(0.05, lines))
    assert os.listdir(layout.venvs / ".builds") == []
    assert [p.name for p in layout.venvs.iterdir() if not p.name.startswith(".")] == []
    assert not (path / RELEASE_VENV).exists()

    made = ensure_release_venv(layout, path, builder(300, lines))
    assert made is not None and not made.reused and made.tool in ("pip", "uv")
    python = made.path / "bin" / "python"
    assert python.exists() and made.path.parent == layout.venvs
    assert os.readlink(path / RELEASE_VENV) == str(made.path)
    assert (made.path / "lib").is_dir() and sys.prefix != str(made.path)
    again = ensure_release_venv(layout, path, builder(300, lines))
    assert again is not None and again.reused and again.key == made.key


@pytest.fixture
def flask_example(tmp_path: Path) -> Iterator[AppRepo]:
    app = example_without_config(tmp_path, "flask_notes")
    try:
        yield app
    finally:
        app.stop_server()
        wait_no_children(tmp_path)


def test_the_flask_example_after_init_migrates_and_serves_from_its_built_virtualenv(
    flask_example: AppRepo,
) -> None:
    """No virtualenv active: init names no interpreter, the build makes one from
    requirements.txt, and Flask-Migrate's `flask db upgrade` and gunicorn run from it."""
    app = flask_example
    ports = ["--dev-port", str(app.ports["dev"]), "--prod-port", str(app.ports["prod"])]
    init = app.shiplane("init", *ports, "--json")
    assert init.code == 0, init.stdout + init.stderr
    assert "python" not in tomllib.loads((app.path / "shiplane.toml").read_text())["app"]
    app.commit("shiplane init")
    app.git("checkout", "-q", "-b", "dev")
    first = deploy(app)
    assert "built from requirements.txt" in step(first, "build")["detail"]
    assert step(first, "migrate")["detail"].startswith("applied ")
    (key,) = published(app)
    venv = (app.root / "venvs" / key).resolve()
    created = httpx.post(app.url("dev", "/api/notes"), json={"title": "venv"}, timeout=10)
    assert created.status_code == 201, created.text
    # The instances run with the environment's python first on PATH (its gunicorn, its flask).
    environs = [
        dict(
            item.split(b"=", 1)
            for item in (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
            if b"=" in item
        )
        for pid in pids_under(app.root / "dev" / "releases")
    ]
    assert environs
    for environ in environs:
        assert Path(environ[b"VIRTUAL_ENV"].decode()).resolve() == venv
        assert Path(environ[b"PATH"].decode().split(":")[0]).resolve() == venv / "bin"

    app.commit("a note", {"NOTE.txt": "not a dependency\n"})
    second = deploy(app)
    assert "reused" in step(second, "build")["detail"]
    assert step(second, "build")["duration_ms"] < 5000
    assert published(app) == {key}


def test_a_serving_release_whose_virtualenv_was_removed_gets_it_back_on_restart(
    venv_app: tuple[AppRepo, Path],
) -> None:
    app, _wheels = venv_app
    deploy(app)
    app.stop_server()
    shutil.rmtree(app.root / "venvs")  # by hand: the release's link now points at nothing

    assert app.shiplane("status", "dev").code == 0  # starts a server, which rebuilds
    assert wait_for(lambda: serves(app.url("dev", "/env")), timeout=120)
    env = seen(app)
    (key,) = published(app)
    assert Path(env["prefix"]).resolve() == (app.root / "venvs" / key).resolve()
    assert env["probe"] == "1.0" and env["shiplane_importable"] is False
