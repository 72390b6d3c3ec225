"""The virtualenv store on real files: what a release's environment is keyed on, that only a
published build counts (one killed halfway is cleared, never used), linking and pruning by
reference. (Real builds: tests/e2e/test_release_venvs.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shiplane.errors import BuildError
from shiplane.procenv import RELEASE_VENV, app_bin_dir
from shiplane.venvs import Store, dependencies
from shiplane.venvs.build import error_lines


def release(root: Path, name: str, files: dict[str, str]) -> Path:
    path = root / "dev" / "releases" / name
    path.mkdir(parents=True)
    for file, text in files.items():
        (path / file).write_text(text)
    return path


def test_the_key_follows_the_dependency_files_and_the_python(tmp_path: Path) -> None:
    one = release(tmp_path, "1-a", {"requirements.txt": "flask==3.0\n", "app.py": "1"})
    two = release(tmp_path, "2-b", {"requirements.txt": "flask==3.0\n", "app.py": "2"})
    three = release(tmp_path, "3-c", {"requirements.txt": "flask==3.1\n"})
    deps = dependencies(one)
    assert deps is not None and deps.kind == "requirements.txt"
    key = deps.key(one)
    assert key == deps.key(two)  # the app's code is not part of it
    assert key != deps.key(three)
    assert key != deps.key(one, python="/usr/bin/python3-elsewhere")


def test_which_file_the_dependencies_come_from(tmp_path: Path) -> None:
    tools_only = release(tmp_path, "1", {"pyproject.toml": "[tool.ruff]\nline-length = 100\n"})
    assert dependencies(tools_only) is None  # no [project]: the PATH's python, as before
    assert dependencies(release(tmp_path, "2", {"app.py": ""})) is None
    project = '[project]\nname = "x"\nversion = "1"\ndependencies = ["flask>=3"]\n'
    declared = dependencies(release(tmp_path, "3", {"pyproject.toml": project}))
    assert declared is not None and declared.requirements == ("flask>=3",)
    both = release(tmp_path, "4", {"pyproject.toml": project, "requirements.txt": "flask\n"})
    assert dependencies(both).kind == "requirements.txt"  # type: ignore[union-attr]
    locked = release(tmp_path, "5", {"pyproject.toml": project, "uv.lock": "version = 1\n"})
    assert dependencies(locked).files == ("uv.lock", "pyproject.toml")  # type: ignore[union-attr]
    bad = release(tmp_path, "6", {"pyproject.toml": '[project]\ndependencies = "flask"\n'})
    with pytest.raises(BuildError, match=r"\[project\]\.dependencies = 'flask'"):
        dependencies(bad)
    # The app itself in the shared environment (an editable install points into one release).
    editable = release(tmp_path, "7", {"requirements.txt": "flask\n-e .  # the app\n"})
    with pytest.raises(BuildError, match=r"line 2: '-e .  # the app' installs the app's own"):
        dependencies(editable)
    local = release(tmp_path, "8", {"requirements.txt": "--find-links ./wheels\nflask\n"})
    assert dependencies(local) is not None  # a local index is no install of the app


def fake_venv(path: Path) -> Path:
    (path / "bin").mkdir(parents=True)
    (path / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return path


def test_only_a_published_build_counts_and_a_killed_one_is_cleared(tmp_path: Path) -> None:
    store = Store(tmp_path / "app" / "venvs")
    with store.locked():
        # A build killed halfway: complete-looking, but no name points at it.
        dead = fake_venv(store.new_build("k1"))
        assert not store.published("k1")
        done = fake_venv(store.new_build("k2"))
        store.publish("k2", done)
        assert store.published("k2")
        assert store.clear_unfinished() == [dead.name]
    assert not dead.exists() and done.exists()
    assert os.readlink(store.path("k2")) == str(done)


def test_prune_removes_what_no_release_points_at(tmp_path: Path) -> None:
    app_root = tmp_path / "app"
    store = Store(app_root / "venvs")
    with store.locked():
        for key in ("old", "new"):
            store.publish(key, fake_venv(store.new_build(key)))
    kept = release(app_root, "2-b", {})
    store.link(kept, "new")
    prod = app_root / "prod" / "releases" / "1-a"
    prod.mkdir(parents=True)
    store.link(prod, "old")
    assert store.prune() == []  # prod's release still points at "old"
    old_build = Path(os.path.realpath(store.path("old")))
    os.unlink(prod / RELEASE_VENV)
    assert store.prune() == ["old"]
    assert not old_build.exists() and not store.path("old").is_symlink()
    assert store.published("new")
    # A release's processes get the environment's stable path, not the link in the release.
    assert app_bin_dir(None, kept) == store.path("new") / "bin"
    own = fake_venv(tmp_path / "own")
    assert app_bin_dir(str(own), kept) == own / "bin"  # one named in the config wins


def test_pips_verdict_is_what_a_failed_build_quotes() -> None:
    output = (
        "Looking in links: /w\nERROR: Could not find a version that satisfies the requirement"
        " nope==1 (from versions: none)\nERROR: No matching distribution found for nope==1\n"
    )
    assert error_lines(output).endswith("ERROR: No matching distribution found for nope==1")
    assert error_lines("a\nb\nc\nd\ne\n") == "b / c / d / e"
