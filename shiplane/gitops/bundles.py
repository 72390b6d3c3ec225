"""Commits travel as git bundles over the control socket, so a client needs no filesystem
access to the server (another machine, another OS user).

Sending (client → server): the server says which commits it lacks and which branch heads it
has (``server_status``); the client bundles the lacking commits minus those heads
(``create_for``), the server checks the bundle (``git bundle verify``: header and
prerequisites), indexes its pack into a quarantine with ``git index-pack --strict`` (git's
fsck checks on every object) and only then moves the pack into its repository and points
``refs/shiplane/incoming/<sha>`` at each commit (``receive``).

Fetching back (server → client): a bundle of the env branches minus the commits the client
says it has (``branches_bundle``), fetched into the user's repository by the client
(``shiplane.cli.fetch_back``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from shiplane.errors import GitError
from shiplane.gitops import server_repo
from shiplane.gitops.git import _run as run_git
from shiplane.gitops.git import git

INCOMING = server_repo.INCOMING
BUNDLE_TIMEOUT = 300
# What one bundle may weigh; the server's own cap can be lowered with SHIPLANE_MAX_BUNDLE_BYTES.
MAX_BUNDLE_BYTES = 200 * 1024 * 1024


def max_bundle_bytes() -> int:
    try:
        return int(os.environ.get("SHIPLANE_MAX_BUNDLE_BYTES") or MAX_BUNDLE_BYTES)
    except ValueError:
        return MAX_BUNDLE_BYTES


# --- server side --------------------------------------------------------------------------


def server_status(repo: Path, shas: list[str]) -> dict[str, list[str]]:
    """Which of ``shas`` the server lacks, and its branch heads (what a bundle may leave out).
    A commit it already has under another name gets its incoming ref here: nothing to send."""
    server_repo.ensure(repo)
    wanted = [sha for sha in dict.fromkeys(shas) if _is_sha(sha)]
    here = present(repo, wanted)
    updates = "".join(
        f"update {INCOMING}/{sha} {sha}\n"
        for sha in here
        if not server_repo.has_incoming(repo, sha)
    )
    if updates:
        update_refs(repo, updates)
    return {
        "missing": [sha for sha in wanted if sha not in here],
        "heads": sorted(set(server_repo.branches(repo).values())),
    }


def receive(repo: Path, bundle: Path) -> list[str]:
    """Check a client's bundle and take its commits in; refuses (GitError) anything else."""
    server_repo.ensure(repo)
    verified = _git_run(repo, "bundle", "verify", "-q", str(bundle))
    if verified.returncode != 0:
        raise GitError(
            f"the bundle was refused: git bundle verify: {_last_line(verified.stderr)}",
            step="send",
            next_action="send it again; if it keeps failing, check the client's repository "
            "with `git fsck`",
        )
    heads = _bundle_heads(repo, bundle)
    quarantine = Path(tempfile.mkdtemp(prefix="incoming-", dir=repo / "objects"))
    try:
        (quarantine / "pack").mkdir()
        _index_strict(repo, bundle, quarantine)
        _migrate(quarantine, repo / "objects")
    finally:
        shutil.rmtree(quarantine, ignore_errors=True)
    update_refs(repo, "".join(f"update {INCOMING}/{sha} {sha}\n" for sha in heads))
    return heads


def _bundle_heads(repo: Path, bundle: Path) -> list[str]:
    listed = git(repo, "bundle", "list-heads", str(bundle), timeout=BUNDLE_TIMEOUT)
    heads = []
    for line in listed.splitlines():
        sha, _, ref = line.partition(" ")
        if ref != f"{INCOMING}/{sha}" or not _is_sha(sha):
            raise GitError(
                f"the bundle was refused: it carries {ref!r}; only {INCOMING}/<sha> refs "
                "naming their own commit are taken",
                step="send",
            )
        heads.append(sha)
    if not heads:
        raise GitError("the bundle was refused: it carries no commit", step="send")
    return heads


def _index_strict(repo: Path, bundle: Path, quarantine: Path) -> None:
    """The bundle's pack, indexed with fsck checks into ``quarantine`` (the repository's own
    objects stay untouched until every object passed)."""
    env = {
        **os.environ,
        "GIT_OBJECT_DIRECTORY": str(quarantine),
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(repo / "objects"),
    }
    with bundle.open("rb", buffering=0) as handle:
        handle.seek(_pack_offset(bundle))
        try:
            proc = subprocess.run(
                ["git", "-C", str(repo), "index-pack", "--stdin", "--fix-thin", "--strict"],
                stdin=handle,
                capture_output=True,
                env=env,
                timeout=BUNDLE_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GitError(f"the bundle could not be checked: {exc}", step="send") from exc
    if proc.returncode != 0:
        raise GitError(
            "the bundle was refused: fsck found a broken object: "
            f"{_first_error(proc.stderr.decode(errors='replace'))}",
            step="send",
            next_action="run `git fsck` in your repository and repair what it reports",
        )


def _pack_offset(bundle: Path) -> int:
    """Where the pack starts: a bundle is header lines, a blank line, then the pack."""
    offset = 0
    with bundle.open("rb") as handle:
        for line in handle:
            offset += len(line)
            if line == b"\n":
                return offset
    raise GitError("the bundle was refused: it has no pack", step="send")


def _migrate(quarantine: Path, objects: Path) -> None:
    """Move the checked pack into the repository: the .pack before its .idx, as git does, so
    a reader never sees an index without its pack."""
    packs = sorted((quarantine / "pack").iterdir(), key=lambda p: p.suffix != ".pack")
    for path in packs:
        os.replace(path, objects / "pack" / path.name)


def branches_bundle(repo: Path, have: list[str], out: Path) -> bool:
    """Write a bundle of the env branches minus what the client has into ``out``; False when
    the client has every commit already (git refuses an empty bundle)."""
    heads = server_repo.branches(repo)
    if not heads:
        return False
    known = present(repo, [sha for sha in dict.fromkeys(have) if _is_sha(sha)])
    proc = _git_run(
        repo,
        "bundle",
        "create",
        "-q",
        str(out),
        *(f"refs/heads/{branch}" for branch in sorted(heads)),
        *(f"^{sha}" for sha in known),
    )
    if proc.returncode != 0:
        if "empty bundle" in proc.stderr:
            return False
        raise GitError(f"git bundle create failed: {_last_line(proc.stderr)}", step="fetch")
    return True


# --- client side --------------------------------------------------------------------------


def create_for(user_repo: Path, shas: list[str], exclude: list[str], out: Path) -> None:
    """A bundle of ``shas`` (with their history) minus the server's ``exclude`` heads the user
    has, each as ``refs/shiplane/incoming/<sha>``. Bundles need refs: they are made in a
    scratch repository that borrows the user's objects (alternates), so the user's repository
    gets no ref, not even for a moment."""
    objects = Path(git(user_repo, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    known = present(user_repo, exclude)
    with tempfile.TemporaryDirectory(prefix="shiplane-bundle-") as scratch:
        work = Path(scratch)
        git(work, "init", "--quiet", "--bare")
        (work / "objects" / "info" / "alternates").write_text(f"{objects / 'objects'}\n")
        update_refs(work, "".join(f"update {INCOMING}/{sha} {sha}\n" for sha in shas))
        proc = _git_run(
            work,
            "bundle",
            "create",
            "-q",
            str(out),
            *(f"{INCOMING}/{sha}" for sha in dict.fromkeys(shas)),
            *(f"^{sha}" for sha in known),
        )
    if proc.returncode != 0:
        raise GitError(
            f"git bundle create failed: {_last_line(proc.stderr)}",
            step="send",
            next_action="check the repository with `git fsck`",
        )


def fetch_bundle(user_repo: Path, bundle: Path, branches: dict[str, str]) -> None:
    """Take a branches bundle's commits into the user's repository (no ref of theirs moves)."""
    git(
        user_repo,
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        str(bundle),
        *(f"refs/heads/{b}" for b in sorted(branches)),
        timeout=BUNDLE_TIMEOUT,
    )


# --- both ---------------------------------------------------------------------------------


def present(repo: Path, shas: list[str]) -> set[str]:
    """Which of ``shas`` name commits in ``repo``: one git call for all of them."""
    shas = [sha for sha in shas if _is_sha(sha)]
    if not shas:
        return set()
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), "cat-file", "--batch-check=%(objectname) %(objecttype)"],
            input="".join(f"{sha}\n" for sha in shas),
            capture_output=True,
            text=True,
            timeout=BUNDLE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git cat-file failed: {exc}", step="send") from exc
    return {line.split()[0] for line in proc.stdout.splitlines() if line.endswith(" commit")} & set(
        shas
    )


def update_refs(repo: Path, commands: str) -> None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), "update-ref", "--stdin"],
            input=commands,
            capture_output=True,
            text=True,
            timeout=BUNDLE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git update-ref failed: {exc}", step="send") from exc
    if proc.returncode != 0:
        raise GitError(f"git update-ref failed: {_last_line(proc.stderr)}", step="send")


def _git_run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_git(repo, args, BUNDLE_TIMEOUT, step="send")


def _is_sha(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) in (40, 64)
        and all(c in "0123456789abcdef" for c in value)
    )


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no detail"


def _first_error(text: str) -> str:
    """git's first ``error:`` line (what is broken), else its last line."""
    for line in text.splitlines():
        if line.startswith("error:"):
            return line.removeprefix("error:").strip()
    return _last_line(text)
