"""Smoke masks of whole Sentinel-2 scenes with the U-Net and the tiling engine.

:func:`segment_scene`: whole scenes (STAC items or GeoTIFFs, opened lazily with
:func:`~firesmoke.io.sentinel2.scenes.open_scene`) -> a ``(time, y, x)`` uint8 smoke mask in
the scene CRS, computed with the generic tiling engine
(:func:`~firesmoke.inference.model.predict_array`) over the dask array.

Tiling of scenes: the U-Net is fully convolutional (any size that is a multiple of 16
works), so scenes are cut into 256 x 256 tiles every 224 px (32 px overlap) and blended
with the raised-cosine ``"centre"`` weights, which give almost no weight to the outer
pixels of a tile, where the network sees zero padding instead of context. Tiles are
anchored to the scene's global grid and each dask block gets a one-tile halo, so masks do
not depend on the chunking. Inputs are z-scored in dask *before* tiling, with NaN (no data)
set to 0 = the band mean, so padding beyond the scene edge looks like an average scene.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from firesmoke._version import __version__
from firesmoke.errors import InputError, WeightsError
from firesmoke.inference.model import TileModel, predict_array
from firesmoke.io.sentinel2.scenes import check_scene_bands, open_scene
from firesmoke.smoke.weights import DEFAULT_SEGMENTER, normalization_from_meta, weights_bands
from firesmoke.store.geotiff import SMOKE_NODATA

__all__ = [
    "scene_probability",
    "segment_scene",
]

logger = logging.getLogger(__name__)

class _FixedModule:
    """Picklable builder returning a given module (for in-memory models)."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def __call__(self) -> Any:
        return self.module


def _tile_model(segmenter: Any) -> tuple[TileModel, dict[str, Any]]:
    """TileModel (with its normalisation: NaN = no data -> 0 = the band mean) + metadata."""
    import torch

    from firesmoke.models.normalization import SMOKE_S2  # deferred: torch (~1.4 s)
    from firesmoke.models.weights import (  # deferred: torch (~1.4 s)
        find_weights,
        load_weights,
        state_dict_sha256,
    )

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
    tm = TileModel.from_weights(path, normalization=normalization_from_meta(meta), activation="sigmoid")
    return tm, meta


def scene_probability(
    items_or_paths: Any,
    segmenter: Any = DEFAULT_SEGMENTER,
    bands: Sequence[str] | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    tile: int = 256,
    step: int = 224,
    blend: str = "centre",
    batch_size: int = 4,
    device: str | None = None,
    chunksize: int = 1024,
    **open_kwargs: Any,
) -> xr.DataArray:
    """Lazy per-pixel smoke probability ``(time, y, x)`` float32 of Sentinel-2 scenes.

    Parameters are those of :func:`segment_scene` (without ``threshold``). Pixels without
    data in every band get NaN.
    """
    if tile % 16:
        raise InputError(f"tile must be a multiple of 16 for the U-Net, got {tile}", field="tile")
    pre = weights_bands(segmenter)
    if pre is not None:  # scenes without the model's bands are refused before it is built
        check_scene_bands(items_or_paths, pre)
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
                          batch_size=batch_size, blend=blend, device=device)
        layers.append(p[0])
    prob = da.stack(layers).rechunk((1, *z.data.chunks[-2:])) if layers else da.zeros(
        (0, scene.sizes["y"], scene.sizes["x"]), np.float32)
    out = xr.DataArray(
        prob, dims=("time", "y", "x"),
        coords={"time": scene["time"].values, "y": scene["y"].values, "x": scene["x"].values},
        name="smoke_probability",
    ).where(~xr.DataArray(nodata.data, dims=("time", "y", "x")))
    out.attrs.update(
        long_name="smoke probability", units="1", **_provenance(meta, tile, step, blend)
    )
    crs = scene.rio.crs
    if crs is not None:
        out = out.rio.write_crs(crs)
    return out.rio.write_transform(scene.rio.transform())


def _provenance(meta: dict[str, Any], tile: int, step: int, blend: str) -> dict[str, Any]:
    return {
        "weights": str(meta.get("path")),
        "weights_sha256": str(meta.get("sha256")),
        "training_data": str(meta.get("training_data", "")),
        "package_version": __version__,
        "tile": tile,
        "step": step,
        "blend": blend,
    }


def segment_scene(
    items_or_paths: Any,
    segmenter: Any = DEFAULT_SEGMENTER,
    bands: Sequence[str] | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    tile: int = 256,
    step: int = 224,
    blend: str = "centre",
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
        STAC items / item collections / catalogs (objects or JSON paths) or multi-band
        GeoTIFFs with named bands (or 13 unnamed bands), as
        :func:`~firesmoke.io.sentinel2.scenes.open_scene` accepts. Only the bands the
        model uses are needed (12: all but B10, for the shipped weights), so L2A stacks
        work; a scene without them is refused before the model is built.
    segmenter
        U-Net weights path or name (default: the shipped synthetic-data weights), or an
        in-memory ``SmokeUNet`` (reference normalisation assumed).
    bands
        Band list to check against the weights' (``None``: the weights' list).
    bbox
        Subset ``(minx, miny, maxx, maxy)`` in the scene CRS.
    tile, step, blend
        Tiling: 256 px tiles every 224 px (32 px overlap) blended with the ``"centre"``
        weights by default (see the module notes); ``tile`` must be a multiple of 16.
    threshold
        Probability at or above which a pixel is smoke.
    batch_size, device
        Tiles per forward pass; ``"cuda"``/``"cpu"``/``None`` (auto).
    chunksize
        Dask chunk size of the scene (the result does not depend on it).
    **open_kwargs
        Passed to :func:`~firesmoke.io.sentinel2.scenes.open_scene` (``resolution``, ``epsg``, ...).

    Returns
    -------
    xarray.DataArray
        ``smoke_mask`` uint8 ``(time, y, x)`` (1 = smoke, 0 = no smoke, 255 = no data:
        no band of the scene has a value there; the ``_FillValue`` and COG nodata), dask
        backed, with the scene's coordinates, CRS and transform (rioxarray) and
        provenance attrs (weights and sha256, package version, tiling, threshold).

    Examples
    --------
    >>> from firesmoke import plume_timeseries, segment_scene
    >>> from firesmoke.synthetic.s2_scenes import generate_scenes
    >>> scenes = generate_scenes("scenes", n_scenes=1, size=256, n_sites=1, seed=3)
    >>> mask = segment_scene(scenes.item_paths, device="cpu")  # shipped U-Net, lazy
    >>> mask.dims, str(mask.dtype)
    (('time', 'y', 'x'), 'uint8')
    >>> plumes = plume_timeseries(mask, scenes.sites)
    >>> len(plumes)
    1
    """
    prob = scene_probability(items_or_paths, segmenter, bands, bbox, tile, step, blend,
                             batch_size, device, chunksize, **open_kwargs)
    mask = xr.where(prob.isnull(), np.uint8(SMOKE_NODATA), prob >= threshold).astype(np.uint8)
    mask.name = "smoke_mask"
    mask.encoding["_FillValue"] = SMOKE_NODATA
    mask.attrs = {
        **{k: v for k, v in prob.attrs.items() if k not in ("long_name", "units")},
        "long_name": "smoke mask", "units": "1", "flag_values": [0, 1],
        "flag_meanings": "no_smoke smoke", "threshold": threshold,
        "pixel_area_m2": float(abs(np.prod(prob.rio.resolution()))),
    }
    if prob.rio.crs is not None:
        mask = mask.rio.write_crs(prob.rio.crs)
    return mask.rio.write_transform(prob.rio.transform())


