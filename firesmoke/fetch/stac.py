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
from firesmoke.fetch.config import redact, register_secret, service_url
from firesmoke.fetch.download import Checksum, ProgressCallback
from firesmoke.fetch.http import FetchError, RetryPolicy, new_session, request
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
    """(STAC API URL, whether assets need Planetary Computer signing)."""
    if catalog in (None, "", "earth-search"):
        return service_url("stac"), False
    if catalog in ("planetary-computer", "pc"):
        return service_url("pc_stac"), True
    return catalog.rstrip("/"), "planetarycomputer" in catalog


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
        """SAS token for ``collection`` (cached until 5 minutes before its expiry)."""
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            hit = self._tokens.get(collection)
            if hit and hit[1] - dt.timedelta(minutes=5) > now:
                return hit[0]
            headers = {}
            key = os.environ.get("PC_SDK_SUBSCRIPTION_KEY")
            if key:
                register_secret(key)
                headers["Ocp-Apim-Subscription-Key"] = key
            resp = request(self.session, "GET", f"{self.sas_url}/token/{collection}", headers=headers,
                           policy=self.policy)
            try:
                body = resp.json()
                token = body["token"]
            except (ValueError, KeyError, TypeError) as exc:
                raise FetchError(f"{self.sas_url}/token/{collection}: no 'token' in the answer") from exc
            register_secret(token)
            expiry = now + dt.timedelta(minutes=45)
            if body.get("msft:expiry"):
                try:
                    expiry = dt.datetime.fromisoformat(str(body["msft:expiry"]).replace("Z", "+00:00"))
                except ValueError:
                    pass
            self._tokens[collection] = (token, expiry)
            return token

    def sign(self, href: str, collection: str) -> str:
        """``href`` with the collection's SAS token appended (blob storage URLs only)."""
        host = urlsplit(href).hostname or ""
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
) -> list[dict[str, Any]]:
    """STAC items (dicts) of ``collection`` over ``bbox`` or around ``site`` for days ``start..end``.

    ``max_cloud`` keeps items with ``eo:cloud_cover`` <= the value (None: no filter);
    the filter is sent to the server (STAC ``query`` extension) and checked again here.
    """
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    if collection not in COLLECTIONS:
        log.warning("collection %r is not one of %s", collection, ", ".join(COLLECTIONS))
    if (bbox is None) == (site is None):
        raise FetchError("give exactly one of bbox or site")
    box = list(site_bbox(site) if site is not None else bbox)  # type: ignore[arg-type]
    url, _ = _catalog_url(catalog)
    d0 = as_date(start, "start")
    d1 = as_date(end, "end")
    kwargs: dict[str, Any] = {
        "collections": [collection],
        "bbox": box,
        "datetime": f"{d0.isoformat()}T00:00:00Z/{d1.isoformat()}T23:59:59Z",
        "max_items": max_items,
    }
    if max_cloud is not None:
        kwargs["query"] = {"eo:cloud_cover": {"lte": float(max_cloud)}}
    try:
        client = Client.open(url, modifier=modifier)
        items = [it.to_dict() for it in client.search(**kwargs).items()]
    except APIError as exc:
        raise FetchError(f"{redact(url)}: STAC search failed: {redact(str(exc))[:300]}") from exc
    except requests.RequestException as exc:  # pragma: no cover - network errors from pystac-client
        raise FetchError(f"{redact(url)}: STAC API unreachable ({type(exc).__name__})") from exc
    if max_cloud is not None:
        kept = [it for it in items if float(it["properties"].get("eo:cloud_cover", 0.0)) <= max_cloud]
        if len(kept) < len(items):
            log.info("%d item(s) above %.0f %% cloud left out", len(items) - len(kept), max_cloud)
        items = kept
    log.info("STAC %s: %d %s item(s)", redact(url), len(items), collection)
    return items


def _checksum(asset: dict[str, Any]) -> Checksum | None:
    mh = asset.get("file:checksum")
    if not isinstance(mh, str):
        return None
    for prefix, algo in _MULTIHASH.items():
        if mh.lower().startswith(prefix):
            return Checksum(algo, mh[len(prefix):])
    return None


def _asset_keys(assets: dict[str, Any], wanted: Sequence[str]) -> list[str]:
    from firesmoke.io.sentinel2.chips import BANDS
    from firesmoke.io.sentinel2.scenes import _asset_key

    keys = []
    for w in wanted:
        key = _asset_key(assets, w) if w in BANDS else (w if w in assets else None)
        if key is None:
            raise FetchError(f"no asset for {w!r}; the item has {', '.join(sorted(assets))}")
        keys.append(key)
    return keys


def _ext(href: str) -> str:
    name = urlsplit(href).path.rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[1] if "." in name else ""


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
    for name, where in targets:
        items = search_sentinel2(start=start, end=end, collection=collection, catalog=catalog,
                                 max_cloud=max_cloud, max_items=max_items, **where)
        files: list[RemoteFile] = []
        for item in items:
            item.setdefault("collection", collection)
            if not assets:
                continue
            for key in _asset_keys(item["assets"], assets):
                asset = item["assets"][key]
                href = asset["href"]
                url = signer.sign(href, item.get("collection") or collection) if signer else href
                rel = f"{FOLDER}/{item.get('collection') or collection}/{item['id']}/{key}{_ext(href)}"
                size = asset.get("file:size")
                files.append(RemoteFile(url, rel, int(size) if isinstance(size, int) else None,
                                        _checksum(asset), source=f"stac:{collection}"))
                asset["href"] = "LOCAL:" + rel  # rewritten below once the folder is known
        if files:
            res = download_all(session, files, root, manifest=manifest, policy=policy,
                               progress=progress, workers=workers)
            entries.extend(res.entries)
        coll_path = server_path(root, FOLDER, name, "items.json")
        coll_path.parent.mkdir(parents=True, exist_ok=True)
        for item in items:
            for asset in item["assets"].values():
                href = asset.get("href", "")
                if href.startswith("LOCAL:"):
                    asset["href"] = os.path.relpath(root / href[len("LOCAL:"):], coll_path.parent)
            if assets:  # local hrefs are resolved against items.json, not a remote self link
                item["links"] = [lk for lk in item.get("links", []) if lk.get("rel") not in ("self", "root", "parent")]
        body = json.dumps({"type": "FeatureCollection", "features": items}, indent=1).encode()
        coll_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(coll_path, body, root=root)
        entries.append(manifest.add(ManifestEntry(
            redact(_catalog_url(catalog)[0]) + "/search", os.path.relpath(coll_path, root), len(body), None,
            "written", f"stac:{collection}", extra={"items": len(items), "target": name})))
        if progress:
            progress(len(items), len(items), f"STAC {name}")
    return FetchResult(entries, manifest.path)
