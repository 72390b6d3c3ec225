"""Git: resolve refs, merge for deploy, export commits."""

from shiplane.gitops.git import (
    MergeResult,
    branch_exists,
    branch_sha,
    commit_subject,
    current_branch,
    ensure_repo,
    export,
    fast_forward,
    is_ancestor,
    is_dirty,
    merge_into,
    reset_branch,
    resolve,
    undo_fast_forward,
)

__all__ = [
    "MergeResult",
    "branch_exists",
    "branch_sha",
    "commit_subject",
    "current_branch",
    "ensure_repo",
    "export",
    "fast_forward",
    "is_ancestor",
    "is_dirty",
    "merge_into",
    "reset_branch",
    "resolve",
    "undo_fast_forward",
]
