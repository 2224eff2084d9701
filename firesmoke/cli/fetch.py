"""``firesmoke fetch``: download real inputs for a region and period (CLI side of firesmoke.fetch)."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
import threading
from pathlib import Path

from firesmoke.errors import FiresmokeError, InputError

__all__ = ["add_fetch", "cmd_fetch"]

_EPILOG = """\
products:
  VIIRS L1B (CMR/Earthdata):  viirs-l1b-snpp (VNP02MOD+VNP03MOD), viirs-l1b-noaa20
                              (VJ102MOD+VJ103MOD), or the short names themselves
  burned area (CMR):          MCD64A1 (MODIS C6.1), VNP64A1 (VIIRS)
  FIRMS area API:             VIIRS_SNPP_NRT VIIRS_SNPP_SP VIIRS_NOAA20_NRT VIIRS_NOAA20_SP
                              VIIRS_NOAA21_NRT MODIS_NRT MODIS_SP (max 5 days per request;
                              longer periods are split)
  Sentinel-2 (STAC):          sentinel-2-l2a, sentinel-2-l1c (item JSONs; --assets downloads bands)

credentials (never put them on the command line; they are never logged):
  Earthdata   EARTHDATA_TOKEN=<user token> (sent as "Authorization: Bearer"), or a ~/.netrc line
              "machine urs.earthdata.nasa.gov login USER password PASS" (chmod 600; $NETRC
              names another file). Get both at https://urs.earthdata.nasa.gov/.
  FIRMS       MAP_KEY=<key> (free at https://firms.modaps.eosdis.nasa.gov/api/map_key/).
  Planetary   PC_SDK_SUBSCRIPTION_KEY=<key> (optional; asset URLs are signed with SAS tokens
  Computer    from the public token endpoint).

mirrors / test servers (arguments override these):
  FIRESMOKE_CMR_URL, FIRESMOKE_EDL_HOST, FIRESMOKE_FIRMS_URL, FIRESMOKE_STAC_URL,
  FIRESMOKE_PC_STAC_URL, FIRESMOKE_PC_SAS_URL, FIRESMOKE_S3_ENDPOINT_URL;
  FIRESMOKE_EARTHDATA_HOSTS (extra hosts/domains that may receive Earthdata credentials),
  FIRESMOKE_ALLOW_HTTP_LOOPBACK=1 (credentials over plain http to 127.0.0.1: test servers only)

Downloads resume from OUT/**/*.part after an interruption, are checked against the size and
checksum CMR/STAC publish (else the ones OUT/manifest.jsonl recorded), retried on 429/5xx, and
listed in OUT/manifest.jsonl. Files already present and verified are skipped, so re-running the
same command is cheap, and two runs into one folder wait for each other file by file.
Credentials go only to Earthdata hosts over https (FIRESMOKE_EARTHDATA_HOSTS adds mirrors).
A damaged record or file is one "failed" line; exit status 1 when any failed, 2 for a bad value.
See docs/fetch.md ("Damaged and hostile input - downloads") for every limit.

example:
  firesmoke fetch --region PT --start 2017-06-01 --end 2017-06-30 \\
      --products viirs-l1b-snpp VIIRS_SNPP_SP VNP64A1 --out data/PT
"""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _check_site(name: str, lon: float, lat: float, buffer_m: float) -> None:
    if not name.strip() or len(name) > 200:
        raise ValueError("a site needs a name (at most 200 characters)")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"lon {lon} / lat {lat} outside -180..180 / -90..90")
    if not 0 < buffer_m <= 100_000:
        raise ValueError(f"buffer_m {buffer_m} not in (0, 100000] metres")


def _site(text: str):
    from firesmoke.fetch import Site  # deferred: keeps --help light (requests, xarray: ~0.7 s)

    parts = text.split(",")
    try:
        if len(parts) not in (3, 4):
            raise ValueError("needs 3 or 4 fields")
        site = Site(parts[0], float(parts[1]), float(parts[2]), *(float(p) for p in parts[3:]))
        _check_site(site.name, site.lon, site.lat, site.buffer_m)
        return site
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"site must be NAME,LON,LAT[,BUFFER_M] ({exc}): {text!r}") from None


def _version(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"version must be PRODUCT=VERSION: {text!r}")
    k, v = text.split("=", 1)
    return k.strip().upper(), v.strip()


def add_fetch(sub: argparse._SubParsersAction, commands: dict | None = None) -> None:
    """Register ``firesmoke fetch`` on the CLI's subparsers (and in ``commands``, name -> function)."""
    if commands is not None:
        commands["fetch"] = cmd_fetch
    p = sub.add_parser(
        "fetch", help="download VIIRS L1B, MCD64A1/VNP64A1, FIRMS and Sentinel-2 for a region and dates",
        description="Search and download real inputs for a region and period into one folder "
                    "(resumable, verified, with a manifest).",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--region", required=True,
                   help="shipped region name (e.g. PT), R_<name>.json file, or bbox LEFT,BOTTOM,RIGHT,TOP "
                        "(write --region=-10,36,-6,42 when it starts with a minus)")
    p.add_argument("--start", type=_date, required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--end", type=_date, required=True, help="last day, YYYY-MM-DD (inclusive)")
    p.add_argument("--products", nargs="+", required=True, metavar="PRODUCT", help="what to fetch (see below)")
    p.add_argument("--out", required=True, help="output folder (created; a local path)")
    p.add_argument("--version", dest="versions", type=_version, action="append", default=[],
                   metavar="PRODUCT=VERSION", help="pin a CMR collection version, e.g. VNP64A1=002")
    p.add_argument("--site", dest="sites", type=_site, action="append", default=[], metavar="NAME,LON,LAT[,BUFFER_M]",
                   help="Sentinel-2 around an emitter site (repeatable; default buffer 2000 m)")
    p.add_argument("--sites-csv", type=Path, help="CSV of sites with columns name (or site_id),lon,lat[,buffer_m]")
    p.add_argument("--max-cloud", type=float, default=20.0, help="Sentinel-2 eo:cloud_cover limit, %% (default 20)")
    p.add_argument("--assets", nargs="+", metavar="BAND",
                   help="Sentinel-2 bands/assets to download (e.g. B04 B08 B11 B12); default: item JSONs only")
    p.add_argument("--catalog", default=None,
                   help="STAC catalogue: earth-search (default), planetary-computer, or an API URL")
    p.add_argument("--cmr-url", help="CMR base URL (default $FIRESMOKE_CMR_URL or NASA CMR)")
    p.add_argument("--firms-url", help="FIRMS base URL (default $FIRESMOKE_FIRMS_URL or NASA FIRMS)")
    p.add_argument("--firms-archive", nargs="+", metavar="URL", default=[],
                   help="also download FIRMS archive CSV/ZIP files (ZIPs are unpacked to CSVs)")
    p.add_argument("--workers", type=int, default=4, help="parallel downloads (default 4)")
    p.add_argument("--dry-run", action="store_true", help="list the CMR files and FIRMS requests that would be fetched; download nothing")


class _ByteBars:
    """``progress(done, total, label)`` -> one tqdm byte bar per file (thread-safe)."""

    def __init__(self, disable: bool) -> None:
        self.disable = disable
        self._bars: dict[str, object] = {}
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int, label: str) -> None:
        from tqdm.auto import tqdm

        with self._lock:
            bar = self._bars.get(label)
            if bar is None:
                counts = label.startswith(("FIRMS", "STAC"))  # requests, not bytes
                bar = tqdm(total=total or None, desc=label[:40], unit="req" if counts else "B",
                           unit_scale=not counts, unit_divisor=1024, disable=self.disable,
                           leave=counts, file=sys.stderr)
                self._bars[label] = bar
            bar.n = done
            bar.refresh()
            if total and done >= total:
                bar.close()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


def _read_sites(path: Path) -> list:
    from firesmoke.fetch import Site  # deferred: keeps --help light (requests, xarray: ~0.7 s)

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise InputError(f"cannot read sites CSV ({exc})", path=path) from exc
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            name = r.get("name") or r.get("site_id")
            if not name:
                raise KeyError("name")
            site = Site(name, float(r["lon"]), float(r["lat"]), float(r.get("buffer_m") or 2000.0))
            _check_site(site.name, site.lon, site.lat, site.buffer_m)
            out.append(site)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"line {i}: needs name (or site_id), lon, lat[, buffer_m] ({exc})", path=path) from None
    if not out:
        raise InputError("no sites in the file (a header alone would search the whole region)", path=path)
    return out


def _fail(exc: Exception, verbose: int, code: int) -> int:
    """One line on stderr (the traceback too with -v); -> the exit code."""
    from firesmoke.fetch.config import redact  # deferred: keeps --help light (requests, xarray)

    if verbose:
        import traceback

        print(redact("".join(traceback.format_exception(exc))), file=sys.stderr)
    print(f"firesmoke fetch: error: {redact(exc)}", file=sys.stderr)
    return code


def cmd_fetch(args: argparse.Namespace) -> int:
    """Run ``firesmoke fetch``; exit status 1 when any file failed, 2 for a bad value."""
    from firesmoke.fetch.region import check_fetch_values  # deferred: keeps --help light (requests)

    verbose = getattr(args, "verbose", 0) or 0
    try:
        check_fetch_values(args.start, args.end, out=args.out, workers=args.workers,
                           max_cloud=args.max_cloud, catalog=args.catalog, cmr_url=args.cmr_url,
                           firms_url=args.firms_url, archive_urls=args.firms_archive, field_prefix="--")
        sites = list(args.sites) + (_read_sites(args.sites_csv) if args.sites_csv else [])
        args.out = Path(args.out)
        return _run(args, sites)
    except InputError as exc:
        return _fail(exc, verbose, 2)
    except FiresmokeError as exc:
        return _fail(exc, verbose, 1)


def _run(args: argparse.Namespace, sites: list) -> int:
    from firesmoke.fetch import (  # deferred: keeps --help light (requests, xarray: ~0.7 s)
        fetch_firms_archive,
        fetch_for_region,
    )

    bars = _ByteBars(disable=getattr(args, "quiet", False))
    try:
        result = fetch_for_region(
            args.region, args.start, args.end, args.products, args.out,
            versions=dict(args.versions), max_cloud=args.max_cloud, assets=args.assets,
            catalog=args.catalog, sites=sites or None, cmr_url=args.cmr_url, firms_url=args.firms_url,
            progress=bars, workers=args.workers, dry_run=args.dry_run,
        )
        if args.firms_archive and not args.dry_run:
            result = result + fetch_firms_archive(args.firms_archive, args.out, progress=bars)
    finally:
        bars.close()
    if args.dry_run:
        for e in result.entries:
            size = f"{e.size / 1e6:.1f} MB" if e.size else "? MB"
            print(f"{e.path}\t{size}\t{e.url}")
        print(f"{len(result.entries)} file(s) would be fetched")
        return 0
    print(f"fetch: {result.summary()}; manifest: {result.manifest}")
    for e in result.failed:
        print(f"  failed: {e.path}: {' '.join(str(e.error).split())[:500]}", file=sys.stderr)
    return 1 if result.failed else 0
