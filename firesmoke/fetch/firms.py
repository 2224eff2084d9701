"""FIRMS active fires: the area API and archive downloads, written as CSV files.

Area API
--------
``{FIRMS}/api/area/csv/{MAP_KEY}/{source}/{west,south,east,north}/{day_range}/{date}``
returns the detections of ``source`` in the box for ``day_range`` days (1..5, the API's
rule: it answers "Invalid day range. Expects [1..5]." otherwise) starting at ``date``.
:func:`fetch_firms_area` splits a longer period into spans of at most
:data:`MAX_DAY_RANGE` days and streams each answer to
``out/firms/{source}_{first}_{last}.csv`` (through a temporary file renamed when complete
and checked; at most :data:`MAX_CSV_BYTES`, within the policy's deadline), the format
:func:`firesmoke.io.firms.read_firms` reads. A span that fails is one ``failed`` entry;
the others are fetched. Sources (:data:`FIRMS_SOURCES`): ``VIIRS_SNPP_NRT``, ``VIIRS_SNPP_SP``,
``VIIRS_NOAA20_NRT``, ``VIIRS_NOAA20_SP``, ``VIIRS_NOAA21_NRT``, ``MODIS_NRT``,
``MODIS_SP`` (NRT: near real time, the last months; SP: standard processing, the
archive). The ``MAP_KEY`` (free from FIRMS) is read from the environment and is masked
in logs and in the manifest.

A span file already there is skipped unless its last day is within the last
:data:`NRT_REFRESH_DAYS` days (NRT answers still change) or ``overwrite=True``.

Archive files
-------------
:func:`fetch_firms_archive` downloads FIRMS archive files (the CSV or ZIP that an
archive request delivers) with the resumable downloader and extracts the CSV members of
ZIPs into ``out/firms/`` (member names made safe; nothing written outside), streaming each
member to disk (at most :data:`MAX_CSV_BYTES` each, :data:`MAX_ZIP_MEMBERS` members). A bad
URL, a damaged archive, a member that is too large or not a detection CSV is one
``failed`` entry; the rest is kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from firesmoke.dates import as_date
from firesmoke.errors import InputError
from firesmoke.fetch.config import firms_map_key, redact, service_url
from firesmoke.fetch.download import ProgressCallback
from firesmoke.fetch.http import (
    AuthError,
    FetchError,
    RetryPolicy,
    Watchdog,
    check_url,
    new_session,
    request,
    shown,
)
from firesmoke.fetch.manifest import Manifest, ManifestEntry, read_manifest
from firesmoke.fetch.remote import FetchResult, RemoteFile, download_all
from firesmoke.io.burned_area.sinusoidal import _lon_intervals
from firesmoke.paths import atomic_writer, filename_from_url, server_path

__all__ = [
    "FIRMS_SOURCES",
    "MAX_CSV_BYTES",
    "MAX_DAY_RANGE",
    "MAX_ZIP_MEMBERS",
    "day_spans",
    "fetch_firms_archive",
    "fetch_firms_area",
]

log = logging.getLogger(__name__)

FIRMS_SOURCES = (
    "VIIRS_SNPP_NRT", "VIIRS_SNPP_SP", "VIIRS_NOAA20_NRT", "VIIRS_NOAA20_SP",
    "VIIRS_NOAA21_NRT", "MODIS_NRT", "MODIS_SP",
)
#: Longest ``DAY_RANGE`` the area API accepts: "[1..5]" (FIRMS area API documentation,
#: https://firms.modaps.eosdis.nasa.gov/api/area/ ; a longer range is answered "Invalid day
#: range. Expects [1..5]."; real clients fetch in 5-day chunks).
MAX_DAY_RANGE = 5
#: Largest CSV written from one area answer or one archive ZIP member, bytes (a whole-world
#: month of VIIRS detections is a few hundred MB).
MAX_CSV_BYTES = 4 << 30
#: Most members read from one archive ZIP.
MAX_ZIP_MEMBERS = 10_000
#: Span files ending this close to today are fetched again (NRT data still arrive).
NRT_REFRESH_DAYS = 3
FOLDER = "firms"


def day_spans(start: Any, end: Any, max_days: int = MAX_DAY_RANGE) -> list[tuple[dt.date, int]]:
    """``[(first day, day_range), ...]`` covering ``start..end`` (inclusive) in spans of <= ``max_days``."""
    if isinstance(max_days, bool) or not isinstance(max_days, int) or not 1 <= max_days <= MAX_DAY_RANGE:
        raise InputError(f"max_days must be 1..{MAX_DAY_RANGE} (the FIRMS area API's DAY_RANGE)",
                         field="max_days")
    d0, d1 = as_date(start, "start"), as_date(end, "end")
    if d1 < d0:
        raise FetchError(f"end {d1} is before start {d0}")
    out = []
    while d0 <= d1:
        n = min(max_days, (d1 - d0).days + 1)
        out.append((d0, n))
        d0 += dt.timedelta(days=n)
    return out


def _bbox_texts(bbox: Sequence[float]) -> list[str]:
    """``west,south,east,north`` strings for the API; a box across the antimeridian gives two."""
    left, bottom, right, top = (float(v) for v in bbox)
    bottom, top = max(bottom, -90.0), min(top, 90.0)
    return [",".join(f"{v:g}" for v in (lo, bottom, hi, top)) for lo, hi in _lon_intervals(left, right)]


def _check_csv(body: bytes, url: str) -> None:
    """Refuse a head of an answer that is not a detection CSV (AuthError for a refused key)."""
    head = body[:2000].decode("utf-8", "replace").lstrip("\ufeff").splitlines()
    first = head[0].lower() if head else ""
    if "latitude" not in first or "longitude" not in first:
        text = redact(" ".join(head[:3]))[:300]
        if "invalid" in text.lower() and "key" in text.lower():
            raise AuthError(f"{shown(url)}: FIRMS refused the MAP_KEY ({text})")
        raise FetchError(f"{shown(url)}: FIRMS answer is not a detection CSV ({text or 'empty'})")


def _span_ok(path: Path, rec: dict[str, Any] | None) -> str | bool:
    """Is the span file ``path`` complete? Its recorded checksum (a truthy string), True, or False.

    Checked against the size and SHA-256 the manifest recorded when it was written; a file
    the manifest does not know must at least be a non-empty detection CSV.
    """
    size = path.stat().st_size
    if size == 0:
        return False
    ck = rec.get("checksum") if isinstance(rec, dict) and rec.get("status") in ("downloaded", "skipped") else None
    if isinstance(ck, str) and ck.startswith("SHA-256:"):
        if rec.get("size") not in (None, size):  # type: ignore[union-attr]
            return False
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        return ck if h.hexdigest() == ck.split(":", 1)[1].lower() else False
    with open(path, "rb") as f:
        head = f.read(2000)
    try:
        _check_csv(head, str(path))
    except FetchError:
        return False
    return True


def _stream_csv(chunks: Any, dest: Path, root: Path, url: str, limit: int) -> tuple[int, str, int]:
    """Write the byte ``chunks`` of a CSV to ``dest`` atomically -> (bytes, sha256, rows).

    At most ``limit`` bytes; the head is checked (:func:`_check_csv`) before the file
    takes its name; any failure leaves ``dest`` as it was.
    """
    h = hashlib.sha256()
    head = b""
    n = lines = 0
    last = b""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(dest, root=root) as f:
        for block in chunks:
            if not block:
                continue
            n += len(block)
            if n > limit:
                raise FetchError(f"{shown(url)}: more than {limit} bytes (MAX_CSV_BYTES); stopped")
            if len(head) < 2000:
                head += block[: 2000 - len(head)]
            f.write(block)
            h.update(block)
            lines += block.count(b"\n")
            last = block[-1:]
        _check_csv(head, url)
    rows = max(0, lines - 1 + (0 if last == b"\n" or not n else 1))
    return n, h.hexdigest(), rows


def _response_chunks(resp: requests.Response, url: str, deadline: float) -> Any:
    """The body of a streamed response in blocks, within ``deadline`` seconds (FetchError)."""
    with Watchdog(resp, deadline) as dog:
        try:
            yield from resp.iter_content(1 << 16)
        except requests.RequestException:
            if dog.fired:
                raise FetchError(f"{shown(url)}: no complete answer within {deadline:g} s; "
                                 "stopped") from None
            raise FetchError(f"{shown(url)}: connection failed while reading") from None
    if dog.fired:
        raise FetchError(f"{shown(url)}: no complete answer within {deadline:g} s; stopped")


def fetch_firms_area(
    sources: Sequence[str],
    bbox: Sequence[float],
    start: Any,
    end: Any,
    out: str | os.PathLike[str],
    *,
    map_key: str | None = None,
    firms_url: str | None = None,
    session: requests.Session | None = None,
    policy: RetryPolicy | None = None,
    progress: ProgressCallback | None = None,
    manifest: Manifest | None = None,
    overwrite: bool = False,
    today: dt.date | None = None,
    dry_run: bool = False,
) -> FetchResult:
    """Fetch FIRMS detections for ``bbox`` and days ``start..end`` from the area API.

    Returns the manifest entries of the CSV files written under ``out/firms/`` (with
    ``dry_run``, the requests that would be made, status ``planned``; nothing is sent).
    A box across the antimeridian is asked in two parts (``..._part1.csv``, ``_part2``).
    Raises :class:`~firesmoke.fetch.http.AuthError` without a ``MAP_KEY`` or when FIRMS
    refuses it.
    """
    key = firms_map_key(map_key) or ("MAP_KEY" if dry_run else None)
    if not key:
        raise AuthError("FIRMS needs a MAP_KEY: set the MAP_KEY environment variable "
                        "(free key from https://firms.modaps.eosdis.nasa.gov/api/map_key/)")
    unknown = [s for s in sources if s.upper() not in FIRMS_SOURCES]
    if unknown:
        raise FetchError(f"unknown FIRMS source(s) {', '.join(unknown)}; known: {', '.join(FIRMS_SOURCES)}")
    base = service_url("firms", firms_url)
    root = Path(out)
    manifest = manifest or Manifest(root)
    session = session or new_session()
    today = today or dt.datetime.now(dt.UTC).date()
    boxes = _bbox_texts(bbox)
    spans = day_spans(start, end)
    before = read_manifest(manifest.path) if not dry_run else {}
    entries: list[ManifestEntry] = []
    total = len(spans) * len(sources) * len(boxes)
    jobs = [(src.upper(), k, box, first, n) for src in sources for k, box in enumerate(boxes) for first, n in spans]
    for source, k, box, first, n in jobs:
        last = first + dt.timedelta(days=n - 1)
        part = f"_part{k + 1}" if len(boxes) > 1 else ""
        dest = server_path(root, FOLDER, f"{source}_{first:%Y%m%d}_{last:%Y%m%d}{part}.csv")
        rel = os.path.relpath(dest, root)
        url = f"{base}/api/area/csv/{quote(key, safe='')}/{source}/{box}/{n}/{first.isoformat()}"
        shown_url = redact(url)
        fresh = (today - last).days < NRT_REFRESH_DAYS
        if dry_run:
            entries.append(ManifestEntry(shown_url, rel, None, None, "planned", "firms"))
        elif dest.exists() and not overwrite and not fresh and (known := _span_ok(dest, before.get(rel))):
            entries.append(manifest.add(ManifestEntry(shown_url, rel, dest.stat().st_size,
                                                      known if known is not True else None, "skipped", "firms")))
        else:
            pol = policy or RetryPolicy()
            try:
                resp = request(session, "GET", url, policy=pol, ok_status=(400,), stream=True)
                with resp:  # FIRMS says "Invalid MAP_KEY." with 200 or 400: the head check tells
                    n_bytes, sha, rows = _stream_csv(_response_chunks(resp, url, pol.answer_seconds), dest,
                                                     root, url, MAX_CSV_BYTES)
            except AuthError:
                raise
            except (FetchError, InputError, OSError) as exc:
                msg = redact(exc) if not isinstance(exc, OSError) else f"cannot write: {exc.strerror}"
                log.error("%s", msg)
                entries.append(manifest.add(ManifestEntry(shown_url, rel, None, None, "failed", "firms",
                                                          error=msg)))
                continue
            log.info("FIRMS %s %s..%s: %d detection(s)", source, first, last, rows)
            entries.append(manifest.add(ManifestEntry(
                shown_url, rel, n_bytes, f"SHA-256:{sha}", "downloaded",
                "firms", extra={"source": source, "first_day": first.isoformat(), "days": n, "rows": rows})))
        if progress and not dry_run:
            progress(len(entries), total, "FIRMS")
    return FetchResult(entries, None if dry_run else manifest.path)


def _extract_csvs(zpath: Path, root: Path, manifest: Manifest, url: str) -> list[ManifestEntry]:
    """Stream the CSV members of the archive ``zpath`` into ``root/firms/``; one entry each."""
    entries: list[ManifestEntry] = []
    source = "firms-archive"

    def failed(where: str, rel: str, error: str) -> None:
        log.error("%s: %s", where, error)
        entries.append(manifest.add(ManifestEntry(where, rel, None, None, "failed", source, error=error)))

    try:
        zf = zipfile.ZipFile(zpath)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        failed(shown(url), os.path.relpath(zpath, root), f"not a valid ZIP archive ({exc})")
        return entries
    with zf:
        if len(infos) > MAX_ZIP_MEMBERS:
            failed(shown(url), os.path.relpath(zpath, root),
                   f"{len(infos)} members, more than {MAX_ZIP_MEMBERS}; not unpacked")
            return entries
        for info in infos:
            if info.is_dir() or not info.filename.lower().endswith(".csv"):
                continue
            where = shown(url) + "#" + shown(info.filename, 200)
            try:
                name = Path(info.filename.replace("\\", "/")).name  # flatten: no folders from the archive
                dest = server_path(root, FOLDER, name)
            except InputError as exc:
                failed(where, str(info.filename)[:200], str(exc))
                continue
            rel = os.path.relpath(dest, root)
            if info.file_size > MAX_CSV_BYTES:
                failed(where, rel, f"member of {info.file_size} bytes, more than {MAX_CSV_BYTES}")
                continue
            try:
                with zf.open(info) as src:  # stop at the declared size: no zip bomb unpacked
                    chunks = iter(lambda: src.read(1 << 16), b"")
                    n, sha, _rows = _stream_csv(chunks, dest, root, f"{url}#{info.filename}",
                                                min(info.file_size, MAX_CSV_BYTES))
            except AuthError as exc:
                failed(where, rel, str(exc))
                continue
            except (FetchError, zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError,
                    EOFError, NotImplementedError, RuntimeError) as exc:
                failed(where, rel, redact(f"{type(exc).__name__}: {exc}"))
                continue
            entries.append(manifest.add(ManifestEntry(where, rel, n, f"SHA-256:{sha}", "written", source)))
    return entries


def fetch_firms_archive(
    urls: Sequence[str],
    out: str | os.PathLike[str],
    *,
    session: requests.Session | None = None,
    policy: RetryPolicy | None = None,
    progress: ProgressCallback | None = None,
    manifest: Manifest | None = None,
) -> FetchResult:
    """Download FIRMS archive CSV/ZIP files into ``out/firms/``; ZIPs are unpacked to CSVs."""
    root = Path(out)
    manifest = manifest or Manifest(root)
    session = session or new_session()
    files = []
    entries: list[ManifestEntry] = []
    for u in urls:
        try:
            check_url(u)
            name = filename_from_url(u)
        except (FetchError, InputError) as exc:
            log.error("%s", exc)
            entries.append(manifest.add(ManifestEntry(shown(str(u)), f"{FOLDER}/archive", None, None,
                                                      "failed", "firms-archive", error=redact(exc))))
            continue
        sub = f"{FOLDER}/archive" if not name.lower().endswith(".csv") else FOLDER
        files.append(RemoteFile(u, f"{sub}/{name}", source="firms-archive"))
    result = download_all(session, files, root, manifest=manifest, policy=policy, progress=progress, workers=1)
    entries.extend(result.entries)
    for f, e in zip(files, result.entries, strict=True):
        path = root / e.path
        if e.ok and path.suffix.lower() == ".zip":
            entries.extend(_extract_csvs(path, root, manifest, f.url))
        elif e.ok and path.suffix.lower() == ".csv":
            with open(path, "rb") as fh:
                head = fh.read(2000)
            try:
                _check_csv(head, f.url)
            except FetchError as exc:  # AuthError included: a login page saved as .csv
                path.unlink(missing_ok=True)  # not left where read_firms would read it
                entries.append(manifest.add(ManifestEntry(e.url, e.path, None, None, "failed",
                                                          "firms-archive", error=redact(exc))))
    return FetchResult(entries, manifest.path)
