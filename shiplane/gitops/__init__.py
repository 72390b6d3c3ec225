"""Git: resolve refs, merge for deploy, export commits."""

from shiplane.gitops.git import (
    MergeResult,
    branch_exists,
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
    "MergeResult",
    "branch_exists",
    "commit_subject",
    "current_branch",
    "ensure_repo",
    "export",
    "is_dirty",
    "merge_into",
    "reset_branch",
    "resolve",
]
