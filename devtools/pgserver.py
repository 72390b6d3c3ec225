"""A throwaway PostgreSQL server: initdb + pg_ctl on a free port in a temp dir.

Used by the tests (the `postgres` fixture) and by bench/backup.py; it lives outside tests/ so
that the benchmarks do not import the test suite.

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user that the
Debian package creates. Host connections need the superuser's password (scram-sha-256), so the
tests exercise shiplane's secret handling for database URLs for real.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg


@dataclass(frozen=True)
class PgServer:
    port: int
    password: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (see .ci/run)")
    return Path(found[-1]).parent


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def pg_server(port: int) -> Iterator[PgServer]:
    bindir = _bindir()
    base = Path(tempfile.mkdtemp(prefix="shiplane-pg-"))
    password = secrets.token_urlsafe(16)
    (base / "pw").write_text(password)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(base / "pw", "postgres", "postgres")
    data = base / "data"
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--no-sync"]
    initdb += [f"--pwfile={base / 'pw'}", "--auth-local=trust", "--auth-host=scram-sha-256"]
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [*pg_ctl, "-o", options, "-l", str(base / "log"), "-w", "-t", "60", "start"]
    try:
        subprocess.run(_as_postgres(initdb), check=True, capture_output=True, timeout=120)
        subprocess.run(_as_postgres(start), check=True, capture_output=True, timeout=90)
        yield PgServer(port, password)
    finally:
        stop = [*pg_ctl, "-m", "immediate", "stop"]
        subprocess.run(_as_postgres(stop), capture_output=True, timeout=60, check=False)
        shutil.rmtree(base, ignore_errors=True)
