"""Reading an instance log as one stream across its rotations (``shiplane.logs_rotate``).

A reader's position is a cursor: the release whose log it reads, the number of the file
(a rotated file's ``<log>.<n>``, or for the live log the ``n`` it will get) and an offset in
it. A file keeps its number until it is deleted, so a reader finishes a file rotated under it,
then goes on with the next one, and, once the release's log is read to its end while another
release serves, with that release's log. Only a file deleted (``keep``) before it was read is
lost, and the answer then says so."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shiplane.errors import ConfigError
from shiplane.logs_rotate import live_number, rotated, rotated_numbers

READ_LIMIT = 1024 * 1024  # bytes per answer: a follower asks again at once
TAIL_BYTES = 256 * 1024
RACE_RETRIES = 5


@dataclass(frozen=True)
class Cursor:
    release: str
    number: int
    offset: int

    def encode(self) -> str:
        return f"{self.release}:{self.number}:{self.offset}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        release, _, offset = text.rpartition(":")
        release, _, number = release.rpartition(":")
        if not release or not number.isdigit() or not offset.isdigit() or number == "0":
            raise ConfigError(
                f"--cursor {text[:80]!r} is not a cursor `shiplane logs --env` gave",
                step="usage",
                next_action="run `shiplane logs --env ENV` without --cursor; its JSON has one",
            )
        return cls(release, int(number), int(offset))


@dataclass(frozen=True)
class Chunk:
    text: str
    cursor: Cursor
    lost: bool = False  # the cursor's file was deleted before it was read


def chain(path: Path) -> list[Path]:
    """``path``'s files, oldest first: the rotated ones, then the live log."""
    files = [rotated(path, n) for n in rotated_numbers(path)]
    return files + ([path] if path.exists() else [])


def start_of(release: str, path: Path) -> Cursor:
    numbers = rotated_numbers(path)
    return Cursor(release, numbers[0] if numbers else 1, 0)


def read_since(
    log_of: Callable[[str], Path], cursor: Cursor, serving: str, limit: int = READ_LIMIT
) -> Chunk:
    """What was written after ``cursor``; ``log_of(release)`` is a release's log, ``serving``
    the release that serves now."""
    for _ in range(RACE_RETRIES):
        chunk = _read_once(log_of, cursor, serving, limit)
        if chunk is not None:
            return chunk
    return Chunk("", cursor)  # rotating without pause: the next call goes on from here


def _read_once(
    log_of: Callable[[str], Path], cursor: Cursor, serving: str, limit: int
) -> Chunk | None:
    """None when a rotation happened under it (try again)."""
    path = log_of(cursor.release)
    numbers = rotated_numbers(path)
    live = live_number(numbers)
    number, offset, lost = cursor.number, cursor.offset, False
    if number > live or (number != live and number not in numbers):
        # Deleted before it was read (or the files were removed by hand): go on from the
        # oldest there is, and say so.
        number, offset, lost = (numbers[0] if numbers else live), 0, True
    file = path if number == live else rotated(path, number)
    try:
        with file.open("rb") as handle:
            if number == live and rotated(path, number).exists():
                return None  # rotated between the listing and the open: which file is open?
            handle.seek(offset)
            data = handle.read(limit)
            at_end = not handle.read(1)
    except FileNotFoundError:
        if number == live:  # nothing written yet, or removed by hand
            moved = cursor.release != serving
            return Chunk("", start_of(serving, log_of(serving)) if moved else cursor, lost)
        return None
    if at_end and number != live:
        later = [n for n in numbers if n > number]
        return Chunk(_text(data), Cursor(cursor.release, later[0] if later else live, 0), lost)
    if at_end and cursor.release != serving:
        return Chunk(_text(data), start_of(serving, log_of(serving)), lost)
    return Chunk(_text(data), Cursor(cursor.release, number, offset + len(data)), lost)


def tail(release: str, path: Path, lines: int) -> Chunk:
    """The last ``lines`` lines (across a rotation that just happened), and the cursor right
    after them: a reader going on from it sees nothing twice."""
    for _ in range(RACE_RETRIES):
        live = live_number(rotated_numbers(path))
        data, size = tail_bytes(path, TAIL_BYTES)
        if not rotated(path, live).exists():
            break
    kept = _text(data).splitlines(keepends=True)[-lines:] if lines > 0 else []
    return Chunk("".join(kept), Cursor(release, live, size))


def tail_bytes(path: Path, wanted: int) -> tuple[bytes, int]:
    """Up to ``wanted`` bytes from the end of ``path``'s stream (newest file first), and
    where in the live log they end."""
    parts: list[bytes] = []
    end = 0
    for file in reversed(chain(path)):
        try:
            with file.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                start = max(0, size - wanted)
                handle.seek(start)
                part = handle.read(size - start)
        except FileNotFoundError:
            continue
        if file == path:
            end = size
        parts.append(part)
        wanted -= len(part)
        if wanted <= 0:
            break
    return b"".join(reversed(parts)), end


def _text(data: bytes) -> str:
    return data.decode(errors="replace")
