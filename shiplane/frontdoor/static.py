"""Static files served by the front door from the release that serves (``[app] static``).

A ``StaticFiles`` belongs to one ``Upstream``: its mounts point into that instance's release
directory, so the switch that moves requests to a new instance moves its files with it, in
the same assignment (a rollback brings the old files back the same way). Release directories
are immutable once built, which is why what a lookup learns about a file (size, ETag, type, its
``.gz`` sibling) is cached for the life of the mount.

What is answered here, and what is not (WhiteNoise's rules, so its users see the same site):

- GET and HEAD of a regular file under a mount: 200 with ETag (a hash of the content, so an
  unchanged file keeps its tag across releases), Last-Modified, Cache-Control (``immutable``
  for fingerprinted names such as ``app.3f2a1b9c.css``), the type from ``mimetypes``, and the
  pre-compressed ``NAME.gz`` when the client accepts gzip (``Vary: Accept-Encoding``);
  If-None-Match / If-Modified-Since: 304. Another method on such a file: 405.
- A path that names no file (missing, a directory: no listing) falls through to the app, as
  with WhiteNoise, where the app's own 404 page answers.
- A path that tries to leave the mount (``..``, ``%2e%2e``, a symlink pointing out, a hidden
  ``.name`` segment) is refused with 404, a NUL byte or bytes that are not UTF-8 with 400:
  those never reach the app, which is not prepared for what the door resolves.

Bodies are read in chunks and written as the client takes them (bounded by the idle timeout),
never read whole.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import re
import stat
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote_to_bytes

from shiplane.frontdoor.replies import REASONS, json_reply
from shiplane.frontdoor.settings import Limits
from shiplane.frontdoor.wire import Head

CHUNK = 256 * 1024
SMALL = 64 * 1024  # read and written in one go
CACHE_ENTRIES = 4096
IMMUTABLE = b"public, max-age=31536000, immutable"
# Django's ManifestStaticFilesStorage and most bundlers put a hex digest before the suffix; a
# digit is required so that a word such as "facade" does not make a file immutable for a year.
FINGERPRINT = re.compile(r"\.(?=[0-9a-f]*[0-9])[0-9a-f]{6,}\.[A-Za-z0-9]+$")
TEXT_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml")
Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    size: int
    etag: bytes
    last_modified: bytes
    mtime: int  # whole seconds: what Last-Modified can say


@dataclass(frozen=True, slots=True)
class StaticFile:
    plain: FileInfo
    gzip: FileInfo | None
    content_type: bytes
    cache_control: bytes


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(slots=True)
class Answer:
    """What ``StaticFiles.answer`` wrote: for the access log and the connection."""

    status: int
    sent: int
    keep_alive: bool


class StaticFiles:
    """The mounts of one release: URL prefix -> directory (absolute, inside the release)."""

    def __init__(self, mounts: dict[str, Path], max_age: int, idle_timeout: float = 60.0) -> None:
        ordered = sorted(mounts.items(), key=lambda item: -len(item[0]))  # longest first
        self.mounts = [
            (prefix.rstrip("/").encode() + b"/", os.path.realpath(root)) for prefix, root in ordered
        ]
        # ``bytes.startswith`` takes a tuple: the relay's one check per request.
        self.prefixes = tuple(prefix for prefix, _ in self.mounts)
        self.max_age = max_age
        self.cache_control = b"public, max-age=%d" % max_age
        self.idle_timeout = idle_timeout
        self._cache: dict[bytes, StaticFile] = {}

    def claims(self, target: bytes) -> bool:
        return target.startswith(self.prefixes)

    async def answer(
        self, writer: asyncio.StreamWriter, head: Head, extra: Headers
    ) -> Answer | None:
        """Answer ``head`` from the files, or None: the app answers it (see the docstring)."""
        keep = head.keep_alive and not head.has_body and not head.upgrade
        path = head.target.split(b"?", 1)[0]
        try:
            found = self._cache.get(path)
            if found is None:
                found = await asyncio.to_thread(self._lookup, path)
                if found is None:
                    return None
                if len(self._cache) >= CACHE_ENTRIES:
                    self._cache.clear()
                self._cache[path] = found
        except Refused as exc:
            answer = json_reply(exc.status, {"error": exc.reason}, keep, extra)
            writer.write(answer)
            return Answer(exc.status, 0, keep)
        if head.method not in (b"GET", b"HEAD"):
            allow = ((b"allow", b"GET, HEAD"), *extra)
            writer.write(
                json_reply(405, {"error": "static files answer GET and HEAD"}, keep, allow)
            )
            return Answer(405, 0, keep)
        return await self._send(writer, head, found, keep, extra)

    # lookup (in a thread: it touches the disk) ---------------------------------------------
    def _lookup(self, path: bytes) -> StaticFile | None:
        prefix, root = next((p, r) for p, r in self.mounts if path.startswith(p))
        raw = unquote_to_bytes(path[len(prefix) :])
        if b"\x00" in raw:
            raise Refused(400, "NUL byte in a static path")
        try:
            relative = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, "a static path must be UTF-8") from None
        segments = relative.split("/")
        if any(s.startswith(".") or "\\" in s for s in segments):
            raise Refused(404, "no such static file")  # traversal, or a hidden file
        if "" in segments:
            return None  # a directory (or an empty segment): never listed, the app's
        full = os.path.realpath(os.path.join(root, *segments))
        if not full.startswith(root + os.sep):
            raise Refused(404, "no such static file")  # a symlink that points out
        plain = _info(full)
        if plain is None:
            return None
        gz = _info(full + ".gz")
        if gz is not None and not os.path.realpath(full + ".gz").startswith(root + os.sep):
            gz = None
        name = segments[-1]
        fingerprinted = FINGERPRINT.search(name) is not None
        return StaticFile(
            plain=plain,
            gzip=gz,
            content_type=_content_type(name),
            cache_control=IMMUTABLE if fingerprinted else self.cache_control,
        )

    # the answer --------------------------------------------------------------------------
    async def _send(
        self,
        writer: asyncio.StreamWriter,
        head: Head,
        found: StaticFile,
        keep: bool,
        extra: Headers,
    ) -> Answer:
        if writer.transport.is_closing():
            return Answer(0, 0, False)  # the client left while the file was looked up
        use_gzip = found.gzip is not None and _accepts_gzip(head.get(b"accept-encoding"))
        info = found.gzip if use_gzip and found.gzip is not None else found.plain
        headers = [
            (b"etag", info.etag),
            (b"last-modified", info.last_modified),
            (b"cache-control", found.cache_control),
            (b"content-type", found.content_type),
            (b"x-content-type-options", b"nosniff"),
        ]
        if found.gzip is not None:
            headers.append((b"vary", b"Accept-Encoding"))
        if use_gzip:
            headers.append((b"content-encoding", b"gzip"))
        headers.extend(extra)
        connection = b"keep-alive" if keep else b"close"
        if _not_modified(head, info):
            writer.write(_head(304, headers, None, connection))
            return Answer(304, 0, keep)
        answer = _head(200, headers, info.size, connection)
        if head.method == b"HEAD":
            writer.write(answer)
            return Answer(200, 0, keep)
        if info.size <= SMALL:
            # One read from the page cache costs less than a thread's round trip, and head
            # and body go out in one write.
            with open(info.path, "rb") as file:
                body = file.read(info.size)
            writer.write(answer + body)
            return Answer(200, len(body), keep and len(body) == info.size)
        writer.write(answer)
        sent = await self._stream(writer, info)
        return Answer(200, sent, keep and sent == info.size)

    async def _stream(self, writer: asyncio.StreamWriter, info: FileInfo) -> int:
        """The file in chunks, each written once the client took the last: memory stays at
        one chunk however large the file. A short file (changed under us) ends the connection."""
        sent = 0
        with open(info.path, "rb") as file:
            while sent < info.size:
                chunk = await asyncio.to_thread(file.read, min(CHUNK, info.size - sent))
                if not chunk or writer.transport.is_closing():
                    break  # the client went away (uvloop raises on a write to it)
                writer.write(chunk)
                sent += len(chunk)
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        await writer.drain()
                except TimeoutError:
                    # A client that does not read is let go; a close would wait for the
                    # buffered rest to be taken first, so the connection is aborted.
                    writer.transport.abort()
                    raise
        return sent


def for_release(
    release_dir: str, static: dict[str, str], max_age: int, limits: Limits
) -> StaticFiles | None:
    """``[app] static`` resolved in one release (None: the app serves everything). A mount
    whose directory leaves the release through a symlink is left out (the config refuses
    ``..`` and absolute paths)."""
    release = os.path.realpath(release_dir)
    mounts: dict[str, Path] = {}
    for prefix, directory in static.items():
        root = os.path.realpath(os.path.join(release, directory))
        if root.startswith(release + os.sep):
            mounts[prefix] = Path(root)
    return StaticFiles(mounts, max_age, limits.idle_timeout) if mounts else None


def _info(path: str) -> FileInfo | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    digest = hashlib.blake2b(digest_size=12)
    with open(path, "rb") as file:
        while block := file.read(CHUNK):
            digest.update(block)
    mtime = int(st.st_mtime)
    return FileInfo(
        path=path,
        size=st.st_size,
        etag=b'"%s"' % digest.hexdigest().encode(),
        last_modified=formatdate(mtime, usegmt=True).encode(),
        mtime=mtime,
    )


def _content_type(name: str) -> bytes:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    kind = guessed or "application/octet-stream"
    if kind.startswith(TEXT_TYPES):
        kind += "; charset=utf-8"
    return kind.encode()


def _accepts_gzip(header: bytes | None) -> bool:
    if not header:
        return False
    for item in header.lower().split(b","):
        name, _, params = item.strip().partition(b";")
        if name.strip() not in (b"gzip", b"*"):
            continue
        q = params.strip()
        if q.startswith(b"q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def _not_modified(head: Head, info: FileInfo) -> bool:
    match = head.get(b"if-none-match")
    if match is not None:
        tags = {t.strip().removeprefix(b"W/") for t in match.split(b",")}
        return info.etag in tags or b"*" in tags
    since = head.get(b"if-modified-since")
    if since is None:
        return False
    try:
        return info.mtime <= int(parsedate_to_datetime(since.decode("latin-1")).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return False


def _head(
    status: int, headers: list[tuple[bytes, bytes]], length: int | None, conn: bytes
) -> bytes:
    reason = REASONS.get(status, b"Status")
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    lines += [b"%s: %s\r\n" % pair for pair in headers]
    if length is not None:
        lines.append(b"content-length: %d\r\n" % length)
    lines.append(b"connection: %s\r\n\r\n" % conn)
    return b"".join(lines)
