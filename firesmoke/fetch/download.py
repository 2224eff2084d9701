"""Resumable, verified, atomic downloads of one file.

:func:`download_file` writes ``dest`` only through ``dest.part``:

1. ``dest`` already there and verified (size and checksum when known) -> ``skipped``;
   a ``dest`` that fails verification is downloaded again (and replaced at the end).
2. ``dest.part`` there (an earlier interrupted run) -> resumed with ``Range: bytes=N-``;
   a server that answers 200 instead of 206 restarts the file from zero. Otherwise the
   part file is created exclusively (``O_EXCL``) and never through a symlink
   (``O_NOFOLLOW``; a symlinked ``.part`` or ``dest`` is refused).
3. A connection dropped mid-file, HTTP 429 or 5xx -> retried with backoff (honouring
   ``Retry-After``), continuing from the bytes already in the part file.
4. The part file is checked against the expected size (CMR metadata, else
   ``Content-Length`` / ``Content-Range``) and checksum (MD5 / SHA-1 / SHA-256 /
   SHA-512 when known); a mismatch deletes it and raises :class:`ChecksumError`.
5. Only then is it flushed to disk and renamed to ``dest`` (atomic on POSIX): a file
   with the final name is always complete.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from firesmoke.errors import InputError
from firesmoke.fetch.config import redact
from firesmoke.fetch.http import AuthError, ChecksumError, FetchError, RetryPolicy, request
from firesmoke.fetch.manifest import ManifestEntry

__all__ = ["Checksum", "ProgressCallback", "download_file", "file_digest"]

log = logging.getLogger(__name__)

#: ``progress(done_bytes, total_bytes_or_0, label)``
ProgressCallback = Callable[[int, int, str], None]

_ALGOS = {"MD5": "md5", "SHA1": "sha1", "SHA-1": "sha1", "SHA256": "sha256", "SHA-256": "sha256",
          "SHA512": "sha512", "SHA-512": "sha512"}
_CHUNK = 1 << 18  # 256 KiB: at most this much is lost when a connection drops


@dataclass(frozen=True)
class Checksum:
    """An expected checksum: ``algorithm`` (``MD5``, ``SHA-256``, ...) and hex ``value``."""

    algorithm: str
    value: str

    @property
    def hashlib_name(self) -> str:
        name = _ALGOS.get(self.algorithm.upper())
        if name is None:
            raise InputError(f"unsupported checksum algorithm {self.algorithm!r}")
        return name

    def __str__(self) -> str:
        return f"{self.algorithm.upper()}:{self.value.lower()}"

    @classmethod
    def parse(cls, text: str | None) -> Checksum | None:
        if not text or ":" not in text:
            return None
        algo, value = text.split(":", 1)
        return cls(algo, value)


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file (read in 1 MiB blocks)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, size: int | None, checksum: Checksum | None) -> str | None:
    """None if ``path`` matches ``size`` and ``checksum`` (those known), else the problem."""
    actual = path.stat().st_size
    if size is not None and actual != size:
        return f"size {actual} bytes, expected {size}"
    if checksum is not None:
        try:
            algo = checksum.hashlib_name
        except ValueError as exc:
            log.warning("%s: %s; checksum not verified", path, exc)
            return None
        digest = file_digest(path, algo)
        if digest.lower() != checksum.value.strip().lower():
            return f"{checksum.algorithm} {digest} does not match the expected {checksum.value}"
    return None


def _refuse_symlink(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise FetchError(f"{path}: exists and is not a regular file (symlink?); refusing to write through it")


def _lock(fd: int, part: Path) -> None:
    """Take an exclusive advisory lock on the part file: two processes never append to one file."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise FetchError(f"{part}: being downloaded by another process (locked)") from exc


def _open_part(part: Path, resume: bool) -> tuple[int, int]:
    """Open (and lock) the part file for appending -> ``(fd, bytes already there)``; never follows symlinks."""
    _refuse_symlink(part)
    flags = os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    if resume and part.exists():
        fd = os.open(part, flags | os.O_APPEND)
        _lock(fd, part)
        return fd, os.fstat(fd).st_size
    if part.exists():
        part.unlink()
    fd = os.open(part, flags | os.O_CREAT | os.O_EXCL, 0o644)
    _lock(fd, part)
    return fd, 0


def _total_from(resp: requests.Response, offset: int) -> int | None:
    cr = resp.headers.get("Content-Range")
    if resp.status_code == 206 and cr and "/" in cr:
        tail = cr.rsplit("/", 1)[1].strip()
        if tail.isdigit():
            return int(tail)
    cl = resp.headers.get("Content-Length")
    if cl and cl.isdigit() and resp.headers.get("Content-Encoding", "identity") == "identity":
        return int(cl) + (offset if resp.status_code == 206 else 0)
    return None


def download_file(
    session: requests.Session,
    url: str,
    dest: str | os.PathLike[str],
    *,
    size: int | None = None,
    checksum: Checksum | None = None,
    policy: RetryPolicy | None = None,
    progress: ProgressCallback | None = None,
    source: str = "",
    root: str | os.PathLike[str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ManifestEntry:
    """Download ``url`` to ``dest`` (see the module docstring); return its manifest entry.

    Parameters
    ----------
    session
        :class:`requests.Session` (credentials attached, see :mod:`firesmoke.fetch.http`).
    url
        File URL.
    dest
        Final path (its folder is created). Callers build it with
        :func:`firesmoke.paths.server_path`.
    size, checksum
        Expected size in bytes and checksum, when known (CMR metadata).
    policy
        Retry policy (attempts also bound the resumptions after dropped connections).
    progress
        ``progress(done, total, label)`` called as bytes arrive (``total`` 0 if unknown).
    root
        Folder the manifest path is made relative to.

    Raises
    ------
    ChecksumError
        Wrong size or checksum (the part file is deleted).
    FetchError, AuthError
        HTTP failures after retries.
    """
    policy = policy or RetryPolicy()
    dest = Path(dest)
    label = dest.name
    rel = os.path.relpath(dest, root) if root is not None else str(dest)
    shown_url = redact(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _refuse_symlink(dest)
    if dest.exists():
        problem = _verify(dest, size, checksum)
        if problem is None:
            log.debug("%s: present and verified, skipped", dest)
            n = dest.stat().st_size
            if progress:
                progress(n, n, label)
            return ManifestEntry(shown_url, rel, n, str(checksum) if checksum else None, "skipped", source)
        log.warning("%s: present but %s; downloading again", dest, problem)
    part = dest.with_name(dest.name + ".part")
    resumed = part.exists()
    expected = size
    attempt = 0
    while True:
        fd, offset = _open_part(part, resume=True)
        try:
            if expected is not None and offset >= expected:
                break  # complete part from an earlier run: verify below
            # identity: byte offsets of ranges and Content-Length must be those of the file itself
            headers = {"Accept-Encoding": "identity"}
            if offset:
                headers["Range"] = f"bytes={offset}-"
            resp = request(session, "GET", url, policy=policy, headers=headers, stream=True,
                           sleep=sleep, ok_status=(416,))
            with resp:
                if resp.status_code == 416:
                    if expected is None or offset != expected:
                        log.warning("%s: server refused range from %d; restarting", dest, offset)
                        os.ftruncate(fd, 0)
                        os.close(fd)
                        fd = -1
                        part.unlink()
                        attempt += 1
                        if attempt >= policy.attempts:
                            raise FetchError(f"{shown_url}: server refuses ranges")
                        continue
                    break
                if offset and resp.status_code != 206:
                    log.info("%s: server ignored the range request; restarting from 0", dest)
                    os.ftruncate(fd, 0)
                    offset = 0
                ctype = resp.headers.get("Content-Type", "").lower()
                if ctype.startswith("text/html") and dest.suffix.lower() not in (".html", ".htm"):
                    if offset == 0:  # nothing of ours in the part file: leave no trace
                        os.close(fd)
                        fd = -1
                        part.unlink(missing_ok=True)
                    raise AuthError(
                        f"{shown_url}: the server sent an HTML page instead of {dest.name} (an Earthdata "
                        "login page? check EARTHDATA_TOKEN or ~/.netrc, and that the application is "
                        "authorised in your Earthdata profile)")
                total = _total_from(resp, offset)
                if expected is None:
                    expected = total
                elif total is not None and total != expected:
                    log.warning("%s: server says %d bytes, metadata %d", dest, total, expected)
                done = offset
                try:
                    for block in resp.iter_content(_CHUNK):
                        os.write(fd, block)
                        done += len(block)
                        if progress:
                            progress(done, expected or 0, label)
                except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                        requests.Timeout) as exc:
                    attempt += 1
                    if attempt >= policy.attempts:
                        raise FetchError(
                            f"{shown_url}: connection lost {attempt} times; {done} bytes kept in {part} "
                            "for the next run") from exc
                    wait = policy.wait(attempt - 1)
                    log.info("%s: connection lost after %d bytes (%s); resuming in %.1f s",
                             dest, done, type(exc).__name__, wait)
                    resumed = True
                    sleep(wait)
                    continue
                if expected is not None and done < expected:
                    attempt += 1
                    if attempt >= policy.attempts:
                        raise FetchError(f"{shown_url}: got {done} of {expected} bytes {attempt} times")
                    resumed = True
                    sleep(policy.wait(attempt - 1))
                    continue
            break
        finally:
            if fd >= 0:
                os.fsync(fd)
                os.close(fd)
    problem = _verify(part, expected, checksum)
    if problem is not None:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{shown_url}: downloaded file rejected: {problem} (deleted {part.name})")
    os.replace(part, dest)
    n = dest.stat().st_size
    log.info("%s: %s (%d bytes)", dest, "resumed" if resumed else "downloaded", n)
    return ManifestEntry(shown_url, rel, n, str(checksum) if checksum else None,
                         "resumed" if resumed else "downloaded", source)
