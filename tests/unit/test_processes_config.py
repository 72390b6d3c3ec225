"""[processes] in shiplane.toml: web (alias app.run), workers, release, worker_grace."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiplane.config import parse_config
from shiplane.errors import ConfigError

BASE = """
[app]
name = "demo"
[environments.dev]
branch = "dev"
port = 8001
"""


def parse(text: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    return parse_config(text, tmp_path / "shiplane.toml")


def test_processes_web_workers_release_and_grace(tmp_path: Path) -> None:
    config = parse(
        BASE
        + """
[processes]
web = "python -m http.server {port}"
worker = "python worker.py"
mail = { run = "python mail.py", count = 2 }
release = "python release.py"
worker_grace = 1.5
""",
        tmp_path,
    )
    assert config.web_command == "python -m http.server {port}"
    assert config.processes.release == "python release.py"
    assert config.processes.worker_grace == 1.5
    assert config.processes.counts() == {"worker": 1, "mail": 2}
    assert config.processes.workers["mail"].run == "python mail.py"


def test_app_run_is_an_alias_of_processes_web(tmp_path: Path) -> None:
    text = BASE.replace('name = "demo"', 'name = "demo"\nrun = "serve {port}"')
    config = parse(text, tmp_path)
    assert config.web_command == "serve {port}"
    assert config.processes.workers == {} and config.processes.worker_grace == 5.0


@pytest.mark.parametrize(
    ("processes", "expected"),
    [
        ('web = "b {port}"', "app.run = 'a {port}' and processes.web = 'b {port}' are both set"),
        ("worker = 3", 'processes.worker = 3: give a command, e.g. worker = "python worker.py"'),
        ('worker = { run = "w", count = -1 }', "processes.worker.count = -1"),
        ('worker = { run = "w", cuont = 1 }', "unknown key 'processes.worker.cuont'"),
        ('Worker = "w"', "processes.Worker: a process name uses lowercase letters"),
        ('worker = "  "', "processes.worker.run = '  ': must be a command"),
        ('worker = "python \'w.py"', "No closing quotation; quote it as a shell would"),
        ("worker_grace = -1", "processes.worker_grace = -1"),
    ],
)
def test_bad_processes_name_key_value_and_fix(
    tmp_path: Path, processes: str, expected: str
) -> None:
    text = BASE.replace('name = "demo"', 'name = "demo"\nrun = "a {port}"')
    with pytest.raises(ConfigError) as info:
        parse(text + "[processes]\n" + processes + "\n", tmp_path)
    assert expected in info.value.message
    assert info.value.exit_code == 64


def test_no_web_command_names_both_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse(BASE + '[processes]\nworker = "w"\n', tmp_path)
    assert "missing key 'app.run' (or processes.web)" in info.value.message
