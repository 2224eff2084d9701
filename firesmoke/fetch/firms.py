"""FIRMS active fires: the area API and archive downloads, written as CSV files.

Area API
--------
``{FIRMS}/api/area/csv/{MAP_KEY}/{source}/{west,south,east,north}/{day_range}/{date}``
returns the detections of ``source`` in the box for ``day_range`` days (1-10) starting
at ``date``. :func:`fetch_firms_area` splits a longer period into spans of at most 10
days and writes each answer to ``out/firms/{source}_{first}_{last}.csv`` (through a
``.part`` file renamed when complete), the format :func:`firesmoke.io.firms.read_firms`
reads. Sources (:data:`FIRMS_SOURCES`): ``VIIRS_SNPP_NRT``, ``VIIRS_SNPP_SP``,
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
ZIPs into ``out/firms/`` (member names made safe; nothing written outside).
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

import requests

from firesmoke.dates import as_date
from firesmoke.fetch.config import firms_map_key, redact, service_url
from firesmoke.fetch.download import ProgressCallback
from firesmoke.fetch.http import AuthError, FetchError, RetryPolicy, new_session, request
from firesmoke.fetch.manifest import Manifest, ManifestEntry
from firesmoke.fetch.remote import FetchResult, RemoteFile, download_all
from firesmoke.paths import atomic_write_bytes, filename_from_url, server_path

__all__ = [
    "FIRMS_SOURCES",
    "MAX_DAY_RANGE",
    "day_spans",
    "fetch_firms_archive",
    "fetch_firms_area",
]

log = logging.getLogger(__name__)

FIRMS_SOURCES = (
    "VIIRS_SNPP_NRT", "VIIRS_SNPP_SP", "VIIRS_NOAA20_NRT", "VIIRS_NOAA20_SP",
    "VIIRS_NOAA21_NRT", "MODIS_NRT", "MODIS_SP",
)
#: Longest ``day_range`` the area API accepts.
MAX_DAY_RANGE = 10
#: Span files ending this close to today are fetched again (NRT data still arrive).
NRT_REFRESH_DAYS = 3
FOLDER = "firms"


def day_spans(start: Any, end: Any, max_days: int = MAX_DAY_RANGE) -> list[tuple[dt.date, int]]:
    """``[(first day, day_range), ...]`` covering ``start..end`` (inclusive) in spans of <= ``max_days``."""
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
    from firesmoke.io.burned_area.sinusoidal import _lon_intervals

    left, bottom, right, top = (float(v) for v in bbox)
    bottom, top = max(bottom, -90.0), min(top, 90.0)
    return [",".join(f"{v:g}" for v in (lo, bottom, hi, top)) for lo, hi in _lon_intervals(left, right)]


def _check_csv(body: bytes, url: str) -> None:
    head = body[:2000].decode("utf-8", "replace").lstrip("\ufeff").splitlines()
    first = head[0].lower() if head else ""
    if "latitude" not in first or "longitude" not in first:
        text = redact(" ".join(head[:3]))[:300]
        if "invalid" in text.lower() and "key" in text.lower():
            raise AuthError(f"{redact(url)}: FIRMS refused the MAP_KEY ({text})")
        raise FetchError(f"{redact(url)}: FIRMS answer is not a detection CSV ({text or 'empty'})")


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
    entries: list[ManifestEntry] = []
    total = len(spans) * len(sources) * len(boxes)
    jobs = [(src.upper(), k, box, first, n) for src in sources for k, box in enumerate(boxes) for first, n in spans]
    for source, k, box, first, n in jobs:
        last = first + dt.timedelta(days=n - 1)
        part = f"_part{k + 1}" if len(boxes) > 1 else ""
        dest = server_path(root, FOLDER, f"{source}_{first:%Y%m%d}_{last:%Y%m%d}{part}.csv")
        rel = os.path.relpath(dest, root)
        url = f"{base}/api/area/csv/{key}/{source}/{box}/{n}/{first.isoformat()}"
        shown = redact(url)
        fresh = (today - last).days < NRT_REFRESH_DAYS
        if dry_run:
            entries.append(ManifestEntry(shown, rel, None, None, "planned", "firms"))
        elif dest.exists() and not overwrite and not fresh:
            entries.append(manifest.add(ManifestEntry(shown, rel, dest.stat().st_size, None, "skipped", "firms")))
        else:
            try:
                resp = request(session, "GET", url, policy=policy, ok_status=(400,))
                body = resp.content
                _check_csv(body, url)  # FIRMS says "Invalid MAP_KEY." with 200 or 400
            except AuthError:
                raise
            except FetchError as exc:
                log.error("%s", exc)
                entries.append(manifest.add(ManifestEntry(shown, rel, None, None, "failed", "firms",
                                                          error=str(exc))))
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(dest, body, root=root)
            rows = max(0, body.count(b"\n") - 1 + (0 if body.endswith(b"\n") else 1))
            log.info("FIRMS %s %s..%s: %d detection(s)", source, first, last, rows)
            entries.append(manifest.add(ManifestEntry(
                shown, rel, len(body), f"SHA-256:{hashlib.sha256(body).hexdigest()}", "downloaded",
                "firms", extra={"source": source, "first_day": first.isoformat(), "days": n, "rows": rows})))
        if progress and not dry_run:
            progress(len(entries), total, "FIRMS")
    return FetchResult(entries, None if dry_run else manifest.path)


def _extract_csvs(zpath: Path, root: Path, manifest: Manifest, url: str) -> list[ManifestEntry]:
    entries = []
    try:
        zf = zipfile.ZipFile(zpath)
    except zipfile.BadZipFile as exc:
        raise FetchError(f"{zpath}: not a valid ZIP archive ({exc})") from exc
    with zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.lower().endswith(".csv"):
                continue
            name = Path(info.filename.replace("\\", "/")).name  # flatten: no folders from the archive
            dest = server_path(root, FOLDER, name)
            with zf.open(info) as src:
                data = src.read()
            _check_csv(data, f"{url}#{info.filename}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(dest, data, root=root)
            entries.append(manifest.add(ManifestEntry(
                redact(url) + "#" + info.filename, os.path.relpath(dest, root), len(data),
                f"SHA-256:{hashlib.sha256(data).hexdigest()}", "written", "firms-archive")))
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
    for u in urls:
        name = filename_from_url(u)
        sub = f"{FOLDER}/archive" if not name.lower().endswith(".csv") else FOLDER
        files.append(RemoteFile(u, f"{sub}/{name}", source="firms-archive"))
    result = download_all(session, files, root, manifest=manifest, policy=policy, progress=progress, workers=1)
    entries = list(result.entries)
    for f, e in zip(files, result.entries, strict=True):
        path = root / e.path
        if e.ok and path.suffix.lower() == ".zip":
            entries.extend(_extract_csvs(path, root, manifest, f.url))
        elif e.ok and path.suffix.lower() == ".csv":
            with open(path, "rb") as fh:
                _check_csv(fh.read(2000), f.url)
    return FetchResult(entries, manifest.path)
