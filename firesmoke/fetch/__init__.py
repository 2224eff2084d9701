"""Search and download of real inputs: NASA CMR/Earthdata, FIRMS, Sentinel-2 STAC.

One entry point per source, plus :func:`fetch_for_region` for "this region, these days,
these products"; every download goes through :func:`firesmoke.fetch.download.download_file`
(resumable, verified, atomic, retried, locked, bounded) and is listed in ``manifest.jsonl``;
limits and hostile-input rules: ``docs/fetch.md``. Base URLs and
credentials: :mod:`firesmoke.fetch.config`.

==========================================  ==============================================
module                                      what
==========================================  ==============================================
:mod:`~firesmoke.fetch.config`              base URLs (env overrides), credentials, redaction
:mod:`~firesmoke.fetch.http`                sessions, credentials by host, retries, limits
:mod:`~firesmoke.fetch.download`            one resumable, verified, atomic download
:mod:`~firesmoke.fetch.remote`              many downloads into a folder + manifest
:mod:`~firesmoke.fetch.s3`                  ``s3://`` objects through s3fs (requester pays)
:mod:`~firesmoke.fetch.manifest`            the JSON-lines manifest
:mod:`~firesmoke.paths`                     safe output paths (server-chosen names cleaned)
:mod:`~firesmoke.fetch.cmr`                 CMR search (UMM-JSON/JSON, CMR-Search-After)
:mod:`~firesmoke.fetch.firms`               FIRMS area API and archive files
:mod:`~firesmoke.fetch.stac`                Sentinel-2 via STAC (Earth Search, Planetary Computer)
:mod:`~firesmoke.fetch.region`              ``fetch_for_region`` and the ``[fetch]`` spec table
==========================================  ==============================================
"""

from firesmoke.fetch.cmr import EARTHDATA_PRODUCTS, Granule, fetch_earthdata, search_granules
from firesmoke.fetch.config import earthdata_credentials, firms_map_key
from firesmoke.fetch.download import Checksum, download_file
from firesmoke.fetch.firms import FIRMS_SOURCES, fetch_firms_archive, fetch_firms_area
from firesmoke.fetch.http import AuthError, ChecksumError, FetchError, RetryPolicy
from firesmoke.fetch.manifest import Manifest, ManifestEntry, read_manifest
from firesmoke.fetch.region import FetchSpec, fetch_for_region, parse_fetch_table
from firesmoke.fetch.remote import FetchResult, RemoteFile
from firesmoke.fetch.stac import PlanetaryComputerSigner, Site, fetch_sentinel2, search_sentinel2

__all__ = [
    "EARTHDATA_PRODUCTS",
    "FIRMS_SOURCES",
    "AuthError",
    "Checksum",
    "ChecksumError",
    "FetchError",
    "FetchResult",
    "FetchSpec",
    "Granule",
    "Manifest",
    "ManifestEntry",
    "PlanetaryComputerSigner",
    "RemoteFile",
    "RetryPolicy",
    "Site",
    "download_file",
    "earthdata_credentials",
    "fetch_earthdata",
    "fetch_firms_archive",
    "fetch_firms_area",
    "fetch_for_region",
    "fetch_sentinel2",
    "firms_map_key",
    "parse_fetch_table",
    "read_manifest",
    "search_granules",
    "search_sentinel2",
]
