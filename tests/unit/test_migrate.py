"""The migration runner on real SQLite files."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiplane.errors import MigrationError
from shiplane.migrate import Migrator, discover
from tests.support.sqlite_util import database, query, tables


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


PY_001 = (
    "def up(db):\n    db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)')\n\n"
    "def down(db):\n    db.execute('DROP TABLE t')\n"
)
SQL_002 = (
    "-- up\nALTER TABLE t ADD COLUMN w TEXT;\nINSERT INTO t (v, w) VALUES ('a;b', 'x');\n"
    "-- down\nDELETE FROM t;\nALTER TABLE t DROP COLUMN w;\n"
)


def test_up_down_and_status(tmp_path: Path) -> None:
    migrations = discover(write(tmp_path / "m", {"001_create.py": PY_001, "002_w.sql": SQL_002}))
    assert [m.label for m in migrations] == ["001_create", "002_w"]
    migrator = Migrator(database(tmp_path / "app.db"))
    assert [m.label for m in migrator.plan(migrations).pending] == ["001_create", "002_w"]
    assert migrator.up(migrations, to=1) == ["001_create"]
    assert migrator.up(migrations) == ["002_w"]
    assert migrator.up(migrations) == []
    assert query(tmp_path / "app.db", "SELECT v, w FROM t") == [("a;b", "x")]  # ';' in a string
    assert migrator.down(migrations, to=0) == ["002_w", "001_create"]
    assert tables(tmp_path / "app.db") == {"shiplane_migrations"}


def test_edited_applied_migration_is_refused(tmp_path: Path) -> None:
    directory = write(tmp_path / "m", {"001_create.py": PY_001})
    migrator = Migrator(database(tmp_path / "app.db"))
    migrator.up(discover(directory))
    (directory / "001_create.py").write_text(PY_001.replace("v TEXT", "v BLOB"))
    write(directory, {"002_w.sql": SQL_002})
    with pytest.raises(MigrationError, match="001_create were edited after they ran"):
        migrator.up(discover(directory))
    assert migrator.plan(discover(directory)).pending[0].label == "002_w"  # nothing applied


def test_failure_rolls_back_the_whole_run(tmp_path: Path) -> None:
    bad = "-- up\nCREATE TABLE half (id INTEGER);\nINSERT INTO missing VALUES (1);\n-- down\n"
    directory = write(tmp_path / "m", {"001_create.py": PY_001, "002_bad.sql": bad})
    migrator = Migrator(database(tmp_path / "app.db"))
    with pytest.raises(MigrationError, match=r"002_bad \(up\) failed"):
        migrator.up(discover(directory))
    assert migrator.applied() == []
    assert tables(tmp_path / "app.db") == {"shiplane_migrations"}  # not even 001 stayed


def test_bad_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="NNN_name"):
        discover(write(tmp_path / "a", {"create.sql": "SELECT 1;"}))
    with pytest.raises(MigrationError, match="share version 1"):
        discover(write(tmp_path / "b", {"001_a.sql": "", "001_b.sql": ""}))
    broken = discover(write(tmp_path / "c", {"001_broken.py": "def up(db:\n"}))
    with pytest.raises(MigrationError, match=r"001_broken.py:1: syntax error"):
        Migrator(database(tmp_path / "c.db")).up(broken)
    no_down = discover(write(tmp_path / "d", {"001_x.sql": "CREATE TABLE x (id INT);"}))
    migrator = Migrator(database(tmp_path / "d.db"))
    migrator.up(no_down)
    with pytest.raises(MigrationError, match="no '-- down' section"):
        migrator.down(no_down, to=0)
