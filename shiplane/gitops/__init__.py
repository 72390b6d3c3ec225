"""Git: resolve refs, merge for deploy, export commits."""

from shiplane.gitops.git import (
    branch_exists,
    MergeResult,
    commit_subject,
    current_branch,
    ensure_repo,
    export,
    is_dirty,
    merge_into,
    reset_branch,
    resolve,
)

__all__ = [
    "branch_exists",
    "MergeResult",
    "commit_subject",
    "current_branch",
    "ensure_repo",
    "export",
    "is_dirty",
    "merge_into",
    "reset_branch",
    "resolve",
]
