"""Resumable, verified, atomic, bounded downloads of one file, safe under concurrency.

:func:`download_file` writes ``dest`` only through ``dest.part``:

0. The URL is checked (http(s), no control characters, no ``..`` segment) and a lock
   ``dest.lock`` is taken (``flock``; a second process, e.g. another ``firesmoke fetch``
   into the same folder, waits for the first and then finds the file verified). The lock
   file is removed on release; a waiter that wakes on a removed lock file tries again.
1. ``dest`` already there and verified -> ``skipped``. Verified means: the size and
   checksum the service published when it did, else the size and SHA-256 this folder's
   manifest recorded when it was downloaded; an empty file with nothing to check it
   against is never taken as complete. A ``dest`` that fails verification (a right size
   with a wrong checksum included) is downloaded again (and replaced at the end).
2. ``dest.part`` there (an earlier interrupted run) -> resumed with ``Range: bytes=N-``;
   a server that answers 200 instead of 206 restarts the file from zero. The part file is
   never opened through a symlink (``O_NOFOLLOW``; a symlinked ``.part`` or ``dest`` is
   refused) and is locked too.
3. A connection dropped mid-file, HTTP 429 or 5xx -> retried with backoff (honouring
   ``Retry-After``), continuing from the bytes already in the part file.
4. Bounded: writing stops at the expected size (metadata, else ``Content-Length`` /
   ``Content-Range``; extra bytes are dropped), or at :attr:`RetryPolicy.max_download`
   when no size is known (an endless stream fails there); every try has a total deadline
   (:attr:`RetryPolicy.deadline`) besides the per-read timeout.
5. The part file is checked against the expected size and checksum (MD5 / SHA-1 /
   SHA-256 / SHA-512 when known); a mismatch deletes it and raises :class:`ChecksumError`.
6. Only then is it flushed to disk and renamed to ``dest`` (atomic on POSIX): a file
   with the final name is always complete. The manifest entry records its size and
   checksum (the published one, else a SHA-256 computed here) for step 1 of later runs.
"""

from __future__ import annotations

import contextlib
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
from firesmoke.fetch.http import (
    AuthError,
    ChecksumError,
    FetchError,
    RetryPolicy,
    Watchdog,
    check_url,
    request,
    shown,
)
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
    def parse(cls, text: object) -> Checksum | None:
        """``"ALGO:hex"`` -> a checksum; None for anything else (not a string, no colon)."""
        if not isinstance(text, str) or ":" not in text:
            return None
        algo, value = text.split(":", 1)
        return cls.make(algo, value)

    @classmethod
    def make(cls, algorithm: object, value: object) -> Checksum | None:
        """A checksum from metadata fields, or None when they are not a known algorithm and hex.

        Raises
        ------
        FetchError
            When the fields are there but malformed (not strings, not hex): the record is
            damaged and its file cannot be verified.
        """
        if algorithm in (None, "") and value in (None, ""):
            return None
        if not isinstance(algorithm, str) or not isinstance(value, str):
            raise FetchError(f"checksum fields are not text ({type(algorithm).__name__}, "
                             f"{type(value).__name__})")
        v = value.strip().lower()
        if not v or len(v) > 256 or any(c not in "0123456789abcdef" for c in v):
            raise FetchError("checksum value is not hexadecimal")
        return cls(algorithm.strip(), v)


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file (read in 1 MiB blocks)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, size: int | None, checksum: Checksum | None) -> str | None:
    """None if ``path`` matches ``size`` and ``checksum`` (those known), else the problem."""
    actual = os.stat(path, follow_symlinks=False).st_size
    if size is not None and actual != size:
        return f"size {actual} bytes, expected {size}"
    if checksum is not None:
        try:
            algo = checksum.hashlib_name
        except ValueError as exc:  # an algorithm hashlib lacks: size only
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


#: Poll interval while another process holds a download's lock, seconds.
LOCK_POLL = 0.2


def _acquire(lock_path: Path, wait: float) -> int:
    """Hold ``lock_path`` exclusively (``flock``) -> its fd; wait at most ``wait`` seconds.

    A lock file removed by its holder between our open and our lock is detected (inode
    check) and the lock is taken again on the new file, so two waiters never both hold it.
    """
    import fcntl

    t_end = time.monotonic() + wait
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        _refuse_symlink(lock_path)
        try:
            fd = os.open(lock_path, flags, 0o644)
        except OSError as exc:
            raise FetchError(f"{lock_path}: cannot create the download lock ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            if time.monotonic() >= t_end:
                raise FetchError(f"{lock_path.with_suffix('')}: being downloaded by another process "
                                 f"(locked for more than {wait:g} s)") from None
            time.sleep(LOCK_POLL)
            continue
        try:
            same = os.stat(lock_path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # its holder removed it while we waited: lock the new one


def _release(lock_path: Path, fd: int) -> None:
    try:
        os.unlink(lock_path)  # while still holding it: waiters see the inode change
    except FileNotFoundError:  # pragma: no cover - removed by hand
        pass
    os.close(fd)


def _open_part(part: Path, resume: bool) -> tuple[int, int]:
    """Open (and lock) the part file for appending -> ``(fd, bytes already there)``; never follows symlinks."""
    _refuse_symlink(part)
    flags = os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    if resume and part.exists():
        fd = os.open(part, flags | os.O_APPEND)
        _lock(fd, part)
        return fd, os.fstat(fd).st_size
    part.unlink(missing_ok=True)
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
    if cl and cl.isdigit() and len(cl) < 19 and resp.headers.get("Content-Encoding", "identity") == "identity":
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
    recorded: tuple[int | None, Checksum | None] | None = None,
    lock_wait: float | None = None,
) -> ManifestEntry:
    """Download ``url`` to ``dest`` (see the module docstring); return its manifest entry.

    Parameters
    ----------
    session
        :class:`requests.Session` (credentials attached, see :mod:`firesmoke.fetch.http`).
    url
        File URL (http or https).
    dest
        Final path (its folder is created). Callers build it with
        :func:`firesmoke.paths.server_path`.
    size, checksum
        Expected size in bytes and checksum, when known (CMR metadata).
    policy
        Retry policy and limits (attempts also bound the resumptions after dropped
        connections; ``deadline``, ``max_download``).
    progress
        ``progress(done, total, label)`` called as bytes arrive (``total`` 0 if unknown).
    root
        Folder the manifest path is made relative to.
    recorded
        ``(size, checksum)`` an earlier run recorded for ``dest`` in the manifest: what a
        file already present is checked against when ``size`` and ``checksum`` are None.
    lock_wait
        Longest wait for another process downloading the same file, seconds (default: the
        policy's deadline).

    Raises
    ------
    ChecksumError
        Wrong size or checksum (the part file is deleted).
    FetchError, AuthError
        HTTP failures after retries, a refused URL, a download over the limits.
    """
    policy = policy or RetryPolicy()
    dest = Path(dest)
    check_url(url)
    shown_url = shown(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _refuse_symlink(dest)
    lock_path = dest.with_name(dest.name + ".lock")
    fd_lock = _acquire(lock_path, policy.deadline if lock_wait is None else lock_wait)
    try:
        return _download_locked(session, url, shown_url, dest, size=size, checksum=checksum,
                                policy=policy, progress=progress, source=source, root=root,
                                sleep=sleep, recorded=recorded)
    finally:
        _release(lock_path, fd_lock)


def _present(dest: Path, size: int | None, checksum: Checksum | None,
             recorded: tuple[int | None, Checksum | None] | None) -> str | None:
    """None when ``dest`` is complete by what is known of it, else why it is not."""
    if size is None and checksum is None and recorded is not None:
        size, checksum = recorded
    if size is None and checksum is None and os.stat(dest, follow_symlinks=False).st_size == 0:
        return "empty, and no size or checksum to tell whether that is right"
    return _verify(dest, size, checksum)


def _download_locked(session: requests.Session, url: str, shown_url: str, dest: Path, *,
                     size: int | None, checksum: Checksum | None, policy: RetryPolicy,
                     progress: ProgressCallback | None, source: str,
                     root: str | os.PathLike[str] | None, sleep: Callable[[float], None],
                     recorded: tuple[int | None, Checksum | None] | None) -> ManifestEntry:
    label = dest.name
    rel = os.path.relpath(dest, root) if root is not None else str(dest)
    _refuse_symlink(dest)
    if dest.exists():
        problem = _present(dest, size, checksum, recorded)
        if problem is None:
            log.debug("%s: present and verified, skipped", dest)
            n = dest.stat().st_size
            if progress:
                progress(n, n, label)
            known = checksum or (recorded[1] if recorded and size is None else None)
            return ManifestEntry(shown_url, rel, n, str(known) if known else None, "skipped", source)
        log.warning("%s: present but %s; downloading again", dest, problem)
    part = dest.with_name(dest.name + ".part")
    try:
        return _fetch_part(session, url, shown_url, dest, part, rel, size=size, checksum=checksum,
                           policy=policy, progress=progress, source=source, sleep=sleep)
    except BaseException:
        with contextlib.suppress(OSError):  # an empty part file is no progress worth keeping
            if os.stat(part, follow_symlinks=False).st_size == 0:
                part.unlink()
        raise


def _fetch_part(session: requests.Session, url: str, shown_url: str, dest: Path, part: Path, rel: str, *,
                size: int | None, checksum: Checksum | None, policy: RetryPolicy,
                progress: ProgressCallback | None, source: str,
                sleep: Callable[[float], None]) -> ManifestEntry:
    label = dest.name
    resumed = part.exists()
    expected = size
    attempt = 0
    while True:
        fd, offset = _open_part(part, resume=True)
        try:
            if expected is not None and offset >= expected:
                if offset > expected:  # more than the file should hold: start again
                    os.ftruncate(fd, 0)
                    offset = 0
                else:
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
                        part.unlink(missing_ok=True)
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
                # stop at the larger announced size (a disagreement fails verification below)
                announced = [x for x in (expected, total) if x is not None]
                limit = max(announced) if announced else policy.max_download
                if limit > policy.max_download:
                    raise FetchError(f"{shown_url}: {limit} bytes announced, more than the limit "
                                     f"of {policy.max_download} (RetryPolicy.max_download)")
                done = offset
                over = False
                try:
                    with Watchdog(resp, policy.deadline) as dog:
                        for block in resp.iter_content(_CHUNK):
                            if done + len(block) > limit:
                                block = block[: limit - done]
                                over = True
                            if block:
                                os.write(fd, block)
                                done += len(block)
                            if progress:
                                progress(done, expected or 0, label)
                            if over:
                                break
                except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                        requests.Timeout, requests.exceptions.ContentDecodingError) as exc:
                    if dog.fired:
                        raise FetchError(f"{shown_url}: not complete within the deadline of "
                                         f"{policy.deadline:g} s; {done} bytes kept in {part.name} "
                                         "for the next run") from None
                    attempt += 1
                    if attempt >= policy.attempts:
                        raise FetchError(
                            f"{shown_url}: connection lost {attempt} times; {done} bytes kept in {part} "
                            "for the next run") from None
                    wait = policy.wait(attempt - 1)
                    log.info("%s: connection lost after %d bytes (%s); resuming in %.1f s",
                             dest, done, type(exc).__name__, wait)
                    resumed = True
                    sleep(wait)
                    continue
                if dog.fired and not over and (expected is None or done < expected):
                    raise FetchError(f"{shown_url}: not complete within the deadline of "
                                     f"{policy.deadline:g} s; {done} bytes kept in {part.name} "
                                     "for the next run")
                if over:
                    if not announced:
                        os.ftruncate(fd, 0)
                        raise FetchError(f"{shown_url}: no size announced and more than "
                                         f"{policy.max_download} bytes sent (RetryPolicy.max_download); "
                                         "stopped and discarded")
                    log.warning("%s: the server sent more than the %d bytes announced; stopped there",
                                dest, limit)
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
    if os.stat(part).st_size == 0 and expected is None and checksum is None:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{shown_url}: empty answer and no size announced; nothing kept")
    if checksum is None:  # record what we got, so that later runs can verify it
        checksum = Checksum("SHA-256", file_digest(part, "sha256"))
    _refuse_symlink(dest)
    os.replace(part, dest)
    n = dest.stat().st_size
    log.info("%s: %s (%d bytes)", dest, "resumed" if resumed else "downloaded", n)
    return ManifestEntry(shown_url, rel, n, str(checksum), "resumed" if resumed else "downloaded", source)
