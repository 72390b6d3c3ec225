"""An app whose dependencies only a virtualenv of its own can give it, for the per-release
virtualenv tests: a stdlib HTTP server importing ``venvprobe`` (a tiny local package no other
environment has) and pinning ``itsdangerous`` to a version shiplane's environment does not
have. Both are wheels made here, installed with ``--no-index`` (no network)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import zipfile
from pathlib import Path

from tests.support.app_repo import GIT_ENV, AppRepo, free_port

APP = r"""import importlib.metadata
import importlib.util
import json
import os
import shutil
import sqlite3
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import venvprobe


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            body = b"ok"
        elif self.path == "/env":
            db = sqlite3.connect(os.environ["DATABASE_URL"].removeprefix("sqlite:///"))
            body = json.dumps({
                "prefix": sys.prefix,
                "probe": venvprobe.VERSION,
                "itsdangerous": importlib.metadata.version("itsdangerous"),
                "shiplane_importable": importlib.util.find_spec("shiplane") is not None,
                "pip": shutil.which("pip"),
                "migrated_in": db.execute("SELECT prefix, probe FROM migrated_in").fetchall(),
            }).encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

# A migration tool for engine = "command" that can only run with the app's interpreter (it
# imports venvprobe) and records which one ran it.
MIGRATE = r"""import os
import sqlite3
import sys

import venvprobe

db = sqlite3.connect(os.environ["DATABASE_URL"].removeprefix("sqlite:///"))
db.execute("CREATE TABLE IF NOT EXISTS versions (v TEXT PRIMARY KEY)")
applied = [row[0] for row in db.execute("SELECT v FROM versions")]
if sys.argv[1] == "up" and "001" not in applied:
    db.execute("CREATE TABLE migrated_in (prefix TEXT, probe TEXT)")
    db.execute("INSERT INTO migrated_in VALUES (?, ?)", (sys.prefix, venvprobe.VERSION))
    db.execute("INSERT INTO versions VALUES ('001')")
    db.commit()
elif sys.argv[1] == "status":
    print("\n".join(applied))
"""

# A `tests` check: passes only in the app's own environment.
CHECK = r"""import importlib.util
import sys

import venvprobe

assert importlib.util.find_spec("shiplane") is None, "shiplane leaked into the app's environment"
print(f"suite ran in {sys.prefix} with venvprobe {venvprobe.VERSION}")
"""

CONFIG = """[app]
name = "venvapp"
build = ["python -c 'import venvprobe'"]
run = "python app.py {{port}}"
health = "/healthz"

[health]
interval = 0.2
timeout = 20.0

[deploy]
drain_timeout = 2.0
releases_kept = {keep}

[database]
url = "sqlite:///app.db"
engine = "command"
up = "python migrate.py up"
status = "python migrate.py status"

[environments.dev]
branch = "dev"
port = {dev}
auto_merge = true

[environments.prod]
branch = "main"
port = {prod}
promote_from = "dev"

[[verify.check]]
name = "suite in the app's environment"
kind = "tests"
command = "python check_env.py"
"""


def make_wheel(directory: Path, name: str, version: str, module: str) -> Path:
    """A pure-Python wheel of one module ``name`` (what pip needs: METADATA, WHEEL, RECORD)."""
    directory.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": module,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def local_wheels(directory: Path) -> Path:
    """venvprobe 1.0 and 2.0; an ``itsdangerous`` 0.1 that is not the real one (shiplane's
    environment has a 2.x): which one a process sees tells whose environment it runs in."""
    for version in ("1.0", "2.0"):
        make_wheel(directory, "venvprobe", version, f'VERSION = "{version}"\n')
    make_wheel(directory, "itsdangerous", "0.1", '__version__ = "0.1"\n')
    return directory


def requirements(wheels: Path, *pins: str) -> str:
    return "\n".join(["--no-index", f"--find-links {wheels}", *pins]) + "\n"


def make_venv_app(tmp_path: Path, keep: int = 5) -> tuple[AppRepo, Path]:
    """The app in a git repo on dev (main beside it), with no ``[app] python``: the build
    makes its virtualenv from requirements.txt (venvprobe 1.0, itsdangerous 0.1)."""
    wheels = local_wheels(tmp_path / "wheels")
    repo = tmp_path / "venvapp"
    repo.mkdir()
    ports = {"dev": free_port(), "prod": free_port()}
    home = tmp_path / "home"
    env = {**os.environ, **GIT_ENV, "SHIPLANE_HOME": str(home)}
    for private in ("SHIPLANE_FAULT", "VIRTUAL_ENV"):
        env.pop(private, None)
    app = AppRepo(repo, home, ports, env, "venvapp")
    app.git("init", "-q", "-b", "main")
    app.commit(
        "venvapp 1.0",
        {
            "app.py": APP,
            "migrate.py": MIGRATE,
            "check_env.py": CHECK,
            "requirements.txt": requirements(wheels, "venvprobe==1.0", "itsdangerous==0.1"),
            "shiplane.toml": CONFIG.format(keep=keep, **ports),
        },
    )
    app.git("checkout", "-q", "-b", "dev")
    return app, wheels


def pin(app: AppRepo, wheels: Path, *pins: str) -> str:
    """Commit a requirements.txt with ``pins`` (same index options)."""
    return app.commit(f"pins: {' '.join(pins)}", {"requirements.txt": requirements(wheels, *pins)})


def config_text(app: AppRepo) -> str:
    return (app.path / "shiplane.toml").read_text()


def set_config(app: AppRepo, pattern: str, replacement: str) -> None:
    path = app.path / "shiplane.toml"
    path.write_text(re.sub(pattern, replacement, path.read_text()))
