"""Smoke plume pipeline: Sentinel-2 chips and scenes -> probabilities, masks, plume areas.

* :func:`classify_chips`: a table of chips with the classifier's smoke probability and the
  segmenter's mask area (m2), in batches with weights loaded once.
* :func:`segment_scene`: whole scenes (STAC items or GeoTIFFs, opened lazily with
  :func:`~firesmoke.io.stac.open_scene`) -> a ``(time, y, x)`` uint8 smoke mask in the
  scene CRS, computed with the generic tiling engine
  (:func:`~firesmoke.inference.predict_array`) over the dask array.
* :func:`plume_timeseries`: per emitter site and time, whether a plume is present and its
  area: the connected mask components that come within ``radius_m`` of the site.

Tiling of scenes: the U-Net is fully convolutional (any size that is a multiple of 16
works), so scenes are cut into 256 x 256 tiles every 224 px (32 px overlap) and blended
with the raised-cosine ``"centre"`` window, which gives almost no weight to the outer
pixels of a tile, where the network sees zero padding instead of context. Tiles are
anchored to the scene's global grid and each dask block gets a one-tile halo, so masks do
not depend on the chunking. Inputs are z-scored in dask *before* tiling, with NaN (no data)
set to 0 = the band mean, so padding beyond the scene edge looks like an average scene.

Default weights are the named ``smoke_classifier_synthetic`` / ``smoke_segmenter_synthetic``
files shipped in ``firesmoke/data/weights`` (small models trained on SYNTHETIC chips only;
see their model cards); any path or name that
:func:`~firesmoke.models.weights.find_weights` resolves works, e.g. full-size weights.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from firesmoke._version import __version__
from firesmoke.errors import CorruptFileError, InputError, MissingColumnError, WeightsError
from firesmoke.inference import TileModel, predict_array, resolve_device
from firesmoke.io.sentinel2 import BANDS, CHIP_SIZE, parse_chip_name, read_chips
from firesmoke.io.smoke_dataset import SmokeDataset, open_smoke_dataset

__all__ = [
    "DEFAULT_CLASSIFIER",
    "DEFAULT_SEGMENTER",
    "classify_chips",
    "plume_timeseries",
    "predict_smoke_chips",
    "predict_smoke_scene",
    "read_sites",
    "scene_probability",
    "segment_scene",
]

logger = logging.getLogger(__name__)

#: Named weights used by default (shipped with the package; synthetic training data only).
DEFAULT_CLASSIFIER = "smoke_classifier_synthetic"
DEFAULT_SEGMENTER = "smoke_segmenter_synthetic"
#: Area of a 10 m Sentinel-2 pixel (m2).
PIXEL_AREA_M2 = 100.0


# ----------------------------------------------------------------------------- models
def _load(weights: Any, device: str, want: str) -> tuple[Any, dict[str, Any]]:
    """Model (eval mode, on ``device``) and metadata from a weights path/name or a module."""
    import torch

    from firesmoke.models.normalization import SMOKE_S2
    from firesmoke.models.weights import load_weights

    if isinstance(weights, torch.nn.Module):
        meta = {"bands": list(SMOKE_S2.bands), "normalization": SMOKE_S2.to_dict(),
                "architecture": want, "sha256": None, "path": None}
        return weights.to(device).eval(), meta
    model, meta = load_weights(weights, map_location=device)
    if meta.get("architecture") != want:
        raise WeightsError(
            f"expected {want!r} weights, the file holds {meta.get('architecture')!r}",
            path=meta.get("path"),
        )
    return model, meta


def _normalization(meta: dict[str, Any]) -> Any:
    """The :class:`~firesmoke.models.normalization.Normalization` of weights, checked."""
    from firesmoke.models.normalization import Normalization

    norm = dict(meta.get("normalization") or {})
    bands = tuple(meta.get("bands") or norm.get("bands") or ())
    if not bands or "mean" not in norm or "std" not in norm:
        raise WeightsError("weights metadata lacks bands/normalization", path=meta.get("path"))
    unknown = [b for b in bands if b not in BANDS]
    if unknown:
        raise WeightsError(f"weights use unknown bands {unknown}", path=meta.get("path"))
    try:
        return Normalization.from_dict({**norm, "bands": bands})
    except ValueError as exc:
        raise WeightsError(f"normalization does not match the band list ({exc})",
                           path=meta.get("path")) from exc


# ----------------------------------------------------------------------------- chips
def _chip_table(paths_or_dataset: Any) -> pd.DataFrame:
    """``path``, ``site_id``, ``time`` (and ``label`` for datasets) of the chips to score."""
    if isinstance(paths_or_dataset, SmokeDataset):
        return paths_or_dataset.index[["path", "site_id", "time", "label"]].reset_index(drop=True)
    if isinstance(paths_or_dataset, str | os.PathLike):
        p = Path(paths_or_dataset)
        if p.is_dir():
            if (p / "positive").is_dir() or (p / "negative").is_dir():
                return _chip_table(open_smoke_dataset(p))
            paths = sorted(q for q in p.iterdir() if q.suffix.lower() in (".tif", ".tiff"))
            if not paths:
                raise InputError("folder holds no .tif chips", path=p)
        else:
            paths = [p]
    else:
        paths = [Path(q) for q in paths_or_dataset]
    rows = []
    for q in paths:
        try:
            name = parse_chip_name(Path(q).name)
            rows.append((str(q), name.site_id, name.time))
        except InputError:
            rows.append((str(q), None, pd.NaT))
    return pd.DataFrame(rows, columns=["path", "site_id", "time"]).astype({"time": "datetime64[ns]"})


def _chip_geometry(paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Original ``(h, w)`` and pixel area (m2) of each chip, from the file headers."""
    import rasterio
    from rasterio.errors import RasterioError

    shapes = np.zeros((len(paths), 2), np.int64)
    areas = np.full(len(paths), PIXEL_AREA_M2)
    for i, p in enumerate(paths):
        try:
            with rasterio.open(p) as src:
                shapes[i] = src.height, src.width
                t = src.transform
                if src.crs is not None and src.crs.is_projected and not t.is_identity:
                    areas[i] = abs(t.a * t.e - t.b * t.d)
        except (RasterioError, OSError) as exc:
            if not Path(p).exists():
                raise InputError("file not found", path=p) from exc
            raise CorruptFileError(f"cannot read as GeoTIFF ({exc})", path=p) from exc
    return shapes, areas


def _forward(model: Any, norm: Any, x: np.ndarray, device: str) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return model(norm.apply(torch.from_numpy(x).to(device))).float().cpu().numpy()


def classify_chips(
    paths_or_dataset: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | SmokeDataset,
    classifier: Any = DEFAULT_CLASSIFIER,
    segmenter: Any = DEFAULT_SEGMENTER,
    batch_size: int = 32,
    device: str | None = None,
    threshold: float = 0.5,
    return_masks: bool = False,
) -> pd.DataFrame:
    """Smoke probability and plume area of Sentinel-2 chips.

    Parameters
    ----------
    paths_or_dataset
        Chip GeoTIFFs (13 bands, see :data:`~firesmoke.io.sentinel2.BANDS`): a list of
        paths, one path, a folder of ``.tif`` files, a dataset folder with ``positive/``
        / ``negative/``, or a :class:`~firesmoke.io.smoke_dataset.SmokeDataset`.
        Chips smaller than 120 px are padded like the reference.
    classifier, segmenter
        Weights paths or names (default: the shipped synthetic-data weights), or
        ``torch.nn.Module`` s using the reference normalisation; ``None`` skips the model
        (its columns are NaN).
    batch_size
        Chips per forward pass; chips are read batch by batch (memory stays bounded).
    device
        ``"cuda"``, ``"cpu"`` or ``None`` (CUDA when available).
    threshold
        Probability at or above which a chip (``smoke``) or a pixel (mask) is smoke.
    return_masks
        Add a ``mask`` column holding each chip's boolean mask at its original size.

    Returns
    -------
    pandas.DataFrame
        One row per chip: ``path``, ``site_id``, ``time`` (from the file name; None/NaT
        when it does not follow the dataset convention), ``label`` (datasets only),
        ``probability`` (classifier), ``smoke`` (probability >= threshold; nullable
        boolean, NA without a classifier),
        ``mask_pixels`` and ``mask_area_m2`` (segmenter mask pixels inside the original
        chip x pixel area, 100 m2 at 10 m). ``attrs`` records the weights used.
    """
    from scipy.special import expit

    if classifier is None and segmenter is None:
        raise InputError("give a classifier, a segmenter or both", field="classifier")
    dev = resolve_device(device)
    table = _chip_table(paths_or_dataset)
    n = len(table)
    cls = _load(classifier, dev, "smoke_resnet50") if classifier is not None else (None, None)
    seg = _load(segmenter, dev, "smoke_unet") if segmenter is not None else (None, None)
    prob = np.full(n, np.nan, np.float32)
    pixels = np.full(n, np.nan)
    masks: list[np.ndarray] = []
    paths = list(table["path"])
    shapes, areas = _chip_geometry(paths)
    logit_thr = float(np.log(threshold / (1 - threshold))) if 0 < threshold < 1 else None
    models = [(w, m, _normalization(meta)) for w, (m, meta) in (("cls", cls), ("seg", seg))
              if m is not None]
    wanted = tuple(dict.fromkeys(b for _, _, norm in models for b in norm.bands))
    batch_size = max(int(batch_size), 1)
    for start in range(0, n, batch_size):
        sl = slice(start, min(start + batch_size, n))
        raw = read_chips(paths[sl], bands=wanted, pad_to=CHIP_SIZE)  # each file read once
        for which, model, norm in models:
            sel = raw[:, [wanted.index(b) for b in norm.bands]].astype(np.float32)
            out = _forward(model, norm, sel, dev)
            if which == "cls":
                prob[sl] = expit(out[:, 0])
                continue
            logits = out[:, 0]
            m = logits >= logit_thr if logit_thr is not None else (
                np.ones_like(logits, bool) if threshold <= 0 else np.zeros_like(logits, bool)
            )
            for j, i in enumerate(range(sl.start, sl.stop)):
                h, w = shapes[i]
                mi = m[j, :h, :w]
                pixels[i] = np.count_nonzero(mi)
                if return_masks:
                    masks.append(mi.copy())
    out_df = table.copy()
    out_df["probability"] = prob
    smoke = pd.array(prob >= threshold, dtype="boolean")
    smoke[np.isnan(prob)] = pd.NA  # no classifier: unknown
    out_df["smoke"] = smoke
    out_df["mask_pixels"] = pixels
    out_df["mask_area_m2"] = pixels * areas
    if return_masks:
        out_df["mask"] = masks if seg[0] is not None else [None] * n
    out_df.attrs.update(
        classifier=None if cls[1] is None else cls[1].get("path"),
        classifier_sha256=None if cls[1] is None else cls[1].get("sha256"),
        segmenter=None if seg[1] is None else seg[1].get("path"),
        segmenter_sha256=None if seg[1] is None else seg[1].get("sha256"),
        threshold=threshold,
        package_version=__version__,
    )
    return out_df


# ----------------------------------------------------------------------------- scenes
class _FixedModule:
    """Picklable builder returning a given module (for in-memory models)."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def __call__(self) -> Any:
        return self.module


def _tile_model(segmenter: Any) -> tuple[TileModel, dict[str, Any]]:
    """TileModel (with its normalisation: NaN = no data -> 0 = the band mean) + metadata."""
    import torch

    from firesmoke.models.normalization import SMOKE_S2
    from firesmoke.models.weights import find_weights, load_weights, state_dict_sha256

    if isinstance(segmenter, torch.nn.Module):
        sha = state_dict_sha256(segmenter.state_dict())
        meta = {"bands": list(SMOKE_S2.bands), "normalization": SMOKE_S2.to_dict(),
                "architecture": "smoke_unet", "sha256": sha, "path": None}
        tm = TileModel(builders=(_FixedModule(segmenter),), key=f"module:{sha[:16]}",
                       normalization=SMOKE_S2, activation="sigmoid")
        return tm, meta
    path = str(find_weights(segmenter).resolve())
    _, meta = load_weights(path)
    if meta.get("architecture") != "smoke_unet":
        raise WeightsError(
            f"segment_scene needs smoke_unet weights, got {meta.get('architecture')!r}",
            path=path,
        )
    tm = TileModel.from_weights(path, normalization=_normalization(meta), activation="sigmoid")
    return tm, meta


def scene_probability(
    items_or_paths: Any,
    segmenter: Any = DEFAULT_SEGMENTER,
    bands: Sequence[str] | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    tile: int = 256,
    step: int = 224,
    window: str = "centre",
    batch_size: int = 4,
    device: str | None = None,
    chunksize: int = 1024,
    **open_kwargs: Any,
) -> xr.DataArray:
    """Lazy per-pixel smoke probability ``(time, y, x)`` float32 of Sentinel-2 scenes.

    Parameters are those of :func:`segment_scene` (without ``threshold``). Pixels without
    data in every band get NaN.
    """
    from firesmoke.io.stac import open_scene

    if tile % 16:
        raise InputError(f"tile must be a multiple of 16 for the U-Net, got {tile}", field="tile")
    model, meta = _tile_model(segmenter)
    wbands = model.normalization.bands
    if bands is not None and tuple(bands) != wbands:
        raise InputError(
            f"bands {tuple(bands)} differ from the weights' bands {wbands}", field="bands"
        )
    scene = open_scene(items_or_paths, bands=wbands, bbox=bbox, chunksize=chunksize, **open_kwargs)
    z = scene.astype(np.float32)  # normalised on the device by the engine (TileModel)
    nodata = scene.isnull().all("band")
    import dask.array as da

    layers = []
    for t in range(scene.sizes["time"]):
        arr = da.asarray(z.isel(time=t).data)
        p = predict_array(arr, model, out_channels=1, tile=tile, step=step,
                          batch_size=batch_size, window=window, device=device)
        layers.append(p[0])
    prob = da.stack(layers).rechunk((1, *z.data.chunks[-2:])) if layers else da.zeros(
        (0, scene.sizes["y"], scene.sizes["x"]), np.float32)
    out = xr.DataArray(
        prob, dims=("time", "y", "x"),
        coords={"time": scene["time"].values, "y": scene["y"].values, "x": scene["x"].values},
        name="smoke_probability",
    ).where(~xr.DataArray(nodata.data, dims=("time", "y", "x")))
    out.attrs.update(
        long_name="smoke probability", units="1", **_provenance(meta, tile, step, window)
    )
    crs = scene.rio.crs
    if crs is not None:
        out = out.rio.write_crs(crs)
    return out.rio.write_transform(scene.rio.transform())


def _provenance(meta: dict[str, Any], tile: int, step: int, window: str) -> dict[str, Any]:
    return {
        "weights": str(meta.get("path")),
        "weights_sha256": str(meta.get("sha256")),
        "training_data": str(meta.get("training_data", "")),
        "package_version": __version__,
        "tile": tile,
        "step": step,
        "window": window,
    }


def segment_scene(
    items_or_paths: Any,
    segmenter: Any = DEFAULT_SEGMENTER,
    bands: Sequence[str] | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    tile: int = 256,
    step: int = 224,
    window: str = "centre",
    threshold: float = 0.5,
    batch_size: int = 4,
    device: str | None = None,
    chunksize: int = 1024,
    **open_kwargs: Any,
) -> xr.DataArray:
    """Smoke mask of whole Sentinel-2 scenes, georeferenced in the scene CRS (lazy).

    Parameters
    ----------
    items_or_paths
        STAC items / item collections / catalogs (objects or JSON paths) or 13-band
        GeoTIFFs, as :func:`~firesmoke.io.stac.open_scene` accepts.
    segmenter
        U-Net weights path or name (default: the shipped synthetic-data weights), or an
        in-memory ``SmokeUNet`` (reference normalisation assumed).
    bands
        Band list to check against the weights' (``None``: the weights' list).
    bbox
        Subset ``(minx, miny, maxx, maxy)`` in the scene CRS.
    tile, step, window
        Tiling: 256 px tiles every 224 px (32 px overlap) blended with the ``"centre"``
        window by default (see the module notes); ``tile`` must be a multiple of 16.
    threshold
        Probability at or above which a pixel is smoke.
    batch_size, device
        Tiles per forward pass; ``"cuda"``/``"cpu"``/``None`` (auto).
    chunksize
        Dask chunk size of the scene (the result does not depend on it).
    **open_kwargs
        Passed to :func:`~firesmoke.io.stac.open_scene` (``resolution``, ``epsg``, ...).

    Returns
    -------
    xarray.DataArray
        ``smoke_mask`` uint8 ``(time, y, x)`` (1 = smoke, 0 = none or no data), dask
        backed, with the scene's coordinates, CRS and transform (rioxarray) and
        provenance attrs (weights and sha256, package version, tiling, threshold).
    """
    prob = scene_probability(items_or_paths, segmenter, bands, bbox, tile, step, window,
                             batch_size, device, chunksize, **open_kwargs)
    mask = (prob >= threshold).astype(np.uint8)
    mask.name = "smoke_mask"
    mask.attrs = {
        **{k: v for k, v in prob.attrs.items() if k not in ("long_name", "units")},
        "long_name": "smoke mask", "units": "1", "flag_values": [0, 1],
        "flag_meanings": "no_smoke_or_no_data smoke", "threshold": threshold,
        "pixel_area_m2": float(abs(np.prod(prob.rio.resolution()))),
    }
    if prob.rio.crs is not None:
        mask = mask.rio.write_crs(prob.rio.crs)
    return mask.rio.write_transform(prob.rio.transform())


# ----------------------------------------------------------------------------- plumes
def read_sites(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Emitter sites from a CSV with columns ``site_id``, ``lon``, ``lat``."""
    try:
        df = pd.read_csv(path, dtype={"site_id": str})
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the site table: {exc}", path=path) from exc
    return _sites_frame(df, where=path)


def _sites_frame(sites: Any, where: Any = None) -> pd.DataFrame:
    if isinstance(sites, pd.DataFrame):
        df = sites
    else:
        rows = []
        for s in sites if isinstance(sites, Iterable) else [sites]:
            if all(hasattr(s, k) for k in ("site_id", "lon", "lat")):
                rows.append((str(s.site_id), float(s.lon), float(s.lat)))
            else:
                sid, lon, lat = s
                rows.append((str(sid), float(lon), float(lat)))
        df = pd.DataFrame(rows, columns=["site_id", "lon", "lat"])
    missing = [c for c in ("site_id", "lon", "lat") if c not in df.columns]
    if missing:
        raise MissingColumnError(f"site table lacks column(s) {missing}", path=where,
                                 field=missing[0])
    out = df[["site_id", "lon", "lat"]].copy()
    out["site_id"] = out["site_id"].astype(str)
    return out.reset_index(drop=True)


def plume_timeseries(
    mask: xr.DataArray,
    sites: Any,
    radius_m: float = 500.0,
    connectivity: int = 8,
) -> pd.DataFrame:
    """Plume presence and area per emitter site and time.

    For every time step the mask is split into connected components; the plume of a site
    is the union of the components with at least one pixel centre within ``radius_m`` of
    the site, and its area is their whole area (pixels x pixel area), also beyond the
    radius.

    Parameters
    ----------
    mask
        ``(time, y, x)`` or ``(y, x)`` smoke mask (non-zero = smoke) with a CRS and
        transform (e.g. from :func:`segment_scene`).
    sites
        DataFrame with ``site_id``, ``lon``, ``lat`` (WGS 84), a sequence of
        ``(site_id, lon, lat)`` tuples, or objects with those attributes.
    radius_m
        Search radius around each site (scene CRS units, metres for UTM).
    connectivity
        8 (diagonal neighbours connect, default) or 4.

    Returns
    -------
    pandas.DataFrame
        One row per site and time: ``site_id``, ``time``, ``plume_present``,
        ``plume_area_m2``, ``n_components``, ``in_scene`` (False when the search disc
        misses the grid; area then 0).
    """
    from pyproj import Transformer
    from scipy import ndimage

    if connectivity not in (4, 8):
        raise InputError(f"connectivity must be 4 or 8, got {connectivity}", field="connectivity")
    if mask.ndim == 2:
        mask = mask.expand_dims(time=[pd.NaT] if "time" not in mask.coords else [mask["time"].values])
    if mask.dims != ("time", "y", "x"):
        raise InputError(f"mask dims must be (time, y, x), got {mask.dims}", field="mask")
    crs = mask.rio.crs
    if crs is None:
        raise InputError("the mask has no CRS (write one with .rio.write_crs)", field="mask")
    tr = mask.rio.transform()
    if tr.b != 0 or tr.d != 0:
        raise InputError("rotated grids are not supported", field="mask")
    table = _sites_frame(sites)
    xs, ys = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(
        table["lon"].to_numpy(float), table["lat"].to_numpy(float)
    )
    px_area = abs(tr.a * tr.e)
    ny, nx = mask.sizes["y"], mask.sizes["x"]
    ry, rx = radius_m / abs(tr.e), radius_m / abs(tr.a)
    structure = np.ones((3, 3), bool) if connectivity == 8 else ndimage.generate_binary_structure(2, 1)
    rows = []
    for t in range(mask.sizes["time"]):
        m = np.asarray(mask.isel(time=t).values) > 0
        labels, _ = ndimage.label(m, structure=structure)
        sizes = np.bincount(labels.ravel())
        when = mask["time"].values[t]
        for sid, x, y in zip(table["site_id"], xs, ys, strict=True):
            col, row = (x - tr.c) / tr.a, (y - tr.f) / tr.e  # fractional pixel position
            r0, r1 = max(int(np.floor(row - ry)), 0), min(int(np.ceil(row + ry)) + 1, ny)
            c0, c1 = max(int(np.floor(col - rx)), 0), min(int(np.ceil(col + rx)) + 1, nx)
            ids: np.ndarray = np.zeros(0, np.int64)
            inside = r0 < r1 and c0 < c1
            if inside:
                rr, cc = np.mgrid[r0:r1, c0:c1]
                dist = np.hypot((cc + 0.5 - col) * tr.a, (rr + 0.5 - row) * tr.e)
                disc = dist <= radius_m
                inside = bool(disc.any())
                ids = np.unique(labels[r0:r1, c0:c1][disc])
                ids = ids[ids > 0]
            area = float(sizes[ids].sum() * px_area) if ids.size else 0.0
            rows.append((sid, when, bool(ids.size), area, int(ids.size), inside))
    out = pd.DataFrame(
        rows,
        columns=["site_id", "time", "plume_present", "plume_area_m2", "n_components", "in_scene"],
    )
    return out


# ----------------------------------------------------------------------------- CLI helpers
def predict_smoke_chips(
    inputs: Any,
    out_csv: str | os.PathLike[str],
    classifier: Any = DEFAULT_CLASSIFIER,
    segmenter: Any = DEFAULT_SEGMENTER,
    batch_size: int = 32,
    device: str | None = None,
    threshold: float = 0.5,
) -> pd.DataFrame:
    """:func:`classify_chips` and write the table (without masks) to ``out_csv``."""
    df = classify_chips(inputs, classifier, segmenter, batch_size, device, threshold)
    p = Path(out_csv)
    p.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(p, index=False)
    logger.info("wrote %d chip results to %s", len(df), p)
    return df


def predict_smoke_scene(
    items_or_paths: Any,
    out_dir: str | os.PathLike[str],
    segmenter: Any = DEFAULT_SEGMENTER,
    sites: Any = None,
    radius_m: float = 500.0,
    bbox: tuple[float, float, float, float] | None = None,
    threshold: float = 0.5,
    tile: int = 256,
    step: int = 224,
    batch_size: int = 4,
    device: str | None = None,
    chunksize: int = 1024,
) -> dict[str, Any]:
    """Segment scenes and write one mask GeoTIFF (COG) per time and, with sites, plumes.csv.

    ``sites`` may be a CSV path (``site_id, lon, lat``) or anything
    :func:`plume_timeseries` accepts. Returns ``{"masks": [paths], "plumes": path|None}``.
    """
    from firesmoke.exports import export_smoke_mask, safe_join, write_csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mask = segment_scene(items_or_paths, segmenter, bbox=bbox, tile=tile, step=step,
                         threshold=threshold, batch_size=batch_size, device=device,
                         chunksize=chunksize)
    mask = mask.compute()
    paths = []
    for t in range(mask.sizes["time"]):
        stamp = pd.Timestamp(mask["time"].values[t]).strftime("%Y%m%dT%H%M%S")
        layer = mask.isel(time=t, drop=True)
        paths.append(export_smoke_mask(layer, safe_join(out, f"smoke_mask_{stamp}.tif")))
    plumes = None
    if sites is not None:
        table = read_sites(sites) if isinstance(sites, str | os.PathLike) else sites
        ts = plume_timeseries(mask, table, radius_m=radius_m).merge(  # with lon/lat
            _sites_frame(table)[["site_id", "lon", "lat"]], on="site_id", how="left")
        plumes = write_csv(ts, safe_join(out, "plumes.csv"))
    logger.info("wrote %d smoke masks to %s", len(paths), out)
    return {"masks": paths, "plumes": plumes}

