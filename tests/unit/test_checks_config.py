"""Check declarations: parsing, the checks file, names, write protection, subset and shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiplane.config import load_config
from shiplane.config.checks import HttpCheck
from shiplane.config.checks import TestsCheck as SuiteCheck
from shiplane.errors import ConfigError
from shiplane.verify.diff import shape
from shiplane.verify.http import is_subset, writes_allowed
from shiplane.verify.runner import checks_hash, load_checks
from shiplane.verify.target import Target

BASE = """
[app]
name = "demo"
run = "python -m http.server {port}"
[environments.dev]
branch = "dev"
port = 8001
[environments.prod]
branch = "main"
port = 8002
promote_from = "dev"
"""


def write(tmp_path: Path, extra: str, checks_file: str | None = None) -> Path:
    (tmp_path / "shiplane.toml").write_text(BASE + extra)
    if checks_file is not None:
        (tmp_path / "checks.toml").write_text(checks_file)
    return tmp_path / "shiplane.toml"


def test_inline_and_file_checks_load_in_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[verify]\nchecks_file = "checks.toml"\n'
        '[[verify.check]]\nname = "home"\nkind = "http"\npath = "/"\n',
        '[[check]]\nname = "rows"\nkind = "sql"\nquery = "SELECT 1"\nexpect = 1\n',
    )
    checks = load_checks(load_config(path))
    assert [(c.name, c.kind) for c in checks] == [
        ("home", "http"),
        ("rows", "sql"),
        ("version", "version"),
    ]
    before = checks_hash(checks)
    (tmp_path / "checks.toml").write_text(
        '[[check]]\nname = "rows"\nkind = "sql"\nquery = "SELECT 2"\nexpect = 2\n'
    )
    assert checks_hash(load_checks(load_config(path))) != before  # edited checks, new hash


@pytest.mark.parametrize(
    ("extra", "checks_file", "expected"),
    [
        ('[[verify.check]]\nname = "x"\nkind = "smtp"\n', None, "verify.check.0"),
        (
            '[[verify.check]]\nname = "x"\nkind = "http"\npath = "/"\nstatsu = 200\n',
            None,
            "unknown key 'verify.check.0.http.statsu'",
        ),
        (
            '[[verify.check]]\nname = "x"\nkind = "version"\n'
            '[[verify.check]]\nname = "x"\nkind = "version"\n',
            None,
            "used twice: x",
        ),
        ('[verify]\nchecks_file = "missing.toml"\n', None, "cannot read it"),
        ('[verify]\nchecks_file = "checks.toml"\n', "[[check]]\nname = 3\n", "checks.toml"),
    ],
)
def test_bad_checks_are_config_errors(
    tmp_path: Path, extra: str, checks_file: str | None, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_checks(load_config(write(tmp_path, extra, checks_file)))
    assert expected in info.value.message
    assert info.value.exit_code == 64


def test_bad_promote_from_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    path.write_text(path.read_text().replace('promote_from = "dev"', 'promote_from = "qa"'))
    with pytest.raises(ConfigError, match=r"promote_from = 'qa': name another environment"):
        load_config(path)


def test_writes_need_allow_in_for_gated_envs() -> None:
    post = HttpCheck(kind="http", name="p", method="POST", path="/x")
    get = HttpCheck(kind="http", name="g", path="/x")
    suite = SuiteCheck(kind="tests", name="t", command="pytest")
    prod = Target(env="prod", base_url="", sha="", phase="serving", gated=True)
    dev = Target(env="dev", base_url="", sha="", phase="serving", gated=False)
    assert post.writes and suite.writes and not get.writes
    assert not writes_allowed(post.allow_in, prod) and writes_allowed(post.allow_in, dev)
    assert writes_allowed(["prod"], prod) and not writes_allowed(["staging"], dev)


def test_subset_and_shape() -> None:
    assert is_subset({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}, "d": 3})
    assert not is_subset({"a": {"b": 2}}, {"a": {"b": 1}})
    assert is_subset([{"id": 1}], [{"id": 1, "x": 0}, {"id": 2}])
    assert shape({"notes": [{"id": 1, "t": "x"}, {"id": 2}], "v": "1"}) == {
        "notes": [{"id": "int", "t": "str"}],
        "v": "str",
    }
    assert shape({"n": []}) != shape({"n": [1]})
