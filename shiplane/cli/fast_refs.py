"""The env branches back into the user's repository after a short-road operation, as the full
road does it (``shiplane.cli.remote.fetch_back``), with plain git processes: nothing when
``refs/remotes/shiplane/*`` already match, one ``git update-ref --stdin`` when the commits are
here (the usual rollback: they were deployed from this repository). When some commit is not
here, the full road's fetch does it: rare, and the operation is done by then, so the cost of
importing it no longer matters.

A failure is a warning, worded as the full road words it: the operation itself is done.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

REMOTE_NAME = "shiplane"  # shiplane.gitops.server_repo.REMOTE_NAME, without its Pydantic import
PREFIX = f"refs/remotes/{REMOTE_NAME}/"
GIT_TIMEOUT = 60


class _GitFailed(Exception):
    pass


def refs_back(config_path: Path, branches: dict[str, str]) -> str | None:
    """``branches`` (the server's env branches) into the repository that holds
    ``config_path`` as refs/remotes/shiplane/*; a warning, or None."""
    repo = config_path.parent
    try:
        known = _known(repo)
        if known == branches:
            return None
        if _present(repo, list(branches.values())) != set(branches.values()):
            return _full_road(config_path, branches, known)
        commands = [f"update {PREFIX}{b} {sha}\n" for b, sha in sorted(branches.items())]
        commands += [f"delete {PREFIX}{b}\n" for b in sorted(set(known) - set(branches))]
        _git(repo, "update-ref", "--stdin", stdin="".join(commands))
    except _GitFailed as exc:
        return f"could not fetch the env branches back into {PREFIX}: {exc}"
    return None


def _known(repo: Path) -> dict[str, str]:
    listed = _git(repo, "for-each-ref", "--format=%(refname) %(objectname)", PREFIX)
    return {
        ref.removeprefix(PREFIX): sha
        for ref, _, sha in (line.partition(" ") for line in listed.splitlines() if line)
        if ref != f"{PREFIX}HEAD"
    }


def _present(repo: Path, shas: list[str]) -> set[str]:
    listed = _git(
        repo,
        "cat-file",
        "--batch-check=%(objectname) %(objecttype)",
        stdin="".join(f"{sha}\n" for sha in shas),
        check=False,
    )
    return {line.split()[0] for line in listed.splitlines() if line.endswith(" commit")}


def _git(repo: Path, *args: str, stdin: str | None = None, check: bool = True) -> str:
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _GitFailed(f"git {args[0]} failed: {exc}") from exc
    if check and proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise _GitFailed(f"git {args[0]} failed: {lines[-1] if lines else proc.returncode}")
    return proc.stdout


def _full_road(config_path: Path, branches: dict[str, str], known: dict[str, str]) -> str | None:
    """The full road's fetch back, for commits this repository does not have yet."""
    from shiplane.cli.remote import connect, fetch_back
    from shiplane.config.loader import load_config
    from shiplane.errors import ShiplaneError

    try:
        loaded = load_config(config_path)
        connection = connect(None)
        connection.open()
    except ShiplaneError as exc:
        return f"could not fetch the env branches back into {PREFIX}: {exc.message}"
    try:
        return fetch_back(connection, loaded, loaded.config.app.name, branches, known)
    finally:
        connection.close()
