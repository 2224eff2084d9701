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
from firesmoke.fetch.http import FetchError, RetryPolicy, new_session, request
from firesmoke.fetch.manifest import Manifest
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

PAGE_SIZE = 2000
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


def _umm_granule(item: dict[str, Any], short_name: str) -> Granule | None:
    umm = item.get("umm", {})
    meta = item.get("meta", {})
    infos = (umm.get("DataGranule") or {}).get("ArchiveAndDistributionInformation") or []
    by_name = {i.get("Name"): i for i in infos if isinstance(i, dict)}
    urls = [u for u in umm.get("RelatedUrls") or []
            if u.get("Type") == "GET DATA" and str(u.get("URL", "")).startswith(("https://", "http://"))]
    if not urls:
        log.warning("granule %s has no HTTPS GET DATA URL; skipped", meta.get("concept-id") or umm.get("GranuleUR"))
        return None
    chosen = next((u for u in urls if filename_from_url(u["URL"]) in by_name), urls[0])
    url = chosen["URL"]
    name = filename_from_url(url)
    info = by_name.get(name) or (infos[0] if len(infos) == 1 and isinstance(infos[0], dict) else {})
    size = info.get("SizeInBytes")
    ck = info.get("Checksum") or {}
    checksum = Checksum(ck["Algorithm"], ck["Value"]) if ck.get("Algorithm") and ck.get("Value") else None
    start = (umm.get("TemporalExtent") or {}).get("RangeDateTime", {}).get("BeginningDateTime")
    return Granule(
        short_name=(umm.get("CollectionReference") or {}).get("ShortName", short_name),
        name=name, url=url, size=int(size) if isinstance(size, (int, float)) else None,
        checksum=checksum, start=_parse_time(start), concept_id=meta.get("concept-id", ""),
    )


def _json_granule(entry: dict[str, Any], short_name: str) -> Granule | None:
    links = [lk for lk in entry.get("links") or []
             if lk.get("rel") == _DATA_REL and str(lk.get("href", "")).startswith(("https://", "http://"))
             and not lk.get("inherited")]
    if not links:
        log.warning("granule %s has no HTTPS data link; skipped", entry.get("id"))
        return None
    url = links[0]["href"]
    return Granule(short_name=short_name, name=filename_from_url(url), url=url,
                   start=_parse_time(entry.get("time_start")), concept_id=entry.get("id", ""))


def _parse_time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_granules(body: dict[str, Any], short_name: str) -> list[Granule]:
    """Granules of one CMR response page (UMM-JSON ``items`` or JSON ``feed.entry``)."""
    if "items" in body:
        out = [_umm_granule(i, short_name) for i in body["items"]]
    elif "feed" in body:
        out = [_json_granule(e, short_name) for e in body["feed"].get("entry", [])]
    else:
        raise FetchError("unexpected CMR response: neither UMM-JSON 'items' nor JSON 'feed'")
    return [g for g in out if g is not None]


def _pages(session: requests.Session, url: str, params: dict[str, Any], policy: RetryPolicy | None,
           max_results: int | None) -> Iterator[dict[str, Any]]:
    search_after: str | None = None
    seen = 0
    while True:
        headers = {"Accept": "application/json"}
        if search_after:
            headers["CMR-Search-After"] = search_after
        resp = request(session, "GET", url, params=params, headers=headers, policy=policy)
        try:
            body = resp.json()
        except ValueError as exc:
            raise FetchError(f"{url}: CMR answered something that is not JSON") from exc
        if "errors" in body:
            raise FetchError(f"{url}: CMR error: {'; '.join(map(str, body['errors']))}")
        n = len(body.get("items", body.get("feed", {}).get("entry", [])))
        yield body
        seen += n
        search_after = resp.headers.get("CMR-Search-After")
        hits = resp.headers.get("CMR-Hits") or body.get("hits")
        if not search_after or n == 0 or (hits is not None and seen >= int(hits)):
            return
        if max_results is not None and seen >= max_results:
            return


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
) -> list[Granule]:
    """Granules of ``short_name`` between ``start`` and ``end`` (inclusive days) over ``bbox``.

    ``fmt`` is ``"umm_json"`` (sizes and checksums) or ``"json"`` (links only). The CMR
    base URL is ``cmr_url``, else ``FIRESMOKE_CMR_URL``, else the public CMR.
    """
    if fmt not in ("umm_json", "json"):
        raise InputError("fmt must be 'umm_json' or 'json'")
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
        out.extend(parse_granules(body, short_name))
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
    for n in names:
        version = (versions or {}).get(n, EARTHDATA_PRODUCTS[n].version)
        found[n] = search_granules(n, start, end, bbox, version=version, cmr_url=cmr_url,
                                   session=search_session, policy=policy)
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
        from firesmoke.fetch.manifest import ManifestEntry

        return FetchResult([ManifestEntry(redact(f.url), f.relpath, f.size, str(f.checksum) if f.checksum else None,
                                          "planned", f.source) for f in files], None)
    if not credentials.present:
        log.warning("no Earthdata credentials (EARTHDATA_TOKEN or ~/.netrc machine %s); "
                    "protected downloads will fail", credentials.host)
    return download_all(new_session(credentials), files, out, manifest=manifest, policy=policy,
                        progress=progress, workers=workers)
