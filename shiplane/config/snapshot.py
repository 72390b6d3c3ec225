"""The config travels with every request; the server never reads the client's files.

The client packs shiplane.toml and the files it names (each environment's ``env_file`` and
``tls`` cert/key/ca_bundle, the ``[verify]`` checks file) into the request (``pack``). The
server parses that text (``receive``), never a path of the client's: it may run on another
machine or as another OS user. Once the request is authenticated and checked, the server keeps
its own copy under ``apps/<app>/config/`` (``write``: directories 0700, files 0600, each
written atomically; TLS files in ``tls/<env>.<cert|key|ca_bundle>.pem``), which
is what reads a file later: an instance's env file when it starts, the git hooks of the
server's repository (``load``). Messages name the user's path (``LoadedConfig.display``).

Env files and TLS keys hold secrets: their text is never put in a message, a log or a result.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from shiplane.config.loader import CONFIG_NAME, LoadedConfig, SentFiles, load_toml, parse_config
from shiplane.config.packing import CHECKS_KEY, TLS_FILES, named_files
from shiplane.errors import ConfigError
from shiplane.layout import Layout

# shiplane.toml and the files it names, together: a config is a few KiB; this much is a mistake.
MAX_CONFIG_BYTES = 128 * 1024
MANIFEST = "source.json"
_ENV_KEY = re.compile(r"^env/[a-z][a-z0-9_-]{0,39}\.env$")
_TLS_KEY = re.compile(rf"^tls/[a-z][a-z0-9_-]{{0,39}}\.({'|'.join(TLS_FILES)})\.pem$")


def pack(loaded: LoadedConfig) -> dict[str, Any]:
    """What a request carries of a client's config: ``{"path", "text", "files"}``."""
    text = _read(loaded.path, "the config", loaded.path)
    # The text as read now, which the server validates again (a file edited since load_config
    # is what is sent, whole: never its old list of files with its new text).
    named = named_files(load_toml(text, loaded.display), loaded.repo_dir)
    files = {file.key: _read(file.path, file.field, file.path) for file in named}
    check_size(text, files, loaded.display)
    return {"path": str(loaded.display), "text": text, "files": files}


def _read(path: Path, what: str, shown: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(
            f"{what}: cannot read {shown} ({reason})", next_action=f"make {shown} readable"
        ) from None


def check_size(text: str, files: dict[str, str], shown: Path | str) -> None:
    size = len(text.encode()) + sum(len(t.encode()) for t in files.values())
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{shown} and the files it names come to {size} bytes; at most "
            f"{MAX_CONFIG_BYTES} travel to the shiplane server",
            next_action="keep shiplane.toml, its env files and its checks file small "
            "(data belongs in the repository or the database, not in the config)",
        )


def receive(payload: Any, home: Path) -> LoadedConfig:
    """The config a request carries, parsed and checked; nothing is written yet."""
    if not isinstance(payload, dict):
        raise ConfigError("malformed operation request: config must be an object")
    shown, text, files = payload.get("path"), payload.get("text"), payload.get("files") or {}
    if not isinstance(shown, str) or not shown or not isinstance(text, str):
        raise ConfigError("malformed operation request: config needs a path and a text")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise ConfigError("malformed operation request: config files must map names to texts")
    # Names only, never a text: an env file's text is a secret.
    unknown = sorted(
        k for k in files if k != CHECKS_KEY and not _ENV_KEY.match(k) and not _TLS_KEY.match(k)
    )
    if unknown:
        raise ConfigError(f"malformed operation request: unknown config file(s) {unknown}")
    check_size(text, files, shown)
    config = parse_config(text, Path(shown))
    directory = Layout(home, config.app.name).config_dir
    return LoadedConfig(
        config=config,
        path=directory / CONFIG_NAME,
        shown=Path(shown),
        sent=SentFiles(text=text, files=dict(files)),
    )


def write(loaded: LoadedConfig) -> None:
    """Keep the server's copy of a sent config (its app's root exists by now)."""
    assert loaded.sent is not None
    directory = loaded.path.parent
    wanted = {
        CONFIG_NAME: loaded.sent.text,
        MANIFEST: json.dumps({"path": str(loaded.display)}) + "\n",
        **loaded.sent.files,
    }
    directory.mkdir(mode=0o700, exist_ok=True)
    (directory / "env").mkdir(mode=0o700, exist_ok=True)
    (directory / "tls").mkdir(mode=0o700, exist_ok=True)
    for name, text in wanted.items():
        _write_if_changed(directory / name, text)
    # A file the config no longer names goes: its secrets must not outlive it.
    for stale in [*_kept_files(directory), directory / CHECKS_KEY]:
        if stale.relative_to(directory).as_posix() not in wanted:
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


def _kept_files(directory: Path) -> list[Path]:
    """The env files and TLS files of the server's copy."""
    return [*(directory / "env").glob("*.env"), *(directory / "tls").glob("*.pem")]


def _write_if_changed(path: Path, text: str) -> None:
    with contextlib.suppress(OSError):
        if path.read_text(encoding="utf-8") == text:
            return
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp: mode 0600
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def load(directory: Path) -> LoadedConfig:
    """The server's copy, as the last client sent it (what the git hooks read)."""
    path = directory / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8")
        shown = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))["path"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"the shiplane server has no copy of this app's shiplane.toml yet ({exc})",
            next_action="run any shiplane command (e.g. `shiplane status`) in the app's "
            "repository first",
        ) from None
    files = {
        f.relative_to(directory).as_posix(): f.read_text(encoding="utf-8")
        for f in [*_kept_files(directory), directory / CHECKS_KEY]
        if f.is_file()
    }
    return LoadedConfig(
        config=parse_config(text, Path(shown)),
        path=path,
        shown=Path(shown),
        sent=SentFiles(text=text, files=files),
    )
