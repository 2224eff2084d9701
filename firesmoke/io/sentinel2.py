"""Sentinel-2 readers: 13-band smoke chips, the smoke dataset layout, and STAC/COG scenes.

* :func:`open_chip` / :func:`read_chips`: the 120 x 120 chips of the industrial smoke
  plume dataset (reference/smoke.md), padded like the reference (last row/column repeated).
* :func:`open_smoke_dataset`: index ``positive/``, ``negative/`` and ``labels/`` folders.
* :func:`open_scene`: whole scenes as a lazy ``(time, band, y, x)`` cube, from STAC items
  (through :func:`stackstac.stack`, no network needed for local assets) or local GeoTIFFs.

Values stay Level-2A digital numbers (reflectance x 1e4), the unit the models' normalisation
constants are given in. Nothing here does any other processing.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import rioxarray  # also registers the .rio accessor
import xarray as xr
from rasterio.errors import RasterioError

from firesmoke.errors import (
    CorruptFileError,
    GridMismatchError,
    InputError,
    SkippedInput,
    WrongProductError,
)
from firesmoke.io.labels import LABEL_SUFFIX, label_image_stem, load_label_tasks, read_labels

__all__ = [
    "BANDS",
    "BAND_INFO",
    "CHIP_SIZE",
    "SMOKE_BANDS",
    "BandInfo",
    "ChipName",
    "SmokeDataset",
    "format_chip_name",
    "open_chip",
    "open_scene",
    "open_smoke_dataset",
    "pad_to_size",
    "parse_chip_name",
    "read_chips",
    "read_labels",
    "split_by_site",
]

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- bands


@dataclass(frozen=True)
class BandInfo:
    """Sentinel-2 MSI band: common name, centre wavelength and FWHM (micrometres), native pixel size (m)."""

    name: str
    common_name: str
    center_wavelength: float
    full_width_half_max: float
    resolution: int


BAND_INFO: dict[str, BandInfo] = {
    b.name: b
    for b in (
        BandInfo("B01", "coastal", 0.443, 0.021, 60),
        BandInfo("B02", "blue", 0.490, 0.066, 10),
        BandInfo("B03", "green", 0.560, 0.036, 10),
        BandInfo("B04", "red", 0.665, 0.031, 10),
        BandInfo("B05", "rededge", 0.704, 0.015, 20),
        BandInfo("B06", "rededge", 0.740, 0.015, 20),
        BandInfo("B07", "rededge", 0.783, 0.020, 20),
        BandInfo("B08", "nir", 0.842, 0.106, 10),
        BandInfo("B8A", "nir08", 0.865, 0.021, 20),
        BandInfo("B09", "nir09", 0.945, 0.020, 60),
        BandInfo("B10", "cirrus", 1.375, 0.031, 60),
        BandInfo("B11", "swir16", 1.610, 0.091, 20),
        BandInfo("B12", "swir22", 2.190, 0.175, 20),
    )
}
#: Band order of the smoke dataset files (13 bands).
BANDS: tuple[str, ...] = tuple(BAND_INFO)
#: The 12 bands the smoke models use: all but the cirrus band B10.
SMOKE_BANDS: tuple[str, ...] = tuple(b for b in BANDS if b != "B10")
#: Nominal chip size (pixels) of the smoke dataset.
CHIP_SIZE = 120

# Asset keys other catalogues use for each band (Earth Search v1 uses common-name keys).
_ASSET_ALIASES: dict[str, tuple[str, ...]] = {
    "B01": ("coastal",),
    "B02": ("blue",),
    "B03": ("green",),
    "B04": ("red",),
    "B05": ("rededge1",),
    "B06": ("rededge2",),
    "B07": ("rededge3",),
    "B08": ("nir",),
    "B8A": ("nir08",),
    "B09": ("nir09",),
    "B10": ("cirrus",),
    "B11": ("swir16",),
    "B12": ("swir22",),
}


def _check_bands(bands: Sequence[str]) -> tuple[str, ...]:
    if isinstance(bands, str):
        bands = (bands,)
    unknown = [b for b in bands if b not in BAND_INFO]
    if unknown or not bands:
        raise InputError(
            f"unknown Sentinel-2 band(s) {unknown}; expected names from {BANDS}", field="bands"
        )
    return tuple(bands)


# --------------------------------------------------------------------------- chip names

_NAME_RE = re.compile(
    r"^(?P<site>[A-Za-z0-9]+(?:[.-][A-Za-z0-9]+)*)_"
    r"(?P<Y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})T(?P<H>\d{2})[-:](?P<M>\d{2})[-:](?P<S>\d{2})"
    r"(?:_(?P<n>\d+))?$"
)


@dataclass(frozen=True)
class ChipName:
    """Parts of a smoke-dataset file name ``<siteid>_<ISO timestamp>_<n>.tif``."""

    site_id: str
    time: pd.Timestamp
    index: int | None


def format_chip_name(site_id: str, time: datetime | pd.Timestamp, index: int = 0) -> str:
    """File name of a chip: ``<siteid>_<YYYY-mm-ddTHH-MM-SS>_<n>.tif`` (no ':' in names)."""
    return f"{site_id}_{pd.Timestamp(time):%Y-%m-%dT%H-%M-%S}_{int(index)}.tif"


def parse_chip_name(name: str | os.PathLike[str]) -> ChipName:
    """Parse a chip file name; ``:`` or ``-`` are accepted as time separators.

    Raises
    ------
    InputError
        The name does not follow ``<siteid>_<timestamp>[_<n>].tif`` or holds an impossible date.
    """
    p = Path(name)
    if p.suffix.lower() not in (".tif", ".tiff"):
        raise InputError("not a .tif file name", path=p)
    m = _NAME_RE.match(p.stem)
    if m is None:
        raise InputError(
            "file name does not look like <siteid>_<YYYY-mm-ddTHH-MM-SS>_<n>.tif", path=p
        )
    try:
        t = datetime(*(int(m[k]) for k in "YmdHMS"))
    except ValueError as exc:
        raise InputError(f"impossible timestamp in file name: {exc}", path=p) from exc
    return ChipName(m["site"], pd.Timestamp(t), int(m["n"]) if m["n"] is not None else None)


# --------------------------------------------------------------------------- chips


def pad_to_size(array: np.ndarray, size: int | tuple[int, int] = CHIP_SIZE) -> np.ndarray:
    """Pad the last two axes up to ``size`` by repeating the last row/column.

    Arrays already at least ``size`` are returned unchanged (never cropped).
    """
    th, tw = (size, size) if isinstance(size, int) else size
    h, w = array.shape[-2:]
    ph, pw = max(th - h, 0), max(tw - w, 0)
    if ph == 0 and pw == 0:
        return array
    if h == 0 or w == 0:
        raise InputError(f"cannot pad an empty array of shape {array.shape}")
    out = np.empty((*array.shape[:-2], h + ph, w + pw), dtype=array.dtype)
    out[..., :h, :w] = array
    out[..., h:, :w] = array[..., h - 1 : h, :]
    out[..., :, w:] = out[..., :, w - 1 : w]
    return out


def _chip_header(src: rasterio.DatasetReader, path: Any) -> None:
    if src.driver != "GTiff":
        raise WrongProductError(f"not a GeoTIFF (GDAL driver {src.driver})", path=path)
    if src.count != len(BANDS):
        raise WrongProductError(
            f"expected {len(BANDS)} Sentinel-2 bands ({', '.join(BANDS)}), found {src.count}",
            path=path,
            field="band count",
        )
    desc = [d for d in src.descriptions if d]
    if desc and tuple(src.descriptions) != BANDS:
        logger.warning(
            "%s: band descriptions %s differ from the expected order %s",
            path,
            src.descriptions,
            BANDS,
        )


def _open_error(path: Any, exc: Exception) -> InputError:
    if not Path(path).exists():
        return InputError("file not found", path=path)
    return CorruptFileError(f"cannot read as GeoTIFF ({exc})", path=path)


def _read_chip_array(path: Any) -> tuple[np.ndarray, Any, Any, Any]:
    try:
        with rasterio.open(path) as src:
            _chip_header(src, path)
            data = src.read()
            return data, src.transform, src.crs, src.nodata
    except InputError:
        raise
    except (RasterioError, OSError) as exc:
        raise _open_error(path, exc) from exc


def open_chip(path: str | os.PathLike[str], pad_to: int | None = CHIP_SIZE) -> xr.DataArray:
    """Read one 13-band smoke-dataset chip eagerly as ``(band, y, x)`` uint16.

    Parameters
    ----------
    path
        GeoTIFF with the 13 bands B01..B12 (see :data:`BANDS`), reflectance x 1e4.
    pad_to
        Pad undersized chips to ``pad_to`` x ``pad_to`` by repeating the last row/column
        (the reference rule); ``None`` keeps the native size. Coordinates are extended
        with the same spacing; the transform (top-left origin) is unchanged.

    Returns
    -------
    xarray.DataArray named ``reflectance``, dims ``(band, y, x)``, ``band`` holding the
    band names, ``y``/``x`` pixel centres, CRS/transform attached the rioxarray way and
    attrs ``source`` and ``original_shape``.

    Raises
    ------
    InputError
        Missing file; :class:`CorruptFileError` for unreadable/truncated files;
        :class:`WrongProductError` for non-GeoTIFFs or a band count other than 13.
    """
    data, transform, crs, nodata = _read_chip_array(path)
    if transform.b != 0 or transform.d != 0:
        raise WrongProductError("rotated/sheared geotransforms are not supported", path=path)
    h, w = data.shape[1:]
    if pad_to is not None:
        data = pad_to_size(data, pad_to)
    ny, nx = data.shape[1:]
    x = transform.c + (np.arange(nx) + 0.5) * transform.a
    y = transform.f + (np.arange(ny) + 0.5) * transform.e
    coords: dict[str, Any] = {"band": list(BANDS), "y": y, "x": x}
    if crs is not None:
        coords["spatial_ref"] = xr.Variable(
            (), 0, attrs=_spatial_ref_attrs(crs.to_wkt(), tuple(transform)[:6])
        )
    else:
        logger.warning("%s: chip has no CRS", path)
    attrs = {
        "long_name": "Sentinel-2 L2A reflectance x 1e4",
        "units": "1",
        "source": os.fspath(path),
        "original_shape": (h, w),
    }
    if nodata is not None:
        attrs["_FillValue"] = nodata
    da = xr.DataArray(data, dims=("band", "y", "x"), coords=coords, name="reflectance", attrs=attrs)
    if crs is not None:
        da.encoding["grid_mapping"] = "spatial_ref"
    else:
        da = da.rio.write_transform(transform)
    return da


@lru_cache(maxsize=64)
def _crs_attrs(wkt: str) -> dict[str, Any]:
    """CF grid-mapping attributes of a CRS, as rioxarray writes them (cached: it is slow)."""
    probe = xr.DataArray(np.zeros((1, 1)), dims=("y", "x")).rio.write_crs(wkt)
    return dict(probe.coords["spatial_ref"].attrs)


def _spatial_ref_attrs(wkt: str, gt: tuple[float, ...]) -> dict[str, Any]:
    a, b, c, d, e, f = gt
    return {**_crs_attrs(wkt), "GeoTransform": f"{c!r} {a!r} {b!r} {f!r} {d!r} {e!r}"}


def read_chips(
    paths: Sequence[str | os.PathLike[str]],
    bands: Sequence[str] = SMOKE_BANDS,
    pad_to: int = CHIP_SIZE,
    max_workers: int | None = None,
) -> np.ndarray:
    """Read many chips into one ``(n, len(bands), pad_to, pad_to)`` uint16 array.

    Files are opened once each and closed; reads run in a thread pool (GDAL releases the
    GIL). Chips larger than ``pad_to`` raise :class:`GridMismatchError`.
    """
    idx = [BANDS.index(b) + 1 for b in _check_bands(bands)]
    out = np.empty((len(paths), len(idx), pad_to, pad_to), dtype=np.uint16)

    def one(i: int) -> None:
        p = paths[i]
        try:
            with rasterio.open(p) as src:
                _chip_header(src, p)
                if src.height > pad_to or src.width > pad_to:
                    raise GridMismatchError(
                        f"chip is {src.height} x {src.width}, larger than {pad_to}", path=p
                    )
                arr = src.read(idx, out_dtype=np.uint16)
        except InputError:
            raise
        except (RasterioError, OSError) as exc:
            raise _open_error(p, exc) from exc
        out[i] = pad_to_size(arr, pad_to)

    if max_workers == 1 or len(paths) < 4:
        for i in range(len(paths)):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=max_workers or min(8, os.cpu_count() or 1)) as pool:
            list(pool.map(one, range(len(paths))))
    return out


# --------------------------------------------------------------------------- dataset

_INDEX_COLUMNS = ["path", "label", "site_id", "time", "index", "label_path"]


def _index_labels(labels_dir: Path, skipped: list[SkippedInput]) -> dict[str, Path]:
    """Map image stem -> label file: by ``<stem>_features.json`` name, else ``data.image``."""
    by_stem: dict[str, Path] = {}
    if not labels_dir.is_dir():
        return by_stem
    for p in sorted(labels_dir.iterdir()):
        if p.is_dir():
            continue
        if p.suffix.lower() != ".json":
            skipped.append(SkippedInput(str(p), "not a .json label file"))
            continue
        if p.name.endswith(LABEL_SUFFIX):
            stem = label_image_stem(p)
        else:
            try:
                tasks = load_label_tasks(p)
            except InputError as exc:
                skipped.append(SkippedInput(str(p), f"unreadable label file: {exc.reason}"))
                continue
            image = tasks[0].get("data", {}).get("image") if len(tasks) == 1 else None
            if not isinstance(image, str):
                skipped.append(
                    SkippedInput(
                        str(p),
                        "label file name is not <image-stem>_features.json and it names no single image",
                    )
                )
                continue
            stem = Path(image.split("?", 1)[0]).stem
        if stem in by_stem:
            skipped.append(
                SkippedInput(
                    str(p), f"second label file for image {stem!r} (kept {by_stem[stem].name})"
                )
            )
            continue
        by_stem[stem] = p
    return by_stem


def _match_label(stem: str, by_stem: dict[str, Path]) -> Path | None:
    hit = by_stem.pop(stem, None)
    if hit is None:  # Label Studio upload names carry a '<hash>-' prefix
        key = next((k for k in by_stem if k.endswith("-" + stem)), None)
        hit = by_stem.pop(key) if key is not None else None
    return hit


@dataclass
class SmokeDataset:
    """Index of a smoke-plume dataset laid out like the published one.

    Attributes
    ----------
    root
        Dataset folder holding ``positive/``, ``negative/`` and ``labels/``.
    index
        One row per image: ``path``, ``label`` (1 = smoke), ``site_id``, ``time``,
        ``index`` (the ``<n>`` of the file name, or -1), ``label_path`` (None when unlabelled).
    skipped
        Files that were found but could not be used, with the reason.
    """

    root: Path
    index: pd.DataFrame
    skipped: list[SkippedInput] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.index)

    def chip(self, i: int, pad_to: int | None = CHIP_SIZE) -> xr.DataArray:
        """Image ``i`` (row position in :attr:`index`) through :func:`open_chip`."""
        return open_chip(self.index["path"].iat[i], pad_to=pad_to)

    def mask(self, i: int, pad_to: int | None = CHIP_SIZE) -> np.ndarray:
        """Smoke mask of image ``i`` on the image's own grid, padded like the image.

        Images without a label file get an all-False mask.
        """
        path = self.index["path"].iat[i]
        try:
            with rasterio.open(path) as src:
                shape = (src.height, src.width)
        except (RasterioError, OSError) as exc:
            raise _open_error(path, exc) from exc
        lp = self.index["label_path"].iat[i]
        mask = np.zeros(shape, dtype=bool) if lp is None else read_labels(lp, shape)
        return mask if pad_to is None else pad_to_size(mask, pad_to)

    def subset(self, rows: np.ndarray | Sequence[int] | pd.Series) -> SmokeDataset:
        """A dataset holding the given rows (positions or a boolean mask); ``skipped`` is shared."""
        rows = np.asarray(rows)
        sub = self.index[rows] if rows.dtype == bool else self.index.iloc[rows]
        return SmokeDataset(self.root, sub.reset_index(drop=True), self.skipped)

    def split_by_site(
        self, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
    ) -> tuple[SmokeDataset, ...]:
        """Split into datasets holding disjoint sets of sites; see :func:`split_by_site`."""
        groups = split_by_site(self.index, fractions, seed)
        return tuple(self.subset(self.index["site_id"].isin(g).to_numpy()) for g in groups)


def open_smoke_dataset(root: str | os.PathLike[str], labels_dir: str = "labels") -> SmokeDataset:
    """Index the images and label files of a smoke-plume dataset folder.

    Parameters
    ----------
    root
        Folder with ``positive/`` and ``negative/`` sub-folders of ``.tif`` chips named
        ``<siteid>_<YYYY-mm-ddTHH-MM-SS>_<n>.tif`` and a ``labels/`` folder of Label
        Studio JSON files named ``<image-stem>_features.json``.
    labels_dir
        Name of the label sub-folder.

    Returns
    -------
    SmokeDataset
        Files whose names cannot be parsed, non-TIFF files, label files without an
        image and duplicate labels are listed in ``skipped`` (and a warning is issued),
        never dropped silently. Reading the image content is left to :meth:`SmokeDataset.chip`.

    Raises
    ------
    InputError
        ``root`` is not a folder or has neither ``positive/`` nor ``negative/``.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError("dataset folder not found", path=root)
    folders = [(root / name, lab) for name, lab in (("positive", 1), ("negative", 0))]
    if not any(f.is_dir() for f, _ in folders):
        raise InputError("no 'positive/' or 'negative/' folder", path=root)
    skipped: list[SkippedInput] = []
    labels = _index_labels(root / labels_dir, skipped)
    rows = []
    for folder, lab in folders:
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.is_dir():
                continue
            try:
                parts = parse_chip_name(p.name)
            except InputError as exc:
                skipped.append(SkippedInput(str(p), exc.reason))
                continue
            lp = _match_label(p.stem, labels)
            if lp is not None and lab == 0:
                logger.info("%s: negative image has a label file %s", p, lp.name)
            idx = -1 if parts.index is None else parts.index
            rows.append(
                (str(p), lab, parts.site_id, parts.time, idx, None if lp is None else str(lp))
            )
    skipped.extend(SkippedInput(str(lp), "label file matches no image") for lp in labels.values())
    index = pd.DataFrame(rows, columns=_INDEX_COLUMNS)
    index["label"] = index["label"].astype(np.int8)
    index["time"] = pd.to_datetime(index["time"])
    index["index"] = index["index"].astype(np.int64)
    index["label_path"] = index["label_path"].astype(object)
    if skipped:
        msg = f"{root}: skipped {len(skipped)} file(s), e.g. {skipped[0]}; see SmokeDataset.skipped"
        logger.warning(msg)
        warnings.warn(msg, UserWarning, stacklevel=2)
    logger.info(
        "%s: %d images (%d positive) at %d sites",
        root,
        len(index),
        int(index["label"].sum()),
        index["site_id"].nunique(),
    )
    return SmokeDataset(root, index, skipped)


def split_by_site(
    index: pd.DataFrame, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
) -> list[list[str]]:
    """Assign whole sites to splits so image counts approach ``fractions``.

    Sites are shuffled with ``seed`` and each goes to the split furthest below its target
    image count, so no site appears in two splits.

    Returns
    -------
    list (one per fraction) of sorted site-id lists.
    """
    fr = np.asarray(fractions, dtype=float)
    if fr.ndim != 1 or fr.size == 0 or np.any(fr < 0) or not np.isfinite(fr).all() or fr.sum() <= 0:
        raise InputError(
            f"fractions must be non-negative and not all zero, got {fractions}", field="fractions"
        )
    fr = fr / fr.sum()
    counts = index.groupby("site_id").size()
    sites = np.array(sorted(counts.index))[np.random.default_rng(seed).permutation(len(counts))]
    target = fr * counts.sum()
    have = np.zeros(len(fr))
    groups: list[list[str]] = [[] for _ in fr]
    nonzero = [k for k in np.argsort(-fr, kind="stable") if fr[k] > 0]
    start = 0
    if len(sites) >= len(
        nonzero
    ):  # one site per non-empty split first, smallest sites to smallest splits
        seeds = sorted(sites[: len(nonzero)], key=lambda s: (counts[s], s), reverse=True)
        for k, s in zip(nonzero, seeds, strict=True):
            groups[k].append(str(s))
            have[k] += counts[s]
        start = len(nonzero)
    for s in sites[start:]:
        k = int(np.argmax(target - have))
        groups[k].append(str(s))
        have[k] += counts[s]
    return [sorted(g) for g in groups]


# --------------------------------------------------------------------------- scenes

_EPSG_CODE_RE = re.compile(r"^\s*EPSG\s*:\s*(\d+)\s*$", re.IGNORECASE)


def _resolve_href(href: str, base: str | None) -> str:
    """Absolute local path (``file://`` stripped) or URL of an asset href."""
    if href.startswith("file://"):
        return href[len("file://") :]
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", href) or os.path.isabs(href):
        return href
    if base is None:
        return href
    base = base[len("file://") :] if base.startswith("file://") else base
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", base):
        return base.rsplit("/", 1)[0] + "/" + href.removeprefix("./")
    return os.path.normpath(os.path.join(os.path.dirname(base), href))


def _epsg_of(meta: dict[str, Any]) -> int | None:
    """EPSG code from ``proj:epsg``, ``proj:code``, ``proj:wkt2`` or ``proj:projjson``."""
    if meta.get("proj:epsg") is not None:
        return int(meta["proj:epsg"])
    code = meta.get("proj:code")
    if isinstance(code, str) and (m := _EPSG_CODE_RE.match(code)):
        return int(m[1])
    for key in ("proj:wkt2", "proj:projjson", "proj:code"):
        if meta.get(key) is not None:
            from pyproj import CRS
            from pyproj.exceptions import CRSError

            try:
                return CRS.from_user_input(meta[key]).to_epsg()
            except CRSError:
                return None
    return None


def _asset_key(assets: dict[str, Any], band: str) -> str | None:
    if band in assets:
        return band
    for key, asset in assets.items():
        eo = asset.get("eo:bands") or asset.get("bands") or []
        if len(eo) == 1 and isinstance(eo[0], dict) and eo[0].get("name") == band:
            return key
    lower = {k.lower(): k for k in assets}
    for alias in (band.lower(), *_ASSET_ALIASES[band]):
        if alias in lower:
            return lower[alias]
    return None


def _normalise_item(
    item: dict[str, Any], base: str | None, bands: Sequence[str], where: str
) -> dict[str, Any]:
    """Copy of a STAC item dict with canonical band asset keys, absolute hrefs and ``proj:epsg``."""
    props = dict(item.get("properties") or {})
    if not isinstance(item.get("assets"), dict) or "datetime" not in props:
        raise WrongProductError(
            "not a STAC item (no 'assets' or 'properties.datetime')", path=where
        )
    links = item.get("links") or []
    self_href = next(
        (ln.get("href") for ln in links if isinstance(ln, dict) and ln.get("rel") == "self"), None
    )
    base = self_href or base
    epsg = _epsg_of(props)
    if epsg is not None:
        props["proj:epsg"] = epsg
    assets = {}
    for band in bands:
        key = _asset_key(item["assets"], band)
        if key is None:
            raise WrongProductError(
                f"item {item.get('id')!r} has no asset for band {band} (assets: {sorted(item['assets'])})",
                path=where,
                field=band,
            )
        asset = dict(item["assets"][key])
        asset["href"] = href = _resolve_href(str(asset.get("href", "")), base)
        if "://" not in href and not os.path.exists(href):
            raise InputError(
                f"asset {key!r} of item {item.get('id')!r}: file not found: {href}", path=where
            )
        aepsg = _epsg_of(asset)
        if aepsg is not None:
            asset["proj:epsg"] = aepsg
        assets[band] = asset
    return {**item, "properties": props, "assets": assets}


def _load_items(items: Any) -> list[tuple[dict[str, Any], str | None, str]]:
    """(item dict, base href, description) for every item in ``items``."""
    import pystac

    if isinstance(items, pystac.ItemCollection | pystac.Item | dict | str | os.PathLike):
        items = [items]
    out: list[tuple[dict[str, Any], str | None, str]] = []
    for obj in items:
        if isinstance(obj, pystac.Item):
            d = obj.to_dict(include_self_link=False)
            for k, a in obj.assets.items():
                d["assets"][k]["href"] = a.get_absolute_href() or a.href
            out.append((d, obj.get_self_href(), f"item {obj.id}"))
        elif isinstance(obj, pystac.ItemCollection):
            out.extend(_load_items(list(obj)))
        elif isinstance(obj, pystac.Catalog):
            out.extend(_load_items(list(obj.get_items(recursive=True))))
        elif isinstance(obj, dict):
            if obj.get("type") == "FeatureCollection":
                out.extend((f, None, f"item {f.get('id')}") for f in obj.get("features", []))
            else:
                out.append((obj, None, f"item {obj.get('id')}"))
        elif isinstance(obj, str | os.PathLike):
            out.extend(_load_item_file(os.fspath(obj)))
        else:
            raise InputError(f"cannot use {type(obj).__name__} as a STAC item")
    return out


def _load_item_file(path: str) -> list[tuple[dict[str, Any], str | None, str]]:
    import json

    import pystac

    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except FileNotFoundError as exc:
        raise InputError("STAC file not found", path=path) from exc
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"cannot read STAC JSON: {exc}", path=path) from exc
    if not isinstance(obj, dict):
        raise WrongProductError("not a STAC item, item collection or catalog", path=path)
    kind = obj.get("type")
    if kind == "FeatureCollection":
        return [(f, os.path.abspath(path), path) for f in obj.get("features", [])]
    if kind in ("Catalog", "Collection"):
        try:
            cat = pystac.read_file(os.path.abspath(path))
        except Exception as exc:
            raise CorruptFileError(f"cannot read STAC catalog: {exc}", path=path) from exc
        return _load_items(list(cat.get_items(recursive=True)))
    return [(obj, os.path.abspath(path), path)]


def _is_geotiff_path(obj: Any) -> bool:
    return isinstance(obj, str | os.PathLike) and Path(obj).suffix.lower() in (".tif", ".tiff")


def open_scene(
    items_or_paths: Any,
    bands: Sequence[str] = SMOKE_BANDS,
    bbox: tuple[float, float, float, float] | None = None,
    resolution: float | None = 10,
    dtype: str | np.dtype = "float32",
    chunksize: int | tuple[int, int] = 1024,
    *,
    bbox_latlon: tuple[float, float, float, float] | None = None,
    epsg: int | None = None,
    rescale: bool = False,
) -> xr.DataArray:
    """Open Sentinel-2 scenes as one lazy ``(time, band, y, x)`` cube.

    Parameters
    ----------
    items_or_paths
        STAC items (``pystac.Item``, item dicts, an ``ItemCollection``, a catalog, or
        paths to item / item-collection / catalog JSON files), stacked with
        :func:`stackstac.stack`; or paths to local multi-band GeoTIFFs (band order
        :data:`BANDS` or band descriptions naming the bands), opened with rioxarray.
        Relative asset hrefs are resolved against the item's JSON file (or ``self`` link).
    bands
        Band names; assets are found by key, ``eo:bands`` name or common-name key.
    bbox, bbox_latlon
        Subset bounds ``(minx, miny, maxx, maxy)`` in the output CRS, or in lon/lat.
    resolution
        Output pixel size (CRS units) for STAC items; for GeoTIFFs it must equal the
        native one (``None`` = native).
    dtype
        ``"float32"`` (nodata -> NaN) or ``"uint16"`` (nodata -> 0). Never float64.
    chunksize
        Dask chunk size along ``y``/``x``.
    epsg
        Output CRS for STAC items (default: the items' common CRS).
    rescale
        Apply ``raster:bands`` scale/offset (float32 only). Off by default so values
        stay reflectance x 1e4 like the smoke chips.

    Returns
    -------
    xarray.DataArray ``reflectance`` with dims ``(time, band, y, x)`` (pixel-centre
    coordinates), dask-backed, CRS attached the rioxarray way.
    """
    import stackstac

    bands = _check_bands(bands)
    dt = np.dtype(dtype)
    if dt not in (np.dtype("float32"), np.dtype("uint16")):
        raise InputError(f"dtype must be float32 or uint16, got {dt}", field="dtype")
    # numpy scalars: stackstac checks np.can_cast(type(fill_value), dtype)
    fill = np.float32(np.nan) if dt.kind == "f" else np.uint16(0)
    if rescale and dt.kind != "f":
        raise InputError("rescale=True needs dtype='float32'", field="rescale")
    seq = [items_or_paths] if isinstance(items_or_paths, str | os.PathLike) else items_or_paths
    if isinstance(seq, list | tuple) and seq and all(_is_geotiff_path(p) for p in seq):
        return _open_geotiff_scene(list(seq), bands, bbox, bbox_latlon, resolution, dt, chunksize)
    loaded = _load_items(items_or_paths)
    if not loaded:
        raise InputError("no STAC items given")
    dicts = [_normalise_item(d, base, bands, where) for d, base, where in loaded]
    try:
        arr = stackstac.stack(
            dicts,
            assets=list(bands),
            epsg=epsg,
            resolution=resolution,
            bounds=bbox,
            bounds_latlon=bbox_latlon,
            chunksize=chunksize,
            dtype=dt,
            fill_value=fill,
            rescale=rescale,
            xy_coords="center",
            sortby_date="asc",
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"cannot stack the STAC items: {exc}") from exc
    arr = arr.assign_coords(band=list(bands))
    arr.name = "reflectance"
    arr.attrs.update(
        long_name="Sentinel-2 L2A reflectance x 1e4" if not rescale else "Sentinel-2 reflectance",
        units="1",
    )
    spec = arr.attrs.get("spec")
    out_epsg = getattr(spec, "epsg", None) or epsg
    if out_epsg is None and "epsg" in arr.coords and arr.coords["epsg"].ndim == 0:
        out_epsg = int(arr.coords["epsg"])
    if out_epsg is not None:
        arr = arr.rio.write_crs(f"EPSG:{int(out_epsg)}")
    return arr


def _open_geotiff_scene(
    paths: list[Any],
    bands: tuple[str, ...],
    bbox: Any,
    bbox_latlon: Any,
    resolution: float | None,
    dt: np.dtype,
    chunksize: int | tuple[int, int],
) -> xr.DataArray:
    cs = (chunksize, chunksize) if isinstance(chunksize, int) else tuple(chunksize)
    layers, times = [], []
    for i, p in enumerate(paths):
        try:
            da = rioxarray.open_rasterio(
                p, chunks={"band": -1, "y": cs[0], "x": cs[1]}, mask_and_scale=False, lock=False
            )
        except (RasterioError, OSError) as exc:
            raise _open_error(p, exc) from exc
        names = da.attrs.get("long_name")
        names = (names,) if isinstance(names, str) else tuple(names or ())
        if set(bands) <= set(names):
            pos = [names.index(b) for b in bands]
        elif da.sizes["band"] == len(BANDS):
            pos = [BANDS.index(b) for b in bands]
        else:
            raise WrongProductError(
                f"{da.sizes['band']} bands without band descriptions naming {list(bands)}",
                path=p,
                field="band count",
            )
        if resolution is not None and not np.allclose(np.abs(da.rio.resolution()), resolution):
            raise GridMismatchError(
                f"native resolution {da.rio.resolution()} differs from {resolution}", path=p
            )
        nodata = da.rio.nodata
        da = da.isel(band=pos).assign_coords(band=list(bands))
        if dt.kind == "f":
            da = da.astype(dt)
            if nodata is not None:
                da = da.where(da != nodata)
        else:
            da = da.astype(dt)
        if bbox_latlon is not None:
            from rasterio.warp import transform_bounds

            bbox = transform_bounds("EPSG:4326", da.rio.crs, *bbox_latlon)
        if bbox is not None:
            da = da.rio.clip_box(*bbox)
        if layers and (
            da.sizes != layers[0].sizes
            or not np.allclose(da.x, layers[0].x)
            or not np.allclose(da.y, layers[0].y)
        ):
            raise GridMismatchError("GeoTIFF grid differs from the first file's", path=p)
        try:
            t = parse_chip_name(Path(p).name).time
        except InputError:
            t = _tiff_time(p, i)
        layers.append(
            da.drop_vars([c for c in da.coords if c not in ("band", "y", "x", "spatial_ref")])
        )
        times.append(t)
    out = xr.concat(
        layers,
        dim=pd.DatetimeIndex(times, name="time"),
        join="exact",
        combine_attrs="drop_conflicts",
    )
    out = out.sortby("time")
    out.name = "reflectance"
    out.attrs.update(long_name="Sentinel-2 L2A reflectance x 1e4", units="1")
    return out.rio.write_crs(layers[0].rio.crs)


def _tiff_time(path: Any, i: int) -> pd.Timestamp:
    with rasterio.open(path) as src:
        stamp = src.tags().get("TIFFTAG_DATETIME")
    if stamp:
        try:
            return pd.Timestamp(datetime.strptime(stamp, "%Y:%m:%d %H:%M:%S"))
        except ValueError:
            pass
    logger.warning("%s: no time in the file name or TIFFTAG_DATETIME; using position %d", path, i)
    return pd.Timestamp(0) + pd.Timedelta(days=i)
