"""Reading an instance log as one stream across its rotations (``shiplane.logs_rotate``).

A reader's position is a cursor: the release whose log it reads, the file's inode and an
offset in it. A rotation renames the file, so the inode still finds it (``<log>.1``): the
reader finishes it, then goes on with the next newer file, and, once the release's log is read
to its end while another release serves, with that release's log. Only a file rotated out of
``keep`` before it was read is lost, and the answer then says so."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shiplane.errors import ConfigError

READ_LIMIT = 1024 * 1024  # bytes per answer: a follower asks again at once
TAIL_BYTES = 256 * 1024


@dataclass(frozen=True)
class Cursor:
    release: str
    inode: int
    offset: int

    def encode(self) -> str:
        return f"{self.release}:{self.inode}:{self.offset}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        release, _, rest = text.rpartition(":")
        release, _, inode = release.rpartition(":")
        if not release or not inode.isdigit() or not rest.isdigit():
            raise ConfigError(
                f"--cursor {text[:80]!r} is not a cursor `shiplane logs --env` gave",
                step="usage",
                next_action="run `shiplane logs --env ENV` without --cursor; its JSON has one",
            )
        return cls(release, int(inode), int(rest))


@dataclass(frozen=True)
class Chunk:
    text: str
    cursor: Cursor
    lost: bool = False  # the cursor's file was rotated away before it was read


def chain(path: Path) -> list[Path]:
    """``path``'s files, oldest first: ``<log>.N`` ... ``<log>.1``, then ``<log>``."""
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)")
    numbered = []
    if path.parent.is_dir():
        for entry in path.parent.iterdir():
            found = pattern.fullmatch(entry.name)
            if found:
                numbered.append((int(found.group(1)), entry))
    files = [p for _, p in sorted(numbered, reverse=True)]
    return files + ([path] if path.exists() else [])


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def start_of(release: str, path: Path) -> Cursor:
    files = chain(path)
    inode = _inode(files[0]) if files else None
    return Cursor(release, inode or 0, 0)


def read_since(
    log_of: Callable[[str], Path], cursor: Cursor, serving: str, limit: int = READ_LIMIT
) -> Chunk:
    """What was written after ``cursor``; ``log_of(release)`` is a release's log, ``serving``
    the release that serves now."""
    files = chain(log_of(cursor.release))
    found = [(p, _inode(p)) for p in files]
    index = next((i for i, (_, ino) in enumerate(found) if ino == cursor.inode), None)
    lost = False
    offset = cursor.offset
    if index is None:
        if cursor.inode == 0 and not files and cursor.release == serving:
            return Chunk("", cursor)  # nothing written yet
        lost = cursor.inode != 0
        if not files:
            if cursor.release == serving:
                return Chunk("", Cursor(serving, 0, 0), lost)
            return Chunk("", start_of(serving, log_of(serving)), lost)
        index, offset = 0, 0
    path, inode = found[index]
    assert inode is not None
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(limit)
            at_end = not handle.read(1)
    except FileNotFoundError:
        # Rotated away between the listing and the read: the next call finds it by inode.
        return Chunk("", cursor, lost)
    last = index == len(found) - 1
    if at_end and not last:
        return Chunk(_text(data), Cursor(cursor.release, found[index + 1][1] or 0, 0), lost)
    if at_end and cursor.release != serving:
        return Chunk(_text(data), start_of(serving, log_of(serving)), lost)
    if last and not data.endswith(b"\n") and b"\n" in data:
        # The writer writes whole lines; a reader between two of its writes waits for the rest.
        data = data[: data.rindex(b"\n") + 1]
    return Chunk(_text(data), Cursor(cursor.release, inode, offset + len(data)), lost)


def tail(release: str, path: Path, lines: int) -> Chunk:
    """The last ``lines`` lines (across a rotation that just happened), and the cursor at the
    end of what exists now."""
    data = tail_bytes(path, TAIL_BYTES)
    text = _text(data)
    kept = text.splitlines(keepends=True)[-lines:] if lines > 0 else []
    inode = _inode(path)
    size = path.stat().st_size if inode is not None else 0
    cursor = Cursor(release, inode, size) if inode is not None else start_of(release, path)
    return Chunk("".join(kept), cursor)


def tail_bytes(path: Path, wanted: int) -> bytes:
    """Up to ``wanted`` bytes from the end of ``path``'s stream, newest file first."""
    parts: list[bytes] = []
    for file in reversed(chain(path)):
        try:
            with file.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - wanted))
                part = handle.read()
        except FileNotFoundError:
            continue
        parts.append(part)
        wanted -= len(part)
        if wanted <= 0:
            break
    return b"".join(reversed(parts))


def _text(data: bytes) -> str:
    return data.decode(errors="replace")
