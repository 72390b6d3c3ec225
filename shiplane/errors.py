"""The one exception tree of shiplane.

    ShiplaneError                 exit 64 unless a subclass says otherwise
    ├── ConfigError               64  bad shiplane.toml, env file, CLI usage
    ├── GitError                  64  bad ref, not a repository, merge conflict
    ├── RefusedError              6   gate or policy refuses the operation
    │   └── LockHeldError         6   another deployment holds the environment
    ├── ChecksFailedError         1   checks failed before any traffic switched
    │   └── SmokeFailedError      4   the switched version failed its smoke check; rolled back
    ├── BuildError                2   a build command failed
    ├── DeployFailedError         3   a step failed; what was done has been undone
    ├── MigrationError            3   a migration failed, was edited after apply, or cannot run
    ├── BackupError               3   a backup could not be written, read or restored
    ├── ServerError               3   the shiplane server could not be reached or refused
    ├── ServerUnavailable         7   no shiplane server answers (and none could be started)
    ├── OperationInterrupted      7   the server died, or the operation crashed inside it
    ├── CertificateError          7   a TLS certificate could not be loaded, obtained or renewed
    ├── StateDamagedError         7   state.db damaged, empty or lost: `shiplane state restore`
    ├── StorageError              7   disk full, read-only, permission denied, I/O error
    ├── NotifyFailed              7   a notification receiver did not take the message
    └── RollbackFailedError       5   CRITICAL: undo or rollback failed, a person must look

Third-party exceptions are translated where they cross into shiplane
(``raise ShiplaneError(...) from exc``); the CLI maps ``exit_code`` to the process exit status.
"""

from __future__ import annotations

from typing import Any


class ShiplaneError(Exception):
    exit_code = 64

    def __init__(
        self, message: str, *, step: str | None = None, next_action: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.step = step
        self.next_action = next_action

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "message": self.message, "next_action": self.next_action}


class ConfigError(ShiplaneError):
    exit_code = 64


class GitError(ShiplaneError):
    exit_code = 64


class RefusedError(ShiplaneError):
    exit_code = 6


class LockHeldError(RefusedError):
    exit_code = 6


class ChecksFailedError(ShiplaneError):
    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        step: str | None = None,
        next_action: str | None = None,
        failed_checks: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message, step=step, next_action=next_action)
        # Each failed check's name, group and (redacted) reason: an agent reads which check
        # failed and why without a second call.
        self.failed_checks = failed_checks or []

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "failed_checks": self.failed_checks}


class BuildError(ShiplaneError):
    exit_code = 2


class DeployFailedError(ShiplaneError):
    exit_code = 3


class SmokeFailedError(ChecksFailedError):
    exit_code = 4


class MigrationError(ShiplaneError):
    exit_code = 3


class BackupError(ShiplaneError):
    exit_code = 3


class ServerError(ShiplaneError):
    exit_code = 3


class RollbackFailedError(ShiplaneError):
    exit_code = 5


class ServerUnavailable(ShiplaneError):
    exit_code = 7


class ServerNotAnswering(ServerUnavailable):
    """A server lives (it holds its life lock) but does not answer: stopped or stalled. No
    client starts a second one beside it; a person continues or stops it."""


class OperationInterrupted(ShiplaneError):
    """The operation stopped without a result: its server died or it crashed inside it. What it
    left is resolved by recovery, which every later command runs."""

    exit_code = 7


class CertificateError(ShiplaneError):
    """A certificate could not be loaded (bad or missing files) or obtained from the ACME server.
    The front door keeps serving the certificate it has; a missing one is infrastructure."""

    exit_code = 7


class StateDamagedError(ShiplaneError):
    """state.db cannot be trusted (garbage header, truncated, empty, or gone while copies of
    it exist): it is never recreated silently, a person restores the newest good copy."""

    exit_code = 7


class StorageError(ShiplaneError):
    """The file system refused a read or a write (disk full, read-only, permission denied, an
    I/O error): the message names the file; nothing the operation had not finished counts."""

    exit_code = 7


class NotifyFailed(ShiplaneError):
    """A notification URL did not take a message (`shiplane notify test`): the message names
    the URL by its scheme and host only, never its token."""

    exit_code = 7


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "checks or tests failed, nothing switched",
    2: "build failed, nothing switched",
    3: "deploy failed, everything undone (the old version kept serving)",
    4: "smoke check failed after the switch, rolled back",
    5: "rollback or undo failed: CRITICAL, a person must look",
    6: "refused (promotion gate, policy, lock held)",
    7: "infrastructure unavailable: the server died or stopped answering mid-operation (the "
    "next command recovers what it left), state.db is damaged (`shiplane state restore`), or "
    "the disk refused a write (full, read-only, permission denied)",
    64: "usage or configuration error, nothing changed",
}
