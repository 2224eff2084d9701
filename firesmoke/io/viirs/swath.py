"""Lazy Dataset of a VIIRS L1B swath granule: ``VNP02MOD`` observations + ``VNP03MOD`` geolocation.

:func:`open_l1b_swath` checks the pair once
(:func:`~firesmoke.io.viirs.l1b_metadata.validate_l1b_pair`, where the format facts and
decoding rules are written down), builds its
:class:`~firesmoke.io.viirs.readers.SwathReader` and returns a Dataset ``(line, pixel)``
whose variables are dask arrays over the reader's window reads
(:class:`~firesmoke.io.viirs.arrays.WindowArray`): opening reads metadata only, and every
pixel comes through the reader (open files cached by
:data:`firesmoke.io._core.handles.OPEN_FILES`, reads holding
:data:`~firesmoke.io._core.handles.FILE_LOCK`; see
:func:`~firesmoke.io._core.handles.close_cached_files`).

Bands are float32 with NaN for missing data; M12/M15 always come out as radiance.
Quality flags are returned raw as ``Mnn_quality_flags`` (uint16 with the file's
``flag_masks``/``flag_meanings``); ``mask_quality=`` additionally sets to NaN the pixels
whose flags carry the named conditions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from firesmoke.io.viirs.arrays import WindowArray, lazy_array, scalar
from firesmoke.io.viirs.bands import (
    BANDS,
    angle_attrs,
    band_attrs,
    normalize_platform,
    parse_granule_time,
)
from firesmoke.io.viirs.l1b_metadata import (
    DEFAULT_SWATH_BANDS,
    GEOLOCATION_GROUP,
    OBSERVATION_GROUP,
    L1bPair,
    NcFile,
    parse_time,
    validate_l1b_pair,
)
from firesmoke.io.viirs.readers import SwathReader, VariableSource

__all__ = [
    "DEFAULT_BAD_QUALITY",
    "DEFAULT_SWATH_BANDS",
    "GEOLOCATION_GROUP",
    "OBSERVATION_GROUP",
    "L1bPair",
    "open_l1b_swath",
    "validate_l1b_pair",
]

log = logging.getLogger(__name__)


#: Quality conditions masked by ``mask_quality=True``.
DEFAULT_BAD_QUALITY: tuple[str, ...] = ("Bowtie_Deleted", "Missing_EV", "Cal_Fail", "Dead_Detector")
_DAY_NIGHT = {"day": "D", "night": "N", "both": "B", "mixed": "B", "d": "D", "n": "N", "b": "B"}


def _flag_bits(attrs: Mapping[str, Any], names: Iterable[str]) -> int:
    masks = attrs.get("flag_masks")
    meanings = attrs.get("flag_meanings")
    if masks is None or meanings is None:
        return 0
    table = dict(zip(str(meanings).split(), (int(m) for m in np.atleast_1d(masks)), strict=False))
    bits = 0
    for n in names:
        bits |= table.get(n, 0)
    return bits


def _normalize_chunks(chunks: Any, shape: tuple[int, int], rows_per_scan: int) -> Any:
    if chunks is None:
        return shape
    if isinstance(chunks, Mapping):
        return (chunks.get("line", -1), chunks.get("pixel", -1))
    return chunks


# --------------------------------------------------------------------------- public API
def open_l1b_swath(
    vnp02_path: str | os.PathLike[str],
    vnp03_path: str | os.PathLike[str],
    chunks: Any = None,
    *,
    bands: Sequence[str] = DEFAULT_SWATH_BANDS,
    normalize_reflectance: bool = False,
    quality_flags: bool = True,
    mask_quality: bool | Sequence[str] = False,
) -> xr.Dataset:
    """Open a VIIRS L1B M-band granule (observation + geolocation files) lazily.

    Parameters
    ----------
    vnp02_path
        ``VNP02MOD``/``VJ102MOD``/``VJ202MOD`` file.
    vnp03_path
        The matching ``VNP03MOD``/``VJ103MOD``/``VJ203MOD`` file.
    chunks
        Dask chunks over ``(line, pixel)``: ``None`` (one chunk), an int, a tuple,
        ``{"line": ..., "pixel": ...}`` or ``"auto"``.
    bands
        M bands to read (default M05, M07, M10, M12, M15).
    normalize_reflectance
        Divide reflective bands by cos(solar zenith) (CF ``toa_bidirectional_reflectance``);
        default returns the reflectance factor as stored.
    quality_flags
        Also return ``Mnn_quality_flags`` (raw uint16) for each band that has them.
    mask_quality
        ``True`` to set to NaN pixels flagged with :data:`DEFAULT_BAD_QUALITY`
        conditions, or a list of ``flag_meanings`` names.

    Returns
    -------
    xarray.Dataset
        Dims ``(line, pixel)``; float32 bands (reflectance factor for M1-M11, radiance in
        W m-2 sr-1 um-1 for M12-M16), ``solar_zenith``/``sensor_zenith`` in degrees,
        ``latitude``/``longitude`` as 2-D coordinates, a ``scan`` coordinate (scan number
        of each line), attributes ``rows_per_scan``, ``start_time``, ``end_time``,
        ``platform``, ``orbit_number``, ``DayNightFlag``...

    Raises
    ------
    MissingLayerError
        A group or variable is missing.
    GridMismatchError
        The two files are from different granules or their shapes differ.
    WrongProductError
        A file is another product (e.g. the two files swapped, an I-band file, or a band
        stored as brightness temperature).
    CorruptFileError
        A file cannot be opened or read (pixel reads raise it from the dask tasks).
    """
    sv = validate_l1b_pair(vnp02_path, vnp03_path, bands)
    obs, geo, shape, n_scans, rows_per_scan = sv.obs, sv.geo, sv.shape, sv.n_scans, sv.rows_per_scan
    sza_v, vza_v = sv.variables["solar_zenith"], sv.variables["sensor_zenith"]
    band_vars = {b: sv.variables[b] for b in sv.bands}
    chunk_spec = _normalize_chunks(chunks, shape, rows_per_scan)
    granule_attrs = _swath_attrs(obs, geo, rows_per_scan, n_scans)
    reader = _reader(sv, granule_attrs)

    lat, lon, sza, vza = (_lazy(reader, n, chunk_spec)
                          for n in ("latitude", "longitude", "solar_zenith", "sensor_zenith"))

    bad_names: tuple[str, ...] = ()
    if mask_quality is True:
        bad_names = DEFAULT_BAD_QUALITY
    elif mask_quality:
        bad_names = tuple(mask_quality)  # type: ignore[arg-type]

    dims = ("line", "pixel")
    data_vars: dict[str, Any] = {}
    for b, var in band_vars.items():
        info = BANDS[b]
        decoder, source = sv.decoding(b)
        arr = _lazy(reader, b, chunk_spec)
        normalized = normalize_reflectance and info.kind == "reflectance"
        if normalized:
            cos = da.cos(da.deg2rad(sza))
            arr = da.where(cos > 0, arr / cos, np.float32(np.nan)).astype(np.float32)
        attrs = band_attrs(b, normalized=normalized, stored_in=obs.short_name or "VIIRS L1B")
        attrs.update(
            {
                "source_variable": var.path,
                "source_file": str(obs.path),
                "decoded_with": f"{source} ({decoder.scale:.9g}) / offset ({decoder.offset:.9g})",
            }
        )
        data_vars[b] = (dims, arr, attrs)
        qpath = f"{OBSERVATION_GROUP}/{b}_quality_flags"
        qvar = obs.variables.get(qpath)
        if f"{b}_quality_flags" in reader.variables:
            qarr = _lazy(reader, f"{b}_quality_flags", chunk_spec)
            if bad_names:
                bits = _flag_bits(qvar.attrs, bad_names)
                if bits:
                    arr = da.where((qarr & bits) != 0, np.float32(np.nan), arr).astype(np.float32)
                    attrs["quality_mask"] = (
                        f"NaN where {qpath} has any of {', '.join(bad_names)} (bits {bits})"
                    )
                    data_vars[b] = (dims, arr, attrs)
            if quality_flags:
                qattrs = {
                    k: v
                    for k, v in qvar.attrs.items()
                    if k in ("flag_masks", "flag_meanings", "long_name")
                }
                qattrs.setdefault("long_name", f"{b} pixel quality flags")
                qattrs["source_variable"] = qpath
                data_vars[f"{b}_quality_flags"] = (dims, qarr, qattrs)
        elif bad_names:
            log.warning("%s: no %s; mask_quality has no effect on %s", obs.path, qpath, b)

    for name, arr, var in (("solar_zenith", sza, sza_v), ("sensor_zenith", vza, vza_v)):
        attrs = angle_attrs(name)
        attrs.update({"source_variable": var.path, "source_file": str(geo.path)})
        data_vars[name] = (dims, arr, attrs)

    coords = {
        "latitude": (
            dims,
            lat,
            {
                "units": "degrees_north",
                "standard_name": "latitude",
                "long_name": "latitude of pixel centre",
            },
        ),
        "longitude": (
            dims,
            lon,
            {
                "units": "degrees_east",
                "standard_name": "longitude",
                "long_name": "longitude of pixel centre",
            },
        ),
        "scan": (
            "line",
            np.arange(shape[0]) // max(rows_per_scan, 1),
            {"long_name": "scan number of each line"},
        ),
    }
    if reader.start is not None:
        coords["time"] = (
            (),
            np.datetime64(reader.start, "ns"),
            {"standard_name": "time", "long_name": "granule start time (UTC)"},
        )
    return xr.Dataset(data_vars, coords=coords, attrs=granule_attrs)


def _reader(sv: L1bPair, attrs: Mapping[str, Any]) -> SwathReader:
    """The reader of everything :func:`open_l1b_swath` returns: geolocation, angles, the
    bands (decoded) and their quality flags of the swath's shape (raw)."""
    sources = {n: VariableSource.of(sv, n, sv.decoder(n))
               for n in ("latitude", "longitude", "solar_zenith", "sensor_zenith")}
    for b in sv.bands:
        sources[b] = VariableSource.of(sv, b, sv.decoder(b))
        qvar = sv.obs.variables.get(f"{OBSERVATION_GROUP}/{b}_quality_flags")
        if qvar is not None and qvar.shape == sv.shape:
            sources[f"{b}_quality_flags"] = VariableSource.of(sv, qvar.path, None)
    start = (datetime.strptime(attrs["start_time"], "%Y-%m-%dT%H:%M:%SZ")
             if "start_time" in attrs else None)
    return SwathReader(str(attrs.get("granule_id", sv.obs.path.name)), start, tuple(sv.shape), sources,
                       int(sv.rows_per_scan))


def _lazy(reader: SwathReader, name: str, chunks: Any) -> da.Array:
    """Dask array of variable ``name``, each chunk read by ``reader.read_window``."""
    src = reader.variables[name]
    p = Path(src.path)
    st = p.stat()
    token = tokenize(str(p.resolve()), st.st_mtime_ns, st.st_size, chunks, src.decoder)
    dtype = np.float32 if src.decoder is not None else np.dtype(src.dtype)
    backend = WindowArray(reader, name, reader.shape, dtype)
    return lazy_array(backend, chunks, "l1b-" + src.varpath.replace("/", "-") + "-" + token)


def _swath_attrs(obs: NcFile, geo: NcFile, rows_per_scan: int, n_scans: Any) -> dict[str, Any]:
    a = obs.attrs
    start = parse_time(a.get("time_coverage_start")) or parse_time(
        geo.attrs.get("time_coverage_start")
    )
    end = parse_time(a.get("time_coverage_end")) or parse_time(geo.attrs.get("time_coverage_end"))
    if start is None and "date" in obs.name_fields:
        start = parse_granule_time(obs.name_fields["date"], obs.name_fields["time"])
    platform_raw = a.get("platform") or geo.attrs.get("platform") or obs.name_fields.get("sat", "")
    dn = str(a.get("DayNightFlag", geo.attrs.get("DayNightFlag", ""))).strip()
    out: dict[str, Any] = {
        "product": obs.short_name,
        "geolocation_product": geo.short_name,
        "platform": normalize_platform(platform_raw),
        "instrument": str(a.get("instrument", "VIIRS")).upper(),
        "DayNightFlag": _DAY_NIGHT.get(dn.lower(), dn),
        "rows_per_scan": int(rows_per_scan),
        "observation_file": str(obs.path),
        "geolocation_file": str(geo.path),
        "Conventions": "CF-1.8",
    }
    if start is not None:
        out["start_time"] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        out["granule_id"] = f"A{start:%Y%j}.{start:%H%M}"
    if end is not None:
        out["end_time"] = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    if "collection" in obs.name_fields:
        out["collection"] = obs.name_fields["collection"]
    orbit = a.get(
        "orbit_number",
        a.get("OrbitNumber", geo.attrs.get("OrbitNumber", geo.attrs.get("orbit_number"))),
    )
    if orbit is not None:
        out["orbit_number"] = int(scalar(orbit))
    if n_scans:
        out["number_of_scans"] = int(n_scans)
    if "number_of_filled_scans" in a:
        out["number_of_filled_scans"] = int(scalar(a["number_of_filled_scans"]))
    for key in ("startDirection", "endDirection"):
        if key in a:
            out[key] = str(a[key])
    if "comment" in a:
        out["comment"] = str(a["comment"])
    return out
