"""Lazy Dataset of a gridded VIIRS 750 m granule (LAADS ``NPP_VMAES_L1``, HDF4 / HDF-EOS2).

The LAADS ordering service delivered each granule already reprojected (bilinear) to a
regular latitude/longitude grid, one HDF4 file per layer, e.g.
``NPP_VMAES_L1.A2017300.1406.001.2017300192651.psrpgscs_000501412525.Reflectance_M5.hdf``.

Format facts (checked on the sample in ``shared/data/real/viirs750``; read and checked by
:mod:`firesmoke.io.viirs.vmaes_metadata`, decoded by :class:`~firesmoke.io.viirs.arrays.Decoder`):

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

Reading is lazy: :func:`open_vmaes_granule` checks the granule once
(:func:`~firesmoke.io.viirs.vmaes_metadata.validate_vmaes_granule`, one HDF4 open per layer
file, metadata only) and builds its :class:`~firesmoke.io.viirs.readers.VmaesReader`. The
Dataset's variables are dask arrays over the reader's window reads
(:class:`~firesmoke.io.viirs.arrays.WindowArray`): each chunk is one
``reader.read_window``, through a pyhdf handle kept open for the process
(:data:`firesmoke.io._core.handles.OPEN_FILES`) and holding
:data:`~firesmoke.io._core.handles.FILE_LOCK`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from firesmoke.errors import InputError
from firesmoke.io.viirs.arrays import WindowArray, lazy_array
from firesmoke.io.viirs.bands import (
    BANDS,
    DEFAULT_VMAES_LAYERS,
    VMAES_LAYER_TO_VARIABLE,
    angle_attrs,
    band_attrs,
    normalize_platform,
    vmaes_layer_variable,
)
from firesmoke.io.viirs.readers import VmaesReader
from firesmoke.io.viirs.vmaes_metadata import (
    GridDef,
    LayerFile,
    ValidGranule,
    read_vmaes_metadata,
    validate_vmaes_granule,
)

__all__ = [
    "GridDef",
    "LayerFile",
    "ValidGranule",
    "open_vmaes_granule",
    "read_vmaes_metadata",
    "validate_vmaes_granule",
]

log = logging.getLogger(__name__)

def _normalize_chunks(chunks: Any, shape: tuple[int, int]) -> Any:
    if chunks is None:
        return shape
    if isinstance(chunks, Mapping):
        return (chunks.get("y", -1), chunks.get("x", -1))
    return chunks



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
    by_layer, grid = v.by_layer, v.grid
    chunk_spec = _normalize_chunks(chunks, grid.shape)
    reader = VmaesReader.from_valid(v, wanted_read)
    arrays: dict[str, da.Array] = {}
    decoders = {layer: reader.layers[_variable(layer)].decoder for layer in wanted_read}
    for layer in wanted_read:
        lf, _ = by_layer[layer]
        backend = WindowArray(reader, _variable(layer), grid.shape, np.float32)
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
        lf, _ = by_layer[layer]
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

    return _assemble(data_vars, grid, v.start, v.granule_id, v.fields, v.ref, v.metas)


def _variable(layer: str) -> str:
    var = vmaes_layer_variable(layer)
    assert var is not None  # layers were checked by _wanted_layers
    return var


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
