"""NASA CMR granule search and Earthdata HTTPS downloads.

Search
------
:func:`search_granules` queries ``{CMR}/search/granules.umm_json`` (or ``granules.json``)
with ``short_name``, ``version``, ``temporal`` and ``bounding_box`` and follows the pages
with the ``CMR-Search-After`` header, as CMR documents it (the response header of one
page is sent as a request header for the next, until a page comes back without it or
empty). Each UMM-G record becomes a :class:`Granule`: the ``GET DATA`` HTTPS URL, the file
size in bytes and the checksum from ``DataGranule.ArchiveAndDistributionInformation``
(when the DAAC publishes them), the start time and concept id.

Limits (CMR Search API documentation, "Paging Details" and "Search After"): ``page_size``
is 1..2000 (:data:`PAGE_SIZE`), paging goes by the ``CMR-Search-After`` header (CMR
refuses deep ``page_num`` paging), and one query serves at most 1,000,000 results. A
search stops with a :class:`FetchError` after :data:`MAX_PAGES` pages or
:data:`MAX_RESULTS` granules (an endless or repeating paging is a broken server), unless
``max_results`` asks for fewer. A page that is not a JSON object with a list of items is an
error; one record that cannot be used (no usable URL, a URL with ``..`` or NUL, a
malformed size or checksum) is one listed failure (``failures=``), the rest is kept.

Products (:data:`EARTHDATA_PRODUCTS`)
-------------------------------------
VIIRS L1B 750 m swaths come in observation/geolocation pairs: ``VNP02MOD``/``VNP03MOD``
(S-NPP) and ``VJ102MOD``/``VJ103MOD`` (NOAA-20); asking for either member fetches both,
and only granules whose pair exists (same ``AYYYYDDD.HHMM``) are kept. Burned area:
``MCD64A1`` (MODIS C6.1, version ``061``) and ``VNP64A1`` (VIIRS). A version of None
searches every version CMR holds; pass ``version=`` to pin one.

Why not earthaccess: its CMR and Earthdata Login hosts are fixed (production or UAT), so
it cannot be pointed at a mirror or a test server; ``login()`` contacts
urs.earthdata.nasa.gov; and its downloads write straight to the final file name without
range resumption or checksum verification, so an interrupted file looks complete. The
search protocol is small enough to speak directly with ``requests``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import requests

from firesmoke.errors import InputError
from firesmoke.fetch.config import EarthdataCredentials, earthdata_credentials, redact, service_url
from firesmoke.fetch.download import Checksum, ProgressCallback
from firesmoke.fetch.http import (
    AuthError,
    FetchError,
    RetryPolicy,
    check_url,
    new_session,
    request,
    shown,
)
from firesmoke.fetch.manifest import Manifest, ManifestEntry
from firesmoke.fetch.remote import FetchResult, RemoteFile, download_all
from firesmoke.paths import filename_from_url

__all__ = [
    "EARTHDATA_PRODUCTS",
    "EarthdataProduct",
    "Granule",
    "fetch_earthdata",
    "parse_granules",
    "search_granules",
]

log = logging.getLogger(__name__)

#: Largest ``page_size`` CMR accepts (1..2000; CMR Search API, "Paging Details").
PAGE_SIZE = 2000
#: Most pages one search follows (at 2000 a page: 1,000,000 results, CMR's own ceiling).
MAX_PAGES = 500
#: Most granules one search returns unless ``max_results`` says otherwise.
MAX_RESULTS = 200_000
_DATA_REL = "http://esipfed.org/ns/fedsearch/1.1/data#"
_GRANULE_KEY = re.compile(r"\.A(\d{7}\.\d{4})\.")


@dataclass(frozen=True)
class EarthdataProduct:
    """A CMR collection firesmoke knows: short name, default version, geolocation pair."""

    short_name: str
    version: str | None
    description: str
    pair: str | None = None
    folder: str = "burned_area"
    """Sub-folder of the output folder (L1B pairs share one, as the granule discovery wants)."""


EARTHDATA_PRODUCTS: dict[str, EarthdataProduct] = {
    p.short_name: p
    for p in (
        EarthdataProduct("VNP02MOD", None, "VIIRS/NPP L1B 750 m radiances (6-min swath)", pair="VNP03MOD", folder="viirs_l1b"),
        EarthdataProduct("VNP03MOD", None, "VIIRS/NPP L1 750 m geolocation", pair="VNP02MOD", folder="viirs_l1b"),
        EarthdataProduct("VJ102MOD", None, "VIIRS/NOAA-20 L1B 750 m radiances (6-min swath)", pair="VJ103MOD", folder="viirs_l1b"),
        EarthdataProduct("VJ103MOD", None, "VIIRS/NOAA-20 L1 750 m geolocation", pair="VJ102MOD", folder="viirs_l1b"),
        EarthdataProduct("MCD64A1", "061", "MODIS Terra+Aqua burned area monthly 500 m (C6.1)"),
        EarthdataProduct("VNP64A1", None, "VIIRS/NPP burned area monthly 500 m"),
    )
}


@dataclass(frozen=True)
class Granule:
    """One CMR granule: where to download it and how to check it."""

    short_name: str
    name: str
    url: str
    size: int | None = None
    checksum: Checksum | None = None
    start: datetime | None = None
    concept_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def remote(self, folder: str | None = None) -> RemoteFile:
        return RemoteFile(self.url, f"{folder or self.short_name}/{self.name}", self.size,
                          self.checksum, source=f"cmr:{self.short_name}",
                          meta={"concept_id": self.concept_id})


def _iso(value: Any, end: bool) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    d = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    return f"{d.isoformat()}T23:59:59Z" if end else f"{d.isoformat()}T00:00:00Z"


def _cmr_bbox(bbox: Sequence[float]) -> str:
    left, bottom, right, top = (float(v) for v in bbox)
    if right - left >= 360:
        left, right = -180.0, 180.0
    if left < -180:
        left += 360  # CMR takes west > east for boxes across the antimeridian
    if right > 180:
        right -= 360
    return ",".join(f"{v:g}" for v in (left, max(bottom, -90.0), right, min(top, 90.0)))


def _size(value: Any) -> int | None:
    """A byte count from metadata: a non-negative integer (an integral float too), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and 0 <= value < 2**62:
        return int(value)
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _umm_granule(item: Any, short_name: str) -> Granule | None:
    """One UMM-G record -> a granule; None when it has no download URL; FetchError if damaged."""
    if not isinstance(item, dict):
        raise FetchError(f"record is a {type(item).__name__}, not an object")
    umm = _dict(item.get("umm"))
    meta = _dict(item.get("meta"))
    infos = _dict(umm.get("DataGranule")).get("ArchiveAndDistributionInformation") or []
    infos = infos if isinstance(infos, list) else []
    by_name = {i.get("Name"): i for i in infos if isinstance(i, dict) and isinstance(i.get("Name"), str)}
    related = umm.get("RelatedUrls") or []
    urls = [u for u in (related if isinstance(related, list) else [])
            if isinstance(u, dict) and u.get("Type") == "GET DATA" and isinstance(u.get("URL"), str)
            and u["URL"].lower().startswith(("https://", "http://"))]
    if not urls:
        log.warning("granule %s has no HTTPS GET DATA URL; skipped",
                    shown(str(meta.get("concept-id") or umm.get("GranuleUR")), 100))
        return None
    chosen = next((u for u in urls if _safe_name(u["URL"]) in by_name), urls[0])
    url = check_url(chosen["URL"])
    name = filename_from_url(url)
    info = by_name.get(name) or (infos[0] if len(infos) == 1 and isinstance(infos[0], dict) else {})
    ck = _dict(info.get("Checksum"))
    checksum = Checksum.make(ck.get("Algorithm"), ck.get("Value"))
    start = _dict(_dict(umm.get("TemporalExtent")).get("RangeDateTime")).get("BeginningDateTime")
    short = _dict(umm.get("CollectionReference")).get("ShortName", short_name)
    concept = meta.get("concept-id", "")
    return Granule(
        short_name=short if isinstance(short, str) else short_name,
        name=name, url=url, size=_size(info.get("SizeInBytes")),
        checksum=checksum, start=_parse_time(start), concept_id=concept if isinstance(concept, str) else "",
    )


def _safe_name(url: str) -> str | None:
    try:
        return filename_from_url(url)
    except (InputError, ValueError):
        return None


def _json_granule(entry: Any, short_name: str) -> Granule | None:
    if not isinstance(entry, dict):
        raise FetchError(f"entry is a {type(entry).__name__}, not an object")
    links = entry.get("links") or []
    links = [lk for lk in (links if isinstance(links, list) else [])
             if isinstance(lk, dict) and lk.get("rel") == _DATA_REL and isinstance(lk.get("href"), str)
             and lk["href"].lower().startswith(("https://", "http://")) and not lk.get("inherited")]
    if not links:
        log.warning("granule %s has no HTTPS data link; skipped", shown(str(entry.get("id")), 100))
        return None
    url = check_url(links[0]["href"])
    cid = entry.get("id", "")
    return Granule(short_name=short_name, name=filename_from_url(url), url=url,
                   start=_parse_time(entry.get("time_start")), concept_id=cid if isinstance(cid, str) else "")


def _parse_time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _record_id(rec: Any) -> str:
    if isinstance(rec, dict):
        meta = _dict(rec.get("meta"))
        for v in (meta.get("concept-id"), _dict(rec.get("umm")).get("GranuleUR"), rec.get("id")):
            if isinstance(v, str) and v:
                return shown(v, 100)
    return "?"


def parse_granules(body: Any, short_name: str,
                   failures: list[tuple[str, str]] | None = None) -> list[Granule]:
    """Granules of one CMR response page (UMM-JSON ``items`` or JSON ``feed.entry``).

    A record that cannot be used is logged and appended to ``failures`` as ``(record id,
    reason)``; the page itself must be a JSON object with a list of records
    (:class:`FetchError` otherwise).
    """
    if not isinstance(body, dict):
        raise FetchError("unexpected CMR response: not a JSON object")
    if "items" in body:
        records, parse = body["items"], _umm_granule
    elif "feed" in body:
        records, parse = _dict(body["feed"]).get("entry", []), _json_granule
    else:
        raise FetchError("unexpected CMR response: neither UMM-JSON 'items' nor JSON 'feed'")
    if not isinstance(records, list):
        raise FetchError(f"unexpected CMR response: the records are {type(records).__name__}, not a list")
    out: list[Granule] = []
    for rec in records:
        try:
            g = parse(rec, short_name)
        except (FetchError, InputError, TypeError, ValueError, AttributeError, KeyError) as exc:
            reason = f"unusable CMR record: {redact(exc)}"
            log.warning("%s %s: %s", short_name, _record_id(rec), reason)
            if failures is not None:
                failures.append((_record_id(rec), reason))
            continue
        if g is not None:
            out.append(g)
    return out


def _hits(value: Any) -> int | None:
    """``CMR-Hits`` / ``hits`` as an int, or None when missing or not an integer."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 19:
        return int(value.strip())
    return None


def _pages(session: requests.Session, url: str, params: dict[str, Any], policy: RetryPolicy | None,
           max_results: int | None) -> Iterator[dict[str, Any]]:
    search_after: str | None = None
    seen = 0
    cap = max_results if max_results is not None else MAX_RESULTS
    for page in range(MAX_PAGES):
        headers = {"Accept": "application/json"}
        if search_after:
            headers["CMR-Search-After"] = search_after
        resp = request(session, "GET", url, params=params, headers=headers, policy=policy)
        try:
            body = resp.json()
        except ValueError:
            raise FetchError(f"{shown(url)}: CMR answered something that is not JSON") from None
        if isinstance(body, dict) and "errors" in body:
            errors = body["errors"] if isinstance(body["errors"], list) else [body["errors"]]
            raise FetchError(f"{shown(url)}: CMR error: {redact('; '.join(map(str, errors)))[:300]}")
        if not isinstance(body, dict):
            raise FetchError(f"{shown(url)}: CMR answered a JSON {type(body).__name__}, not an object")
        records = body.get("items", _dict(body.get("feed")).get("entry", []))
        if not isinstance(records, list):
            raise FetchError(f"{shown(url)}: CMR page {page + 1}: the records are "
                             f"{type(records).__name__}, not a list")
        n = len(records)
        yield body
        seen += n
        after = resp.headers.get("CMR-Search-After")
        hits = _hits(resp.headers.get("CMR-Hits"))
        if hits is None:
            hits = _hits(body.get("hits"))
        if not after or n == 0 or (hits is not None and seen >= hits):
            return
        if max_results is not None and seen >= max_results:
            return
        if seen >= cap:
            raise FetchError(f"{shown(url)}: more than {cap} granules (MAX_RESULTS); narrow the "
                             "period or region, or pass max_results")
        if after == search_after:
            raise FetchError(f"{shown(url)}: CMR sent the same CMR-Search-After twice (a paging loop); "
                             f"stopped after {page + 1} pages")
        search_after = after
    raise FetchError(f"{shown(url)}: more than {MAX_PAGES} pages (MAX_PAGES); stopped")


def search_granules(
    short_name: str,
    start: Any,
    end: Any,
    bbox: Sequence[float] | None = None,
    *,
    version: str | None = None,
    cmr_url: str | None = None,
    session: requests.Session | None = None,
    policy: RetryPolicy | None = None,
    fmt: str = "umm_json",
    page_size: int = PAGE_SIZE,
    max_results: int | None = None,
    provider: str | None = None,
    failures: list[tuple[str, str]] | None = None,
) -> list[Granule]:
    """Granules of ``short_name`` between ``start`` and ``end`` (inclusive days) over ``bbox``.

    ``fmt`` is ``"umm_json"`` (sizes and checksums) or ``"json"`` (links only). The CMR
    base URL is ``cmr_url``, else ``FIRESMOKE_CMR_URL``, else the public CMR. Records that
    cannot be used are appended to ``failures`` as ``(record id, reason)``.
    """
    if fmt not in ("umm_json", "json"):
        raise InputError("fmt must be 'umm_json' or 'json'", field="fmt")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= PAGE_SIZE:
        raise InputError(f"page_size must be an integer 1..{PAGE_SIZE} (CMR's limit), got {page_size!r}",
                         field="page_size")
    if max_results is not None and (isinstance(max_results, bool) or not isinstance(max_results, int)
                                    or max_results < 1):
        raise InputError(f"max_results must be a positive integer, got {max_results!r}", field="max_results")
    url = f"{service_url('cmr', cmr_url)}/search/granules.{fmt}"
    params: dict[str, Any] = {
        "short_name": short_name,
        "temporal": f"{_iso(start, False)},{_iso(end, True)}",
        "page_size": page_size,
        "sort_key": "start_date",
    }
    if version:
        params["version"] = version
    if bbox is not None:
        params["bounding_box"] = _cmr_bbox(bbox)
    if provider:
        params["provider"] = provider
    session = session or new_session()
    out: list[Granule] = []
    for body in _pages(session, url, params, policy, max_results):
        out.extend(parse_granules(body, short_name, failures))
    if max_results is not None:
        out = out[:max_results]
    log.info("CMR: %d %s granule(s) %s..%s", len(out), short_name, params["temporal"].split(",")[0],
             params["temporal"].split(",")[1])
    return out


def _pair_key(g: Granule) -> str | None:
    m = _GRANULE_KEY.search(g.name)
    return m.group(1) if m else None


def fetch_earthdata(
    products: Sequence[str],
    start: Any,
    end: Any,
    bbox: Sequence[float] | None,
    out: Any,
    *,
    versions: dict[str, str] | None = None,
    credentials: EarthdataCredentials | None = None,
    cmr_url: str | None = None,
    policy: RetryPolicy | None = None,
    progress: ProgressCallback | None = None,
    workers: int = 4,
    manifest: Manifest | None = None,
    dry_run: bool = False,
) -> FetchResult:
    """Search CMR for ``products`` and download their granules into ``out``.

    L1B swaths go to ``out/viirs_l1b/`` (observation and geolocation files together, as
    :func:`firesmoke.io.viirs.discovery.find_granules` pairs them), MCD64A1 and VNP64A1 tiles to
    ``out/burned_area/``.

    L1B observation products bring their geolocation pair (and vice versa); unpaired
    granules are left out with a warning. ``dry_run`` only searches (the result lists the
    granules with status ``planned``).
    """
    names: list[str] = []
    for p in products:
        key = p.upper()
        prod = EARTHDATA_PRODUCTS.get(key)
        if prod is None:
            raise FetchError(f"unknown Earthdata product {p!r}; known: {', '.join(EARTHDATA_PRODUCTS)}")
        for n in (key, prod.pair):
            if n and n not in names:
                names.append(n)
    credentials = credentials or earthdata_credentials()
    search_session = new_session()  # public search: the credentials go only to the data hosts
    found: dict[str, list[Granule]] = {}
    bad: list[ManifestEntry] = []  # searches and records that failed: listed, the rest goes on
    for n in names:
        version = (versions or {}).get(n, EARTHDATA_PRODUCTS[n].version)
        failures: list[tuple[str, str]] = []
        folder = EARTHDATA_PRODUCTS[n].folder
        try:
            found[n] = search_granules(n, start, end, bbox, version=version, cmr_url=cmr_url,
                                       session=search_session, policy=policy, failures=failures)
        except AuthError:
            raise
        except FetchError as exc:
            log.error("CMR search for %s failed: %s", n, exc)
            found[n] = []
            bad.append(ManifestEntry(shown(service_url("cmr", cmr_url)), f"{folder}/search:{n}", None, None,
                                     "failed", f"cmr:{n}", error=f"search failed: {redact(exc)}"))
        bad.extend(ManifestEntry(shown(service_url("cmr", cmr_url)), f"{folder}/record:{rid}", None, None,
                                 "failed", f"cmr:{n}", error=reason) for rid, reason in failures)
    files: list[RemoteFile] = []
    for n, granules in found.items():
        pair = EARTHDATA_PRODUCTS[n].pair
        keys = {_pair_key(g) for g in found.get(pair, [])} if pair else None
        for g in granules:
            if keys is not None and _pair_key(g) not in keys:
                log.warning("%s: no %s granule of the same time; left out", g.name, pair)
                continue
            files.append(g.remote(EARTHDATA_PRODUCTS[n].folder))
    if dry_run:
        return FetchResult([ManifestEntry(shown(f.url), f.relpath, f.size, str(f.checksum) if f.checksum else None,
                                          "planned", f.source) for f in files] + bad, None)
    if not credentials.present:
        log.warning("no Earthdata credentials (EARTHDATA_TOKEN or ~/.netrc machine %s); "
                    "protected downloads will fail", credentials.host)
    manifest = manifest or Manifest(out)
    failed = [manifest.add(e) for e in bad]
    res = download_all(new_session(credentials), files, out, manifest=manifest, policy=policy,
                       progress=progress, workers=workers)
    return FetchResult(res.entries + failed, res.manifest)
