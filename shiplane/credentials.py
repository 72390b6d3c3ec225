"""The client's own token: what the CLI presents to the server.

``SHIPLANE_TOKEN`` wins; otherwise ``$XDG_CONFIG_HOME/shiplane/token`` (``~/.config/shiplane/
token``), written by ``shiplane tokens use TOKEN`` with mode 0600 in a 0700 directory. On an
enforced host this is the only credential a client has: the server's own token is the server
user's to read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from shiplane.errors import ConfigError

ENV = "SHIPLANE_TOKEN"


def token_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "shiplane" / "token"


def client_token() -> str | None:
    """The token this client presents, or None."""
    token = os.environ.get(ENV, "").strip()
    if token:
        return token
    path = token_file()
    try:
        info = path.stat()
        text = path.read_text().strip()
    except OSError:
        return None
    if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
        # Someone else could have read it, or put it there: presenting it would act for them.
        raise ConfigError(
            f"{path} must be yours and private (0600), it is "
            f"{stat.filemode(info.st_mode)} owned by uid {info.st_uid}",
            step="auth",
            next_action=f"chmod 600 {path}, or store the token again with `shiplane tokens use`",
        )
    return text or None


def save_token(token: str) -> Path:
    """Keep ``token`` for this OS user (0600; the directory 0700), replacing the one kept."""
    path = token_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(token.strip() + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
