"""Sentinel-2 scenes through STAC APIs (Earth Search, Planetary Computer, any other).

:func:`search_sentinel2` searches a STAC API with :mod:`pystac_client` (which follows
the ``next`` links of the item search, GET or POST) for ``sentinel-2-l2a`` or
``sentinel-2-l1c`` items over a bbox or around emitter sites (points with a buffer),
with a cloud filter on ``eo:cloud_cover``. :func:`fetch_sentinel2` writes what it found:

- ``out/sentinel2/<site>/items.json``: a STAC ItemCollection for stackstac /
  :func:`firesmoke.io.sentinel2.scenes.open_scene` (remote hrefs; ``assets=None``);
- with ``assets`` (band names such as ``B04`` or asset keys), the files too:
  ``out/sentinel2/<collection>/<item id>/<asset key>.<ext>`` through the resumable
  downloader (checked against ``file:size`` and ``file:checksum`` when the item has
  them), and ``items.json`` then points at the local files with relative hrefs.

Catalogues: ``catalog="earth-search"`` (``FIRESMOKE_STAC_URL``, default Element 84 Earth
Search v1, L1C and L2A), ``"planetary-computer"`` (``FIRESMOKE_PC_STAC_URL``, L2A), or a
URL. Planetary Computer asset URLs are signed with a SAS token fetched from its token
endpoint ``GET {FIRESMOKE_PC_SAS_URL}/token/{collection}`` (``{"token": ..., "msft:expiry":
...}``; ``PC_SDK_SUBSCRIPTION_KEY`` is sent as ``Ocp-Apim-Subscription-Key`` when set);
tokens are cached per collection until shortly before they expire and never logged.
Item JSONs written without ``assets`` keep the unsigned hrefs (a SAS token expires within
the hour): sign them when reading (e.g. ``planetary_computer.sign``) or fetch the assets.
Asset URLs are signed just before each download (not when the search ends), so a long
fetch renews its token instead of failing at the expiry. The subscription key goes only
to the token endpoint's own host: a redirect elsewhere is refused.

Limits: the STAC API Item Search ``limit`` is 1..10000 (default 10; "STAC API - Item
Search", query parameter table); firesmoke asks pages of :data:`PAGE_LIMIT` items, which
Earth Search and the Planetary Computer (max 1000) both serve. One search makes at most
:data:`MAX_REQUESTS` requests (pages, redirects) and returns at most :data:`MAX_ITEMS`
items unless ``max_items`` asks for fewer; every answer is read within the policy's
``max_body`` and ``deadline``. A feature that is not a usable STAC item, an asset whose
href is not http(s)/s3 (``file://``), a band an item lacks: each is one ``failed`` entry
in the manifest; the other items and assets are fetched. ``s3://`` assets (Earth Search
``sentinel-2-l1c``, requester pays) go through :mod:`firesmoke.fetch.s3`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from firesmoke.dates import as_date
from firesmoke.errors import InputError
from firesmoke.fetch.config import clean_secret, redact, register_secret, service_url
from firesmoke.fetch.download import Checksum, ProgressCallback
from firesmoke.fetch.http import (
    USER_AGENT,
    FetchError,
    HeadWatchdog,
    RetryPolicy,
    check_url,
    mount_tracked,
    new_session,
    read_bounded,
    request,
    shown,
)
from firesmoke.fetch.manifest import Manifest, ManifestEntry
from firesmoke.fetch.remote import FetchResult, RemoteFile, download_all
from firesmoke.paths import atomic_write_bytes, server_path

__all__ = [
    "PlanetaryComputerSigner",
    "Site",
    "fetch_sentinel2",
    "search_sentinel2",
    "site_bbox",
]

log = logging.getLogger(__name__)

COLLECTIONS = ("sentinel-2-l2a", "sentinel-2-l1c")
FOLDER = "sentinel2"
#: Items per search page (STAC API Item Search: ``limit`` 1..10000, default 10; the
#: Planetary Computer serves at most 1000 per page).
PAGE_LIMIT = 100
#: Most HTTP requests (pages, redirects) one search makes: an endless ``next`` chain stops.
MAX_REQUESTS = 500
#: Most items one search returns unless ``max_items`` asks for fewer.
MAX_ITEMS = 20_000
#: A SAS token is renewed this long before its ``msft:expiry`` (Planetary Computer tokens
#: live about an hour for anonymous users; the ``planetary_computer`` SDK renews early too).
TOKEN_MARGIN = dt.timedelta(minutes=5)
#: Longest a token is cached whatever expiry it claims.
TOKEN_MAX_AGE = dt.timedelta(hours=24)
_REDIRECTS = (301, 302, 303, 307, 308)
_EARTH_RADIUS = 6371008.8
#: multihash prefix -> hashlib algorithm (``file:checksum`` of the STAC file extension)
_MULTIHASH = {"1220": "SHA-256", "1340": "SHA-512", "d50110": "MD5", "1114": "SHA1"}


@dataclass(frozen=True)
class Site:
    """An emitter site: name, longitude, latitude (degrees) and buffer radius (metres)."""

    name: str
    lon: float
    lat: float
    buffer_m: float = 2000.0


def site_bbox(site: Site) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` of the square of half-side ``buffer_m`` around the site."""
    dlat = math.degrees(site.buffer_m / _EARTH_RADIUS)
    dlon = dlat / max(math.cos(math.radians(site.lat)), 1e-6)
    return (site.lon - dlon, site.lat - dlat, site.lon + dlon, site.lat + dlat)


def _catalog_url(catalog: str | None) -> tuple[str, bool]:
    """(STAC API URL, whether assets need Planetary Computer signing).

    Raises :class:`InputError` for a catalogue that is neither a known name nor an
    http(s) URL.
    """
    if catalog in (None, "", "earth-search"):
        return service_url("stac"), False
    if catalog in ("planetary-computer", "pc"):
        return service_url("pc_stac"), True
    try:
        check_url(catalog)
    except FetchError as exc:
        raise InputError(f"catalog must be earth-search, planetary-computer or an http(s) STAC API "
                         f"URL ({exc})", field="catalog") from None
    return catalog.rstrip("/"), "planetarycomputer" in catalog


class _BoundedSession(requests.Session):
    """The session pystac-client searches with: each answer bounded, requests counted."""

    def __init__(self, policy: RetryPolicy, max_requests: int) -> None:
        super().__init__()
        self.policy = policy
        self.max_requests = max_requests
        self.sent = 0
        self.headers["User-Agent"] = USER_AGENT
        self.max_redirects = 10
        mount_tracked(self)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent += 1
        if self.sent > self.max_requests:
            raise FetchError(f"more than {self.max_requests} requests in one search (MAX_REQUESTS: "
                             "an endless chain of pages?); stopped")
        check_url(request.url or "")
        kwargs["stream"] = True
        kwargs["timeout"] = self.policy.timeout
        head = HeadWatchdog(self.policy.answer_seconds)
        try:
            with head:
                resp = super().send(request, **kwargs)
        except requests.RequestException:
            if head.fired:
                raise FetchError(f"{shown(request.url or '')}: no answer within "
                                 f"{self.policy.answer_seconds:g} s; stopped") from None
            raise
        if head.fired:
            resp.close()
            raise FetchError(f"{shown(request.url or '')}: no answer within "
                             f"{self.policy.answer_seconds:g} s; stopped")
        if not resp._content_consumed:
            resp._content = read_bounded(resp, request.url or "", self.policy.max_body,
                                         self.policy.answer_seconds)
            resp._content_consumed = True
        return resp


class PlanetaryComputerSigner:
    """Signs Planetary Computer blob-storage URLs with SAS tokens from the token endpoint."""

    def __init__(self, sas_url: str | None = None, session: requests.Session | None = None,
                 policy: RetryPolicy | None = None,
                 hosts: Sequence[str] = (".blob.core.windows.net",)) -> None:
        self.hosts = tuple(hosts)
        self.sas_url = service_url("pc_sas", sas_url)
        self.session = session or new_session()
        self.policy = policy
        self._tokens: dict[str, tuple[str, dt.datetime]] = {}
        self._lock = threading.Lock()

    def token(self, collection: str) -> str:
        """SAS token for ``collection`` (cached until :data:`TOKEN_MARGIN` before its expiry)."""
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            hit = self._tokens.get(collection)
            if hit and hit[1] - TOKEN_MARGIN > now:
                return hit[0]
            headers = {}
            raw = os.environ.get("PC_SDK_SUBSCRIPTION_KEY")
            register_secret(raw)
            key = clean_secret(raw, "PC_SDK_SUBSCRIPTION_KEY")
            if key:
                register_secret(key)
                headers["Ocp-Apim-Subscription-Key"] = key
            url = f"{self.sas_url}/token/{collection}"
            home = urlsplit(url)
            for _hop in range(5):  # redirects followed by hand: the key never leaves the host
                resp = request(self.session, "GET", url, headers=headers, policy=self.policy,
                               allow_redirects=False, ok_status=_REDIRECTS)
                if resp.status_code not in _REDIRECTS:
                    break
                target = requests.compat.urljoin(url, resp.headers.get("Location", ""))
                there = urlsplit(target)
                if (there.scheme, there.netloc) != (home.scheme, home.netloc):
                    raise FetchError(f"{shown(url)}: the token endpoint redirects to another host "
                                     f"({shown(there.netloc, 100) or 'none'}); not followed"
                                     + (" (the subscription key is not sent elsewhere)" if key else ""))
                url = target
            else:
                raise FetchError(f"{shown(url)}: too many redirects from the token endpoint")
            try:
                body = resp.json()
                token = body["token"]
                if not isinstance(token, str) or not token:
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                raise FetchError(f"{shown(url)}: no 'token' in the answer") from None
            register_secret(token)
            expiry = now + dt.timedelta(minutes=45)
            if isinstance(body, dict) and body.get("msft:expiry"):
                try:
                    expiry = dt.datetime.fromisoformat(str(body["msft:expiry"]).replace("Z", "+00:00"))
                    if expiry.tzinfo is None:
                        expiry = expiry.replace(tzinfo=dt.UTC)
                except ValueError:
                    pass
            expiry = min(expiry, now + TOKEN_MAX_AGE)
            self._tokens[collection] = (token, expiry)
            return token

    def sign(self, href: str, collection: str) -> str:
        """``href`` with the collection's SAS token appended (blob storage URLs only)."""
        try:
            host = urlsplit(href).hostname or ""
        except ValueError:
            return href
        if not any(host == h.lstrip(".") or host.endswith(h) for h in self.hosts):
            return href
        sep = "&" if "?" in href else "?"
        return f"{href}{sep}{self.token(collection)}"


def search_sentinel2(
    *,
    bbox: Sequence[float] | None = None,
    site: Site | None = None,
    start: Any,
    end: Any,
    collection: str = "sentinel-2-l2a",
    catalog: str | None = None,
    max_cloud: float | None = 20.0,
    max_items: int | None = None,
    modifier: Callable[[Any], Any] | None = None,
    policy: RetryPolicy | None = None,
    failures: list[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """STAC items (dicts) of ``collection`` over ``bbox`` or around ``site`` for days ``start..end``.

    ``max_cloud`` keeps items with ``eo:cloud_cover`` <= the value (None: no filter);
    the filter is sent to the server (STAC ``query`` extension) and checked again here.
    Features that are not usable items are left out and appended to ``failures`` as
    ``(id, reason)``. Raises :class:`FetchError` when the search fails or passes the limits.
    """
    from pystac_client import Client
    from pystac_client.exceptions import APIError
    from pystac_client.stac_api_io import StacApiIO

    if max_items is not None and (isinstance(max_items, bool) or not isinstance(max_items, int)
                                  or max_items < 1):
        raise InputError(f"max_items must be a positive integer, got {max_items!r}", field="max_items")
    policy = policy or RetryPolicy()

    if collection not in COLLECTIONS:
        log.warning("collection %r is not one of %s", collection, ", ".join(COLLECTIONS))
    if (bbox is None) == (site is None):
        raise FetchError("give exactly one of bbox or site")
    box = list(site_bbox(site) if site is not None else bbox)  # type: ignore[arg-type]
    url, _ = _catalog_url(catalog)
    d0 = as_date(start, "start")
    d1 = as_date(end, "end")
    cap = max_items if max_items is not None else MAX_ITEMS + 1
    kwargs: dict[str, Any] = {
        "collections": [collection],
        "bbox": box,
        "datetime": f"{d0.isoformat()}T00:00:00Z/{d1.isoformat()}T23:59:59Z",
        "max_items": cap,
        "limit": min(PAGE_LIMIT, cap),
    }
    if max_cloud is not None:
        kwargs["query"] = {"eo:cloud_cover": {"lte": float(max_cloud)}}
    stac_io = StacApiIO(timeout=policy.timeout, max_retries=None)
    stac_io.session = _BoundedSession(policy, MAX_REQUESTS)
    features: list[Any] = []
    try:
        client = Client.open(url, modifier=modifier, stac_io=stac_io)
        for page in client.search(**kwargs).pages_as_dicts():
            feats = page.get("features") if isinstance(page, dict) else None
            if not isinstance(feats, list):
                raise FetchError(f"{shown(url)}: a search page without a list of features")
            features.extend(feats)
    except FetchError:
        raise
    except APIError as exc:
        raise FetchError(f"{shown(url)}: STAC search failed: {redact(str(exc))[:300]}") from None
    except Exception as exc:  # pystac-client / pystac on a damaged answer: one clean error
        raise FetchError(f"{shown(url)}: STAC search failed ({type(exc).__name__}: "
                         f"{redact(str(exc))[:200]})") from None
    if max_items is None and len(features) > MAX_ITEMS:
        raise FetchError(f"{shown(url)}: more than {MAX_ITEMS} items (MAX_ITEMS); narrow the period "
                         "or region, or pass max_items")
    items = []
    for feat in features[:cap]:
        problem = _item_problem(feat)
        if problem is not None:
            fid = feat.get("id") if isinstance(feat, dict) else None
            fid = shown(fid, 100) if isinstance(fid, str) else "?"
            log.warning("STAC item %s: %s; left out", fid, problem)
            if failures is not None:
                failures.append((fid, problem))
            continue
        items.append(feat)
    if max_cloud is not None:
        kept = [it for it in items if float(it["properties"].get("eo:cloud_cover", 0.0)) <= max_cloud]
        if len(kept) < len(items):
            log.info("%d item(s) above %.0f %% cloud left out", len(items) - len(kept), max_cloud)
        items = kept
    log.info("STAC %s: %d %s item(s)", shown(url), len(items), collection)
    return items


def _item_problem(feat: Any) -> str | None:
    """Why ``feat`` is not a usable STAC item, or None."""
    if not isinstance(feat, dict):
        return f"not an object ({type(feat).__name__})"
    iid = feat.get("id")
    if not isinstance(iid, str) or not iid.strip() or len(iid) > 300:
        return "no usable 'id'"
    if any(ord(c) < 0x20 for c in iid) or iid in (".", ".."):
        return "an 'id' with control characters or a dot name"
    if not isinstance(feat.get("properties"), dict):
        return "no 'properties' object"
    if not isinstance(feat.get("assets"), dict) or not all(isinstance(a, dict) for a in feat["assets"].values()):
        return "no 'assets' object of objects"
    cc = feat["properties"].get("eo:cloud_cover", 0.0)
    if cc is not None and (isinstance(cc, bool) or not isinstance(cc, (int, float)) or not math.isfinite(cc)):
        return "eo:cloud_cover is not a number"
    if "links" in feat and not isinstance(feat["links"], list):
        return "'links' is not a list"
    return None


def _checksum(asset: dict[str, Any]) -> Checksum | None:
    """The asset's ``file:checksum`` (multihash) as a checksum; FetchError when malformed."""
    mh = asset.get("file:checksum")
    if mh is None:
        return None
    if not isinstance(mh, str):
        raise FetchError(f"file:checksum is a {type(mh).__name__}, not a multihash string")
    for prefix, algo in _MULTIHASH.items():
        if mh.lower().startswith(prefix):
            return Checksum.make(algo, mh[len(prefix):])
    return None


def _asset_keys(assets: dict[str, Any], wanted: Sequence[str]) -> list[str]:
    from firesmoke.io.sentinel2.chips import BANDS  # deferred: rasterio, dask (~0.7 s)
    from firesmoke.io.sentinel2.scenes import _asset_key  # deferred: rasterio, dask (~0.7 s)

    keys = []
    for w in wanted:
        key = _asset_key(assets, w) if w in BANDS else (w if w in assets else None)
        if key is None:
            raise FetchError(f"no asset for {w!r}; the item has {', '.join(sorted(assets))}")
        keys.append(key)
    return keys


def _ext(href: str) -> str:
    name = urlsplit(href).path.rsplit("/", 1)[-1]
    ext = "." + name.rsplit(".", 1)[1] if "." in name else ""
    return ext if len(ext) <= 10 and ext[1:].isalnum() else ""


def fetch_sentinel2(
    out: str | os.PathLike[str],
    start: Any,
    end: Any,
    *,
    bbox: Sequence[float] | None = None,
    sites: Sequence[Site] | None = None,
    collection: str = "sentinel-2-l2a",
    catalog: str | None = None,
    max_cloud: float | None = 20.0,
    max_items: int | None = None,
    assets: Sequence[str] | None = None,
    sas_url: str | None = None,
    policy: RetryPolicy | None = None,
    progress: ProgressCallback | None = None,
    workers: int = 4,
    manifest: Manifest | None = None,
    signer: PlanetaryComputerSigner | None = None,
) -> FetchResult:
    """Search Sentinel-2 items and write their item JSONs (and, with ``assets``, the files).

    One search per site (or one for ``bbox``); see the module docstring for the layout.
    """
    root = Path(out)
    manifest = manifest or Manifest(root)
    _, signed = _catalog_url(catalog)
    session = new_session()
    if signer is None and signed:
        signer = PlanetaryComputerSigner(sas_url, session, policy)
    targets: list[tuple[str, dict[str, Any]]] = (
        [(s.name, {"site": s}) for s in sites] if sites else [("bbox", {"bbox": bbox})]
    )
    entries: list[ManifestEntry] = []
    base_url = shown(_catalog_url(catalog)[0])
    for name, where in targets:
        failures: list[tuple[str, str]] = []
        items = search_sentinel2(start=start, end=end, collection=collection, catalog=catalog,
                                 max_cloud=max_cloud, max_items=max_items, policy=policy,
                                 failures=failures, **where)
        for fid, reason in failures:
            entries.append(manifest.add(ManifestEntry(base_url + "/search", f"{FOLDER}/{name}/item:{fid}", None,
                                                      None, "failed", f"stac:{collection}", error=reason)))
        files: list[RemoteFile] = []
        for item in items:
            item.setdefault("collection", collection)
            coll = item["collection"] if isinstance(item["collection"], str) else collection
            if not assets:
                continue
            try:
                keys = _asset_keys(item["assets"], assets)
            except FetchError as exc:
                entries.append(manifest.add(ManifestEntry(base_url + "/search",
                                                          f"{FOLDER}/{coll}/{item['id']}", None, None, "failed",
                                                          f"stac:{collection}", error=str(exc))))
                continue
            for key in keys:
                asset = item["assets"][key]
                href = asset.get("href")
                rel = f"{FOLDER}/{coll}/{item['id']}/{key}"
                try:
                    if not isinstance(href, str):
                        raise FetchError(f"asset {key!r} has no href")
                    if not href.startswith("s3://"):
                        check_url(href)
                    rel += _ext(href)
                    checksum = _checksum(asset)
                except FetchError as exc:
                    entries.append(manifest.add(ManifestEntry(shown(str(href)), rel, None, None, "failed",
                                                              f"stac:{collection}", error=str(exc))))
                    continue
                size = asset.get("file:size")
                resolve = (lambda h, c=coll: signer.sign(h, c)) if signer else None
                files.append(RemoteFile(href, rel,
                                        size if isinstance(size, int) and not isinstance(size, bool)
                                        and size >= 0 else None,
                                        checksum, source=f"stac:{collection}", resolve=resolve))
                asset["href"] = "LOCAL:" + rel  # rewritten below once the folder is known
        if files:
            res = download_all(session, files, root, manifest=manifest, policy=policy,
                               progress=progress, workers=workers)
            entries.extend(res.entries)
            done = {e.path for e in res.entries if e.ok}
            for item in items:  # an asset that failed keeps its remote href
                for f in files:
                    for asset in item["assets"].values():
                        if asset.get("href") == "LOCAL:" + f.relpath and f.relpath not in done:
                            asset["href"] = f.url
        coll_path = server_path(root, FOLDER, name, "items.json")
        coll_path.parent.mkdir(parents=True, exist_ok=True)
        for item in items:
            for asset in item["assets"].values():
                href = asset.get("href", "")
                if isinstance(href, str) and href.startswith("LOCAL:"):
                    asset["href"] = os.path.relpath(root / href[len("LOCAL:"):], coll_path.parent)
            if assets:  # local hrefs are resolved against items.json, not a remote self link
                item["links"] = [lk for lk in item.get("links", [])
                                 if not isinstance(lk, dict) or lk.get("rel") not in ("self", "root", "parent")]
        body = json.dumps({"type": "FeatureCollection", "features": items}, indent=1).encode()
        coll_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(coll_path, body, root=root)
        entries.append(manifest.add(ManifestEntry(
            base_url + "/search", os.path.relpath(coll_path, root), len(body), None,
            "written", f"stac:{collection}", extra={"items": len(items), "target": name})))
        if progress:
            progress(len(items), len(items), f"STAC {name}")
    return FetchResult(entries, manifest.path)
