"""``s3://`` objects (e.g. Earth Search ``sentinel-2-l1c`` assets) through fsspec/s3fs.

The Sentinel-2 L1C bucket Earth Search points at is *requester pays*: reading it needs AWS
credentials (the standard chain: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, an instance role) and the reader pays the transfer. :func:`download_s3`
reads such an object with ``requester_pays=True`` into ``dest`` with the same guarantees as
:func:`firesmoke.fetch.download.download_file` (lock, part file, bounded size and time,
verification, atomic rename); without s3fs or without credentials it raises a
:class:`FetchError` saying so, which :func:`firesmoke.fetch.remote.download_all` lists as
the file's failure. ``FIRESMOKE_S3_ENDPOINT_URL`` (or botocore's own ``AWS_ENDPOINT_URL``)
points it at another S3 service (a mirror, a test server).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from firesmoke.fetch.config import redact
from firesmoke.fetch.download import (
    Checksum,
    _acquire,
    _present,
    _refuse_symlink,
    _release,
    _verify,
    file_digest,
)
from firesmoke.fetch.http import FetchError, RetryPolicy, shown
from firesmoke.fetch.manifest import ManifestEntry

__all__ = ["S3_ENDPOINT_ENV", "download_s3"]

log = logging.getLogger(__name__)

S3_ENDPOINT_ENV = "FIRESMOKE_S3_ENDPOINT_URL"
_CHUNK = 1 << 20


def _filesystem():  # -> s3fs.S3FileSystem
    try:
        import s3fs
    except ImportError:  # pragma: no cover - s3fs is a dependency of the s3 extra
        raise FetchError("reading s3:// needs s3fs (pip install s3fs)") from None
    import botocore.session

    if botocore.session.get_session().get_credentials() is None:
        raise FetchError("no AWS credentials found; the bucket is requester pays, so reading it "
                         "needs them (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE); "
                         "not downloaded")
    endpoint = os.environ.get(S3_ENDPOINT_ENV)
    kwargs = {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}
    return s3fs.S3FileSystem(anon=False, requester_pays=True, skip_instance_cache=True, **kwargs)


def download_s3(
    url: str,
    dest: str | os.PathLike[str],
    *,
    size: int | None = None,
    checksum: Checksum | None = None,
    policy: RetryPolicy | None = None,
    source: str = "",
    root: str | os.PathLike[str] | None = None,
    recorded: tuple[int | None, Checksum | None] | None = None,
) -> ManifestEntry:
    """Copy the ``s3://`` object ``url`` to ``dest``; return its manifest entry.

    Raises
    ------
    FetchError
        No s3fs, no credentials, access refused, a missing object, more bytes than
        announced or allowed, the deadline passed (message with secrets masked).
    """
    policy = policy or RetryPolicy()
    dest = Path(dest)
    shown_url = shown(url)
    if not url.startswith("s3://") or any(ord(c) < 0x20 for c in url) or len(url) <= 5:
        raise FetchError(f"{shown_url}: not an s3:// object URL")
    rel = os.path.relpath(dest, root) if root is not None else str(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _refuse_symlink(dest)
    lock_path = dest.with_name(dest.name + ".lock")
    fd_lock = _acquire(lock_path, policy.deadline)
    try:
        if dest.exists() and _present(dest, size, checksum, recorded) is None:
            known = checksum or (recorded[1] if recorded and size is None else None)
            return ManifestEntry(shown_url, rel, dest.stat().st_size, str(known) if known else None,
                                 "skipped", source)
        fs = _filesystem()
        part = dest.with_name(dest.name + ".part")
        _refuse_symlink(part)
        part.unlink(missing_ok=True)
        t_end = time.monotonic() + policy.deadline
        try:
            info = fs.info(url)
            remote_size = info.get("size") if isinstance(info.get("size"), int) else None
            limit = max(x for x in (size, remote_size, 0) if x is not None) or policy.max_download
            if limit > policy.max_download:
                raise FetchError(f"{shown_url}: {limit} bytes, more than the limit of {policy.max_download}")
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            done = 0
            with fs.open(url, "rb", block_size=_CHUNK) as src, os.fdopen(os.open(part, flags, 0o644), "wb") as out:
                while block := src.read(min(_CHUNK, limit - done + 1)):
                    if done + len(block) > limit:
                        raise FetchError(f"{shown_url}: more bytes than the {limit} announced; stopped")
                    out.write(block)
                    done += len(block)
                    if time.monotonic() > t_end:
                        raise FetchError(f"{shown_url}: not complete within the deadline of "
                                         f"{policy.deadline:g} s")
                out.flush()
                os.fsync(out.fileno())
        except FetchError:
            part.unlink(missing_ok=True)
            raise
        except Exception as exc:  # botocore/s3fs errors: access denied, no such key, network
            part.unlink(missing_ok=True)
            raise FetchError(f"{shown_url}: S3 read failed ({type(exc).__name__}: "
                             f"{redact(str(exc))[:200]})") from None
        problem = _verify(part, size if size is not None else remote_size, checksum)
        if problem is not None:
            part.unlink(missing_ok=True)
            raise FetchError(f"{shown_url}: downloaded object rejected: {problem}")
        if checksum is None:
            checksum = Checksum("SHA-256", file_digest(part, "sha256"))
        _refuse_symlink(dest)
        os.replace(part, dest)
        log.info("%s: downloaded from S3 (%d bytes)", dest, done)
        return ManifestEntry(shown_url, rel, done, str(checksum), "downloaded", source)
    finally:
        _release(lock_path, fd_lock)
