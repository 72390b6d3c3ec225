"""Git operations: resolve refs, merge a feature branch into an env branch, export a commit.

The env branches live in the server's bare repository (``shiplane.gitops.server_repo``); the
user's repository is only read (by the client, to resolve what it sends). Merges are computed
with ``git merge-tree --write-tree`` and land with a compare-and-swap ``git update-ref``.
"""

from __future__ import annotations

import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from shiplane.errors import GitError, RefusedError

GIT_TIMEOUT = 120


def _run(
    repo: Path, args: tuple[str, ...], timeout: float, step: str = "resolve"
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git {args[0]} failed: {exc}", step=step) from exc


def git(repo: Path, *args: str, check: bool = True, timeout: float = GIT_TIMEOUT) -> str:
    proc = _run(repo, args, timeout)
    if check and proc.returncode != 0:
        raise GitError(
            f"git {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}",
            step="resolve",
        )
    return proc.stdout.strip()


def ensure_repo(repo: Path) -> Path:
    proc = _run(repo, ("rev-parse", "--show-toplevel"), GIT_TIMEOUT)
    if proc.returncode != 0:
        raise GitError(
            f"{repo} is not inside a git repository",
            step="resolve",
            next_action="run shiplane from your app's git repository (git init; git commit)",
        )
    return Path(proc.stdout.strip())


@dataclass(frozen=True)
class RepoFacts:
    top: Path
    current: str | None  # the checked-out branch (None: detached HEAD)
    commits: list[str]  # what each ref asked for names


def repo_facts(repo: Path, refs: list[str]) -> RepoFacts | None:
    """The work tree's top, its current branch and the commit each ref names, in one git
    process (the client runs this on every deploy, and a git process costs ~4 ms); None when
    any ref is not there (the caller asks again one by one, for the error that names it)."""
    if any(ref.startswith("-") for ref in refs):
        return None
    names = (f"{ref}^{{commit}}" for ref in refs)
    proc = _run(repo, ("rev-parse", "--show-toplevel", "--absolute-git-dir", *names), 10)
    lines = proc.stdout.split("\n")
    if proc.returncode != 0 or len(lines) < len(refs) + 2:
        return None
    try:
        # HEAD is a file of one line, "ref: refs/heads/<branch>" (or a sha when detached).
        head = (Path(lines[1]) / "HEAD").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    current = head.removeprefix("ref: refs/heads/") if head.startswith("ref: ") else None
    return RepoFacts(Path(lines[0]), current, lines[2 : 2 + len(refs)])


def resolve(repo: Path, ref: str) -> str:
    if ref.startswith("-"):
        raise GitError(
            f"ref {ref!r} is not a valid git ref",
            step="resolve",
            next_action="pass --ref with a branch, tag or sha (see `git log --oneline`)",
        )
    proc = _run(repo, ("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"), GIT_TIMEOUT)
    if proc.returncode != 0:
        raise GitError(
            f"ref {ref!r} does not name a commit in {repo}",
            step="resolve",
            next_action="pass --ref with an existing branch, tag or sha (see `git log --oneline`)",
        )
    return proc.stdout.strip()


def branch_exists(repo: Path, branch: str) -> bool:
    return branch_sha(repo, branch) is not None


def current_branch(repo: Path) -> str | None:
    name = git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    return name or None


def is_dirty(repo: Path) -> bool:
    return bool(git(repo, "status", "--porcelain", "--untracked-files=no"))


def commit_subject(repo: Path, sha: str) -> str:
    return git(repo, "log", "-1", "--format=%s", sha)


@dataclass(frozen=True)
class MergeResult:
    branch: str
    before: str | None
    after: str
    kind: str  # "created" | "fast-forward" | "merge" | "up-to-date"


def merge_into(
    repo: Path, source_sha: str, source: str, target: str, base: str | None = None
) -> MergeResult:
    """Merge commit ``source_sha`` (of branch ``source``) into branch ``target`` of ``repo``; a
    conflict raises and changes nothing. A ``target`` that does not exist yet starts at ``base``
    (the client's own branch of that name) when given, else at ``source_sha``. The branch moves
    by compare-and-swap: when another operation moved it meanwhile, the merge is made again."""
    for attempt in range(MERGE_ATTEMPTS):
        try:
            return _merge_once(repo, source_sha, source, target, base)
        except _BranchMoved:
            if attempt == MERGE_ATTEMPTS - 1:
                raise GitError(
                    f"{target} kept moving while merging {source} into it; nothing was changed",
                    step="merge",
                    next_action="deploy again",
                ) from None
    raise AssertionError("unreachable")


MERGE_ATTEMPTS = 3


class _BranchMoved(Exception):
    pass


def _swap_ref(repo: Path, ref: str, new: str, expected: str) -> None:
    proc = _run(repo, ("update-ref", ref, new, expected), GIT_TIMEOUT)
    if proc.returncode != 0:
        raise _BranchMoved(proc.stderr.strip())


def _merge_once(
    repo: Path, source_sha: str, source: str, target: str, base: str | None
) -> MergeResult:
    before = branch_sha(repo, target)
    if before is None and base is None:
        _swap_ref(repo, f"refs/heads/{target}", source_sha, "")
        return MergeResult(target, None, source_sha, "created")
    target_sha = before or str(base)
    exists = before is not None
    if is_ancestor(repo, source_sha, target_sha):
        new, kind = target_sha, "up-to-date" if exists else "created"
    elif is_ancestor(repo, target_sha, source_sha):
        new, kind = source_sha, "fast-forward" if exists else "created"
    else:
        proc = _run(
            repo,
            ("merge-tree", "--write-tree", "--name-only", target_sha, source_sha),
            GIT_TIMEOUT,
        )
        if proc.returncode != 0:
            files = [line for line in proc.stdout.splitlines()[1:] if line and " " not in line]
            raise GitError(
                f"merging {source} into {target} conflicts"
                + (f" in: {', '.join(files)}" if files else "")
                + "; nothing was changed",
                step="merge",
                next_action=f"git checkout {source} && git merge shiplane/{target} (or "
                f"{target}), resolve, commit, deploy",
            )
        tree = proc.stdout.splitlines()[0].strip()
        message = f"Merge branch '{source}' into {target} (shiplane deploy)"
        new = git(repo, "commit-tree", tree, "-p", target_sha, "-p", source_sha, "-m", message)
        kind = "merge"
    if new != before:
        _swap_ref(repo, f"refs/heads/{target}", new, before or "")
    return MergeResult(target, before, new, kind)


def reset_branch(repo: Path, branch: str, to: str | None, expected: str) -> None:
    """Undo of merge_into: put the branch back, only if nobody moved it since."""
    if to is None:
        git(repo, "update-ref", "-d", f"refs/heads/{branch}", expected)
    else:
        git(repo, "update-ref", f"refs/heads/{branch}", to, expected)


def branch_sha(repo: Path, branch: str) -> str | None:
    """The commit ``refs/heads/<branch>`` points at, or None when there is no such branch."""
    proc = _run(repo, ("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"), GIT_TIMEOUT)
    return proc.stdout.strip() if proc.returncode == 0 else None


def fast_forward(repo: Path, branch: str, sha: str, before: str | None) -> str:
    """Move ``branch`` of a bare repository forward to ``sha``; a branch that is not an
    ancestor refuses."""
    if before == sha:
        return "up-to-date"
    if before is not None and not is_ancestor(repo, before, sha):
        raise RefusedError(
            f"{branch} has diverged from {sha[:7]} (it has commits the verified commit lacks); "
            "nothing was changed",
            step="resolve",
            next_action=f"merge {branch} into the source branch, deploy and verify it, promote",
        )
    git(repo, "update-ref", f"refs/heads/{branch}", sha, before or "")
    return "fast-forward" if before else "created"


def undo_fast_forward(repo: Path, branch: str, before: str | None, after: str) -> None:
    reset_branch(repo, branch, before, after)


def is_ancestor(repo: Path, maybe_ancestor: str, of: str) -> bool:
    return (
        _run(repo, ("merge-base", "--is-ancestor", maybe_ancestor, of), GIT_TIMEOUT).returncode == 0
    )


def export(repo: Path, sha: str, dest: Path) -> None:
    """Write the tree of commit ``sha`` (not the working tree) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=False)
    try:
        with subprocess.Popen(
            ["git", "-C", str(repo), "archive", "--format=tar", sha],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as proc:
            assert proc.stdout is not None
            with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
                _extract(archive, dest)
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            code = proc.wait(timeout=GIT_TIMEOUT)
    except (OSError, tarfile.TarError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"exporting {sha[:7]} failed: {exc}", step="export") from exc
    if code != 0:
        raise GitError(f"git archive {sha[:7]} failed: {stderr.strip()}", step="export")


def _extract(archive: tarfile.TarFile, dest: Path) -> None:
    """Extract with the "data" filter (nothing outside ``dest``, no devices, no owners). Python
    before 3.11.4 (Debian 12's 3.11.2) lacks extraction filters: the same checks by hand."""
    if hasattr(tarfile, "data_filter"):
        archive.extractall(dest, filter="data")
        return
    root = dest.resolve()
    for member in archive:
        target = (root / member.name).resolve()
        inside = [target]
        if member.issym():
            inside.append((target.parent / member.linkname).resolve())
        elif member.islnk():
            inside.append((root / member.linkname).resolve())
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()) or any(
            path != root and root not in path.parents for path in inside
        ):
            raise tarfile.TarError(f"refusing to extract {member.name!r} outside {dest}")
        member.uid = member.gid = 0
        member.uname = member.gname = ""
        member.mode &= 0o755
        archive.extract(member, dest, set_attrs=not member.issym())
