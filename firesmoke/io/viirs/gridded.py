"""Reader of gridded VIIRS 750 m granules (LAADS ``NPP_VMAES_L1``, HDF4 / HDF-EOS2).

The LAADS ordering service delivered each granule already reprojected (bilinear) to a
regular latitude/longitude grid, one HDF4 file per layer, e.g.
``NPP_VMAES_L1.A2017300.1406.001.2017300192651.psrpgscs_000501412525.Reflectance_M5.hdf``.

Format facts used here (checked on the sample in ``shared/data/real/viirs750``):

- Global attributes: ``ShortName`` (``NPP_VMAES_L1``), ``LongName``, ``DayNightFlag``
  (``D``/``N``/``B``), ``Mission_Name`` and ``Spacecraft`` (``NPP``), ``OrbitNumber``,
  ``NumberOfScans``, ``StructMetadata.0`` (HDF-EOS2 ODL).
- ``StructMetadata.0`` describes one grid (``VIIRS_EV_750M_SDR``) with ``XDim``, ``YDim``,
  ``UpperLeftPointMtrs``, ``LowerRightMtrs``, ``Projection=GCTP_GEO`` (corners in packed
  DMS, ``DDDMMMSSS.SS``), ``GridOrigin=HDFE_GD_UL`` and ``PixelRegistration``. The corners
  are the outer edges of the grid; the grid transform is "from bounds" (origin
  upper-left, rows north to south) and firesmoke publishes pixel *centres* (CF), the
  convention of :class:`firesmoke.grid.Region`. (With ``HDFE_CORNER`` registration
  HDF-EOS places each sample at its cell's upper-left corner; BA-Net's reference used
  those corners as coordinates; firesmoke keeps the same transform.)
- Each file holds one SDS named like the layer. Bands are ``uint16`` with attributes
  ``Scale`` and ``Offset`` (value = raw * Scale + Offset), ``_FillValue`` 65535 and
  ``FILL_TEST_VALUE = "UINT16_FILL_TEST = 65527"``: raw >= 65527 is fill. Angles are
  ``float32`` degrees with ``FILL_TEST_VALUE = "FLOAT32_FILL_TEST = -999"``: raw <= -999
  is fill. Fill becomes NaN; decoded values are ``float32``.
- The granule start time is in the file name only (``AYYYYDDD.HHMM``); the attribute
  ``EndTime`` of the sample is a placeholder (``1400-01-01``).

Reading is lazy: opening reads only metadata (one HDF4 open per file); pixels are read by
dask tasks, window by window, each read holding :data:`firesmoke.io._core.hdf4.HDF4_LOCK`
(:mod:`firesmoke.io.viirs.arrays`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from firesmoke.errors import (
    CorruptFileError,
    GridMismatchError,
    InputError,
    MissingLayerError,
)
from firesmoke.io.viirs.arrays import Decoder, Hdf4LayerArray, lazy_array
from firesmoke.io.viirs.bands import (
    BANDS,
    DEFAULT_VMAES_LAYERS,
    GRANULE_ID_RE,
    VMAES_LAYER_TO_VARIABLE,
    angle_attrs,
    band_attrs,
    normalize_platform,
    parse_granule_time,
    vmaes_layer_variable,
)
from firesmoke.io.viirs.names import match_file
from firesmoke.io.viirs.vmaes_metadata import GridDef, LayerFile, SdsDef, read_vmaes_metadata

__all__ = [
    "GridDef",
    "LayerFile",
    "ValidGranule",
    "open_vmaes_granule",
    "read_vmaes_metadata",
    "validate_vmaes_granule",
]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- inputs
def _resolve_sources(
    source: Any, granule_id: str | None
) -> tuple[list[Path], str | None, Path | None]:
    """Turn the accepted call forms into (files, granule id, folder)."""
    if hasattr(source, "paths") and isinstance(source.paths, Mapping):  # Granule
        return [Path(p) for p in source.paths.values()], getattr(source, "granule_id", None), None
    if (
        isinstance(source, tuple)
        and len(source) == 2
        and isinstance(source[1], str)
        and GRANULE_ID_RE.match(source[1])
    ):
        source, granule_id = source[0], source[1]
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if p.is_dir():
            return _files_in_folder(p, granule_id), granule_id, p
        return [p], granule_id, None
    if isinstance(source, Sequence):
        files = [Path(s) for s in source]
        if not files:
            raise InputError("no files given", field="paths")
        return files, granule_id, None
    raise InputError(
        f"expected a list of layer files, a folder, or (folder, granule_id); got {type(source).__name__}"
    )


def _files_in_folder(folder: Path, granule_id: str | None) -> list[Path]:
    """Layer files of one granule in a folder (the newest production of each layer)."""
    newest: dict[str, dict[str, tuple[str, Path]]] = {}
    for p in sorted(folder.iterdir()):
        hit = match_file(p)
        if hit is None or hit[0].kind != "vmaes" or not p.is_file():
            continue
        f = hit[1]
        layers = newest.setdefault(f"A{f['date']}.{f['time']}", {})
        prod = f.get("production", "")
        if f["layer"] not in layers or prod > layers[f["layer"]][0]:
            if f["layer"] in layers:
                log.info(
                    "%s: using %s, a newer production than %s",
                    folder,
                    p.name,
                    layers[f["layer"]][1].name,
                )
            layers[f["layer"]] = (prod, p)
    by_id = {gid: [p for _, p in layers.values()] for gid, layers in newest.items()}
    if granule_id is not None:
        if not GRANULE_ID_RE.match(granule_id):
            raise InputError(
                f"granule id must look like A2017300.1406, got {granule_id!r}", field="granule_id"
            )
        if granule_id not in by_id:
            raise MissingLayerError(
                f"no NPP_VMAES_L1 files of granule {granule_id} in this folder"
                + (f" (it has {', '.join(sorted(by_id))})" if by_id else ""),
                path=folder,
                field=granule_id,
            )
        return by_id[granule_id]
    if not by_id:
        raise InputError("no NPP_VMAES_L1 files in this folder", path=folder)
    if len(by_id) > 1:
        raise InputError(
            f"folder holds {len(by_id)} granules ({', '.join(sorted(by_id))}); "
            "pass (folder, granule_id) to choose one",
            path=folder,
        )
    return next(iter(by_id.values()))


def _normalize_chunks(chunks: Any, shape: tuple[int, int]) -> Any:
    if chunks is None:
        return shape
    if isinstance(chunks, Mapping):
        return (chunks.get("y", -1), chunks.get("x", -1))
    return chunks


def _name_time(files: Sequence[LayerFile]) -> tuple[datetime, str, dict[str, str]]:
    """Start time and granule id from the file names; all parseable names must agree."""
    found: dict[str, tuple[datetime, dict[str, str]]] = {}
    for lf in files:
        hit = match_file(lf.path)
        if hit is None or hit[0].kind != "vmaes":
            continue
        f = hit[1]
        gid = f"A{f['date']}.{f['time']}"
        try:
            found.setdefault(gid, (parse_granule_time(f["date"], f["time"]), f))
        except ValueError as exc:
            raise InputError(f"invalid date/time in file name ({exc})", path=lf.path) from exc
    if not found:
        raise InputError(
            "cannot tell the granule start time: no file name follows "
            "NPP_VMAES_L1.AYYYYDDD.HHMM.CCC.<production>[.<order>].<layer>.hdf",
            path=files[0].path,
        )
    if len(found) > 1:
        raise InputError(
            f"files belong to different granules ({', '.join(sorted(found))}): "
            + ", ".join(lf.path.name for lf in files)
        )
    gid, (start, fields) = next(iter(found.items()))
    return start, gid, fields


def _check_region(grid: GridDef, region: Any, path: Path) -> None:
    from firesmoke.grid import Region

    reg = Region.resolve(region)
    t_file, t_reg = grid.transform, reg.transform
    if grid.shape != reg.shape or not t_file.almost_equals(t_reg, 1e-9):
        raise GridMismatchError(
            f"granule grid {grid.describe()} (pixel {t_file.a:g} x {-t_file.e:g}) differs from "
            f"region {reg.name} {reg.shape[0]}x{reg.shape[1]} bounds {reg.bbox} (pixel {reg.pixel_size:g})",
            path=path,
        )


@dataclass(frozen=True)
class ValidGranule:
    """A gridded granule whose layer files have been opened and checked once.

    Attributes
    ----------
    by_layer
        Layer name -> (metadata of its file, its SDS description).
    grid
        The common grid of the layers.
    start, granule_id, fields
        Start time, ``AYYYYDDD.HHMM`` and the file-name fields.
    ref, metas
        Metadata of the first file and of every file opened.
    """

    by_layer: Mapping[str, tuple[LayerFile, SdsDef]]
    grid: GridDef
    start: datetime
    granule_id: str
    fields: Mapping[str, str]
    ref: LayerFile
    metas: tuple[LayerFile, ...]


def validate_vmaes_granule(
    source: Any,
    wanted_read: Sequence[str],
    *,
    granule_id: str | None = None,
    region: Any = None,
) -> ValidGranule:
    """Open the metadata of a granule's layer files once and check them (no pixel read).

    ``source`` and ``granule_id`` as in :func:`open_vmaes_granule`; ``wanted_read`` are
    HDF4 layer names (``"Reflectance_M5"``...). Raises the errors documented there.
    """
    files, gid_hint, folder = _resolve_sources(source, granule_id)
    # files found for us (a folder, a discovered granule): open only the layers asked for
    found = folder is not None or hasattr(source, "paths")

    metas: list[LayerFile] = []
    by_layer: dict[str, tuple[LayerFile, SdsDef]] = {}
    for p in files:
        hit = match_file(p)
        name_layer = hit[1].get("layer") if hit is not None and hit[0].kind == "vmaes" else None
        if found and name_layer is not None and name_layer not in wanted_read:
            continue  # do not even open files of layers nobody asked for
        lf = read_vmaes_metadata(p)
        metas.append(lf)
        for sds in lf.sds.values():
            if vmaes_layer_variable(sds.name) is not None:
                if sds.name in by_layer and by_layer[sds.name][0].path != lf.path:
                    raise InputError(
                        f"layer {sds.name} given twice: {by_layer[sds.name][0].path.name} and {lf.path.name}"
                    )
                by_layer[sds.name] = (lf, sds)
        if name_layer is not None and name_layer not in lf.sds and vmaes_layer_variable(name_layer):
            raise MissingLayerError(
                f"file name says layer {name_layer} but the file holds SDS {', '.join(lf.sds) or 'none'}",
                path=p,
                field=name_layer,
            )
    if not metas:
        raise MissingLayerError(
            f"none of the requested layers ({', '.join(wanted_read)}) has a file",
            path=folder,
            field=wanted_read[0],
        )
    start, gid, fields = _name_time(metas)
    if gid_hint is not None and gid_hint != gid:
        raise InputError(f"files are of granule {gid}, not {gid_hint}", path=metas[0].path)
    for layer in wanted_read:
        if layer not in by_layer:
            raise MissingLayerError(
                f"granule {gid} has no {layer} layer "
                f"(given: {', '.join(sorted(by_layer)) or 'none'})",
                path=folder if folder is not None else metas[0].path.parent,
                field=layer,
            )
    ref = metas[0]
    for lf in metas[1:]:
        if not lf.grid.same_as(ref.grid):
            raise GridMismatchError(
                f"layer grids differ: {lf.path.name} is {lf.grid.describe()}, "
                f"{ref.path.name} is {ref.grid.describe()}",
                path=lf.path,
            )
    grid = ref.grid
    for layer in wanted_read:
        lf, sds = by_layer[layer]
        if tuple(sds.shape) != grid.shape:
            raise GridMismatchError(
                f"SDS {layer} has shape {sds.shape}, grid {grid.name} is {grid.shape}", path=lf.path
            )
        dec = Decoder.from_attrs(sds.attrs, sds.dtype)
        if not (np.isfinite(dec.scale) and dec.scale != 0 and np.isfinite(dec.offset)):  # damaged attribute
            raise CorruptFileError(f"implausible Scale/Offset {dec.scale!r}/{dec.offset!r}", path=lf.path, field=sds.name)
    if region is not None:
        _check_region(grid, region, ref.path)
    return ValidGranule(by_layer, grid, start, gid, fields, ref, tuple(metas))


# --------------------------------------------------------------------------- public API
def open_vmaes_granule(
    source: Any,
    granule_id: str | None = None,
    *,
    layers: Sequence[str] | None = None,
    chunks: Any = None,
    region: Any = None,
    normalize_reflectance: bool = False,
) -> xr.Dataset:
    """Open one gridded ``NPP_VMAES_L1`` granule lazily.

    Parameters
    ----------
    source
        The granule's layer files (a list of paths), a folder holding exactly one granule,
        ``(folder, "A2017300.1406")``, or a :class:`~firesmoke.io.viirs.discovery.Granule`.
    granule_id
        Alternative way to name the granule when ``source`` is a folder.
    layers
        Layers to read, as layer names (``"Reflectance_M5"``) or variable names
        (``"M05"``); default the seven BA-Net layers. Only those files are required.
    chunks
        Dask chunks over ``(y, x)``: ``None`` (one chunk per layer), an int, a tuple, a
        mapping ``{"y": ..., "x": ...}`` or ``"auto"``.
    region
        Optional :class:`~firesmoke.grid.Region` (or region name/path): the file grid must
        equal it, else :class:`~firesmoke.errors.GridMismatchError`.
    normalize_reflectance
        Divide the reflective bands by cos(solar zenith) (needs ``SolarZenithAngle``);
        default keeps the values as stored (what BA-Net used).

    Returns
    -------
    xarray.Dataset
        float32 variables (``M05``, ``M07``, ``M10`` unitless reflectance factors; ``M12``,
        ``M15`` radiance in W m-2 sr-1 um-1; ``solar_zenith``, ``sensor_zenith`` in
        degrees) on dims ``(y, x)`` with pixel-centre coordinates, EPSG:4326 attached the
        rioxarray way, a scalar ``time`` coordinate (granule start, UTC) and granule
        attributes (platform, orbit, day/night flag, ...). Variables are dask arrays;
        nothing but metadata has been read.

    Raises
    ------
    MissingLayerError
        A requested layer has no file (or its file lacks the SDS).
    GridMismatchError
        Layers are on different grids, or the grid differs from ``region``.
    WrongProductError
        A file is not ``NPP_VMAES_L1``.
    CorruptFileError
        A file cannot be read (also raised later, by the dask tasks, for pixel reads).
    InputError
        Files of different granules, or a folder that does not name one granule.
    """
    wanted = _wanted_layers(layers)
    if normalize_reflectance and "SolarZenithAngle" not in wanted:
        wanted_read = (*wanted, "SolarZenithAngle")
    else:
        wanted_read = wanted
    v = validate_vmaes_granule(source, wanted_read, granule_id=granule_id, region=region)
    by_layer, grid, start, gid, fields, ref, metas = (
        v.by_layer, v.grid, v.start, v.granule_id, v.fields, v.ref, v.metas)
    chunk_spec = _normalize_chunks(chunks, grid.shape)
    arrays: dict[str, da.Array] = {}
    decoders: dict[str, Decoder] = {}
    for layer in wanted_read:
        lf, sds = by_layer[layer]
        decoders[layer] = Decoder.from_attrs(sds.attrs, sds.dtype)
        backend = Hdf4LayerArray(lf.path, sds.name, sds.shape, decoders[layer])
        st = lf.path.stat()
        token = tokenize(
            str(lf.path.resolve()), st.st_mtime_ns, st.st_size, chunk_spec, decoders[layer]
        )
        arrays[layer] = lazy_array(backend, chunk_spec, f"vmaes-{layer}-{token}")

    sza = arrays.get("SolarZenithAngle")
    data_vars: dict[str, Any] = {}
    for layer in wanted:
        var = vmaes_layer_variable(layer)
        assert var is not None
        arr = arrays[layer]
        lf, sds = by_layer[layer]
        if var in BANDS:
            normalized = normalize_reflectance and BANDS[var].kind == "reflectance"
            if normalized:
                cos = da.cos(da.deg2rad(sza))
                arr = da.where(cos > 0, arr / cos, np.float32(np.nan)).astype(np.float32)
            attrs = band_attrs(var, normalized=normalized, stored_in="NPP_VMAES_L1")
        else:
            attrs = angle_attrs(var)
        attrs.update(
            {
                "source_layer": layer,
                "source_file": str(lf.path),
                "scale_factor_applied": decoders[layer].scale,
                "add_offset_applied": decoders[layer].offset,
                "fill_rule": decoders[layer].describe(),
            }
        )
        data_vars[var] = (("y", "x"), arr, attrs)

    return _assemble(data_vars, grid, start, gid, fields, ref, metas)


def _wanted_layers(layers: Sequence[str] | None) -> tuple[str, ...]:
    if layers is None:
        return DEFAULT_VMAES_LAYERS
    if isinstance(layers, str):
        layers = [layers]
    var_to_layer = {v: k for k, v in VMAES_LAYER_TO_VARIABLE.items()}
    out: list[str] = []
    for name in layers:
        layer = var_to_layer.get(name, name)
        if vmaes_layer_variable(layer) is None:
            raise InputError(
                f"unknown layer {name!r}; known: {', '.join(VMAES_LAYER_TO_VARIABLE)} "
                f"(or {', '.join(var_to_layer)})",
                field="layers",
            )
        if layer not in out:
            out.append(layer)
    if not out:
        raise InputError("layers is empty", field="layers")
    return tuple(out)


def _assemble(
    data_vars: dict[str, Any],
    grid: GridDef,
    start: datetime,
    gid: str,
    fields: Mapping[str, str],
    ref: LayerFile,
    metas: Sequence[LayerFile],
) -> xr.Dataset:
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    t = grid.transform
    h, w = grid.shape
    x = t.c + (np.arange(w) + 0.5) * t.a
    y = t.f + (np.arange(h) + 0.5) * t.e
    coords: dict[str, Any] = {
        "y": (
            "y",
            y,
            {
                "units": "degrees_north",
                "standard_name": "latitude",
                "long_name": "latitude of pixel centre",
                "axis": "Y",
            },
        ),
        "x": (
            "x",
            x,
            {
                "units": "degrees_east",
                "standard_name": "longitude",
                "long_name": "longitude of pixel centre",
                "axis": "X",
            },
        ),
        "time": (
            (),
            np.datetime64(start, "ns"),
            {"standard_name": "time", "long_name": "granule start time (UTC)"},
        ),
    }
    a = ref.attrs
    platform = normalize_platform(
        a.get("Spacecraft") or a.get("Mission_Name") or fields.get("sat", "")
    )
    orbit = a.get("OrbitNumber", a.get("StartOrbitNumber"))
    attrs: dict[str, Any] = {
        "product": str(a.get("ShortName")),
        "product_long_name": str(a.get("LongName", "")),
        "granule_id": gid,
        "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "collection": fields.get("collection", ""),
        "platform": platform,
        "instrument": "VIIRS",
        "DayNightFlag": str(a.get("DayNightFlag", "")),
        "source_files": "; ".join(str(m.path) for m in metas),
        "hdfeos_grid_name": grid.name,
        "hdfeos_pixel_registration": grid.registration,
        "Conventions": "CF-1.8",
    }
    if "production" in fields:
        try:
            attrs["production_time"] = datetime.strptime(
                fields["production"], "%Y%j%H%M%S"
            ).strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            attrs["production_time"] = fields["production"]
    if orbit is not None:
        attrs["orbit_number"] = int(float(np.asarray(orbit).ravel()[0]))
    if "NumberOfScans" in a:
        attrs["number_of_scans"] = int(np.asarray(a["NumberOfScans"]).ravel()[0])
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    ds = ds.rio.write_crs("EPSG:4326").rio.write_transform(t)
    return ds
