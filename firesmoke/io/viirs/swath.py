"""Reader of VIIRS L1B swath granules: ``VNP02MOD`` observations + ``VNP03MOD`` geolocation.

NASA distributes VIIRS L1B today as one netCDF4/HDF5 file of M-band observations
(``VNP02MOD``; ``VJ102MOD`` for NOAA-20, ``VJ202MOD`` for NOAA-21) and one of geolocation
(``VNP03MOD``/``VJ103MOD``/``VJ203MOD``) per 6-minute granule, e.g.
``VNP02MOD.A2017300.1406.002.2021085163209.nc`` + ``VNP03MOD.A2017300.1406.002.2021085143003.nc``.

Format facts (from the NASA VIIRS L1B product user guide and LAADS file specifications,
as summarised by public readers such as satpy's ``viirs_l1b``; written here as facts):

- Dimensions at the root: ``number_of_scans`` (202 or 203 per granule),
  ``number_of_lines`` (16 lines per scan for M bands: 3232/3248) and
  ``number_of_pixels`` (3200 for M bands). ``rows_per_scan = lines / scans``.
- Global attributes include ``time_coverage_start``/``time_coverage_end``
  (``YYYY-MM-DDTHH:MM:SS.sssZ``), ``platform`` (``Suomi-NPP``, ``JPSS-1``, ``JPSS-2``),
  ``instrument`` (``VIIRS``), ``DayNightFlag`` (``Day``/``Night``/``Both``),
  ``orbit_number`` (VNP02; ``OrbitNumber`` in some files), ``number_of_filled_scans``,
  ``startDirection``/``endDirection``.
- Group ``observation_data`` of VNP02MOD holds ``M01`` ... ``M16`` as ``uint16``
  (``_FillValue`` 65535, ``valid_min`` 0, ``valid_max`` 65527; ``flag_values``
  65532-65534 = ``Missing_EV Bowtie_Deleted Cal_Fail``) and ``Mnn_quality_flags``
  (``uint16`` bit flags with ``flag_masks``/``flag_meanings``).
  * Reflective bands M1-M11: ``scale_factor``/``add_offset`` give the reflectance factor
    (*not* divided by cos(solar zenith)); ``radiance_scale_factor``/
    ``radiance_add_offset``/``radiance_units`` give radiance.
  * Thermal bands M12-M16: ``scale_factor``/``add_offset`` give radiance (``units``
    ``Watts/meter^2/steradian/micrometer``); ``Mnn_brightness_temperature_lut`` maps the
    scaled integers to brightness temperature.
- Group ``geolocation_data`` of VNP03MOD holds ``latitude``/``longitude`` (``float32``
  degrees, ``_FillValue`` -999.9, valid ranges +-90/+-180), ``solar_zenith``,
  ``sensor_zenith``, ``solar_azimuth``, ``sensor_azimuth`` (``int16`` with
  ``scale_factor`` 0.01, ``_FillValue`` -32767/-32768), ``height``, ``land_water_mask``,
  ``quality_flag``.

Decoding here: raw values equal to ``_FillValue``, listed in ``flag_values`` or outside
``[valid_min, valid_max]`` become NaN; then ``value = raw * scale + offset`` as float32.
M12/M15 always come out as radiance (W m-2 sr-1 um-1): from ``radiance_scale_factor``/
``radiance_add_offset`` when the variable has them, else from ``scale_factor``/
``add_offset`` when its ``units`` are radiance; a variable holding brightness temperature
is refused. Quality flags are returned raw as ``Mnn_quality_flags`` (uint16 with the
file's ``flag_masks``/``flag_meanings``); ``mask_quality=`` additionally sets to NaN the
pixels whose flags carry the named conditions.

netCDF4/HDF5 is not thread-safe: every open and read holds
:data:`firesmoke.io.viirs.arrays.NETCDF_LOCK`. Opening reads metadata only; pixel windows
are read by dask tasks. Open file handles are kept in a small per-process cache (see
:func:`close_cached_files`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
    WrongProductError,
)
from firesmoke.io.viirs.arrays import (
    NETCDF_LOCK,
    NcDecoder,
    NcVariableArray,
    cached_nc_dataset,
    close_cached_files,
    lazy_array,
)
from firesmoke.io.viirs.bands import (
    BANDS,
    angle_attrs,
    band_attrs,
    normalize_platform,
)
from firesmoke.io.viirs.names import match_file

__all__ = [
    "DEFAULT_BAD_QUALITY",
    "DEFAULT_SWATH_BANDS",
    "GEOLOCATION_GROUP",
    "OBSERVATION_GROUP",
    "L1bPair",
    "close_cached_files",
    "open_l1b_swath",
    "validate_l1b_pair",
]

log = logging.getLogger(__name__)


OBSERVATION_GROUP = "observation_data"
GEOLOCATION_GROUP = "geolocation_data"
DEFAULT_SWATH_BANDS: tuple[str, ...] = ("M05", "M07", "M10", "M12", "M15")
#: Quality conditions masked by ``mask_quality=True``.
DEFAULT_BAD_QUALITY: tuple[str, ...] = ("Bowtie_Deleted", "Missing_EV", "Cal_Fail", "Dead_Detector")
_RADIANCE_UNITS = {
    "watts/meter^2/steradian/micrometer",
    "w m-2 sr-1 um-1",
    "w m-2 um-1 sr-1",
    "w/m^2/sr/um",
    "w m-2 sr-1 micrometer-1",
}
_KELVIN_UNITS = {"k", "kelvin", "degrees_kelvin"}
_DAY_NIGHT = {"day": "D", "night": "N", "both": "B", "mixed": "B", "d": "D", "n": "N", "b": "B"}


# --------------------------------------------------------------------------- low level
def _attrs(obj: Any) -> dict[str, Any]:
    out = {}
    for k in obj.ncattrs():
        v = obj.getncattr(k)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        out[k] = v
    return out


def _scalar(value: Any) -> Any:
    arr = np.asarray(value)
    return arr.ravel()[0].item() if arr.size else None


@dataclass(frozen=True)
class VarDef:
    path: str  # "observation_data/M05"
    shape: tuple[int, ...]
    dtype: np.dtype
    attrs: Mapping[str, Any]


@dataclass(frozen=True)
class NcFile:
    """Metadata of a VIIRS L1 netCDF4 file (no pixel data)."""

    path: Path
    attrs: Mapping[str, Any]
    dims: Mapping[str, int]
    groups: tuple[str, ...]
    variables: Mapping[str, VarDef]  # "group/name" -> VarDef
    name_fields: Mapping[str, str] = field(default_factory=dict)
    short_name: str = ""


def _read_nc_metadata(path: str | os.PathLike[str], groups: Iterable[str]) -> NcFile:
    p = Path(path)
    with NETCDF_LOCK:
        ds = cached_nc_dataset(p)
        try:
            attrs = _attrs(ds)
            dims = {k: len(v) for k, v in ds.dimensions.items()}
            present = tuple(ds.groups)
            variables: dict[str, VarDef] = {}
            for g in groups:
                if g not in ds.groups:
                    continue
                grp = ds.groups[g]
                for k, v in grp.dimensions.items():
                    dims.setdefault(k, len(v))
                for name, var in grp.variables.items():
                    variables[f"{g}/{name}"] = VarDef(
                        f"{g}/{name}",
                        tuple(int(s) for s in var.shape),
                        np.dtype(var.dtype),
                        _attrs(var),
                    )
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            close_cached_files(p)
            raise CorruptFileError(f"cannot read netCDF metadata ({exc})", path=p) from exc
    hit = match_file(p)
    fields = hit[1] if hit is not None and hit[0].kind == "l1b" else {}
    short = fields.get("short", "") or str(attrs.get("ShortName", ""))
    return NcFile(p, attrs, dims, present, variables, fields, short)


def _lazy(nc: NcFile, var: VarDef, decoder: NcDecoder | None, chunks: Any) -> da.Array:
    backend = NcVariableArray(nc.path, var.path, var.shape, var.dtype, decoder)
    st = nc.path.stat()
    token = tokenize(str(nc.path.resolve()), st.st_mtime_ns, st.st_size, chunks, decoder)
    return lazy_array(backend, chunks, "l1b-" + var.path.replace("/", "-") + "-" + token)


# --------------------------------------------------------------------------- checks
def _require(nc: NcFile, varpath: str, what: str) -> VarDef:
    if varpath not in nc.variables:
        group = varpath.split("/", 1)[0]
        if group not in nc.groups:
            raise MissingLayerError(
                f"{what} file has no group {group!r} (groups: {', '.join(nc.groups) or 'none'})",
                path=nc.path,
                field=group,
            )
        raise MissingLayerError(f"{what} variable not found", path=nc.path, field=varpath)
    return nc.variables[varpath]


def _check_product(nc: NcFile, role: str) -> None:
    """Refuse files that are clearly another product (by name or by content)."""
    want_tag, want_group = (
        ("02MOD", OBSERVATION_GROUP) if role == "observation" else ("03MOD", GEOLOCATION_GROUP)
    )
    other_group = GEOLOCATION_GROUP if role == "observation" else OBSERVATION_GROUP
    hit = match_file(nc.path)
    name = nc.path.name
    if hit is not None and hit[0].kind == "l1b" and want_tag not in hit[1]["short"]:
        raise WrongProductError(
            f"file name says {hit[1]['short']}, expected a V??{want_tag} {role} file", path=nc.path
        )
    if hit is None and any(tag in name for tag in ("02IMG", "03IMG", "02DNB", "03DNB")):
        raise WrongProductError(f"{name} is not an M-band (MOD) product", path=nc.path)
    if want_group not in nc.groups and other_group in nc.groups:
        raise WrongProductError(
            f"file has group {other_group!r} but no {want_group!r}: it is not a "
            f"V??{want_tag} {role} file",
            path=nc.path,
        )


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    text = str(value).strip()
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return t


def _granule_key(nc: NcFile) -> str | None:
    f = nc.name_fields
    return f"A{f['date']}.{f['time']}" if "date" in f else None


def _check_pair(obs: NcFile, geo: NcFile) -> None:
    ko, kg = _granule_key(obs), _granule_key(geo)
    if ko is not None and kg is not None and ko != kg:
        raise GridMismatchError(
            f"observation and geolocation files are from different granules ({ko} vs {kg}): "
            f"{obs.path.name} / {geo.path.name}",
            path=obs.path,
        )
    so, sg = obs.name_fields.get("sat"), geo.name_fields.get("sat")
    if so and sg and so != sg:
        raise GridMismatchError(
            f"observation and geolocation files are from different satellites ({so} vs {sg})",
            path=obs.path,
        )
    to = _parse_time(obs.attrs.get("time_coverage_start"))
    tg = _parse_time(geo.attrs.get("time_coverage_start"))
    if to is not None and tg is not None and abs((to - tg).total_seconds()) > 1.0:
        raise GridMismatchError(
            f"time_coverage_start differs: {obs.attrs['time_coverage_start']} in {obs.path.name}, "
            f"{geo.attrs['time_coverage_start']} in {geo.path.name} (not the same granule)",
            path=obs.path,
        )
    po, pg = obs.attrs.get("platform"), geo.attrs.get("platform")
    if po and pg and normalize_platform(po) != normalize_platform(pg):
        raise GridMismatchError(f"platform differs: {po} vs {pg}", path=obs.path)


def _radiance_decoder(var: VarDef, nc: NcFile) -> tuple[NcDecoder, str]:
    a = var.attrs
    if "radiance_scale_factor" in a:
        return NcDecoder.from_attrs(
            a, "radiance_scale_factor", "radiance_add_offset"
        ), "radiance_scale_factor"
    units = str(a.get("units", "")).strip().lower()
    if units in _KELVIN_UNITS:
        raise WrongProductError(
            f"{var.path} holds brightness temperature ({a.get('units')}); firesmoke needs radiance "
            "(radiance_scale_factor or radiance units)",
            path=nc.path,
            field=var.path,
        )
    if units and units not in _RADIANCE_UNITS:
        raise WrongProductError(
            f"{var.path} has units {a.get('units')!r}, expected radiance (W m-2 sr-1 um-1)",
            path=nc.path,
            field=var.path,
        )
    if not units:
        log.warning(
            "%s: %s has no units; assuming scale_factor/add_offset give radiance", nc.path, var.path
        )
    return NcDecoder.from_attrs(a), "scale_factor"


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
@dataclass(frozen=True)
class L1bPair:
    """An L1B observation/geolocation pair whose metadata were read and checked once.

    ``variables`` maps ``latitude``, ``longitude``, ``solar_zenith``, ``sensor_zenith`` and
    each band name to its variable description; :meth:`decoder` gives its decoding.
    """

    obs: NcFile
    geo: NcFile
    bands: tuple[str, ...]
    variables: Mapping[str, VarDef]
    shape: tuple[int, int]
    n_scans: Any
    rows_per_scan: int

    def decoder(self, name: str) -> NcDecoder:
        """Decoding (scale, offset, fill) of variable ``name`` as :func:`open_l1b_swath` does."""
        var = self.variables[name]
        if name in BANDS and BANDS[name].kind == "radiance":
            return _radiance_decoder(var, self.obs)[0]
        return NcDecoder.from_attrs(var.attrs)

    def path_of(self, name: str) -> Path:
        """The file holding variable ``name``."""
        return self.obs.path if name in self.bands else self.geo.path


def validate_l1b_pair(
    vnp02_path: str | os.PathLike[str],
    vnp03_path: str | os.PathLike[str],
    bands: Sequence[str] = DEFAULT_SWATH_BANDS,
) -> L1bPair:
    """Read and check the metadata of an L1B pair (no pixel data); errors as
    :func:`open_l1b_swath`."""
    obs = _read_nc_metadata(vnp02_path, [OBSERVATION_GROUP])
    geo = _read_nc_metadata(vnp03_path, [GEOLOCATION_GROUP])
    _check_product(obs, "observation")
    _check_product(geo, "geolocation")
    _check_pair(obs, geo)
    bands = [bands] if isinstance(bands, str) else list(bands)
    for b in bands:
        if b not in BANDS:
            raise InputError(f"unknown band {b!r}; expected M01 ... M16", field="bands")

    lat_v = _require(geo, f"{GEOLOCATION_GROUP}/latitude", "geolocation")
    lon_v = _require(geo, f"{GEOLOCATION_GROUP}/longitude", "geolocation")
    sza_v = _require(geo, f"{GEOLOCATION_GROUP}/solar_zenith", "geolocation")
    vza_v = _require(geo, f"{GEOLOCATION_GROUP}/sensor_zenith", "geolocation")
    shape = lat_v.shape
    if len(shape) != 2:
        raise WrongProductError(
            f"latitude has shape {shape}, expected (lines, pixels)", path=geo.path
        )
    band_vars = {b: _require(obs, f"{OBSERVATION_GROUP}/{b}", "observation") for b in bands}
    for v, nc in [
        (lon_v, geo),
        (sza_v, geo),
        (vza_v, geo),
        *[(bv, obs) for bv in band_vars.values()],
    ]:
        if v.shape != shape:
            raise GridMismatchError(
                f"{v.path} has shape {v.shape} but latitude ({geo.path.name}) has {shape}",
                path=nc.path,
            )

    n_lines = shape[0]
    n_scans = obs.dims.get("number_of_scans") or geo.dims.get("number_of_scans")
    rows_per_scan = n_lines // int(n_scans) if n_scans else 16
    if n_scans and n_lines % int(n_scans):
        log.warning("%s: %d lines are not a multiple of %d scans", obs.path, n_lines, n_scans)
    return L1bPair(obs, geo, tuple(bands), {"latitude": lat_v, "longitude": lon_v,
                   "solar_zenith": sza_v, "sensor_zenith": vza_v, **band_vars},
                   tuple(shape), n_scans, rows_per_scan)


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

    lat, lon, sza, vza = (_lazy(geo, sv.variables[n], sv.decoder(n), chunk_spec)
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
        if info.kind == "radiance":
            decoder, source = _radiance_decoder(var, obs)
        else:
            decoder, source = NcDecoder.from_attrs(var.attrs), "scale_factor"
        arr = _lazy(obs, var, decoder, chunk_spec)
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
        if qvar is not None and qvar.shape == shape:
            qarr = _lazy(obs, qvar, None, chunk_spec)
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
    attrs = _swath_attrs(obs, geo, rows_per_scan, n_scans)
    if "start_time" in attrs:
        start = datetime.strptime(attrs["start_time"], "%Y-%m-%dT%H:%M:%SZ")
        coords["time"] = (
            (),
            np.datetime64(start, "ns"),
            {"standard_name": "time", "long_name": "granule start time (UTC)"},
        )
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _swath_attrs(obs: NcFile, geo: NcFile, rows_per_scan: int, n_scans: Any) -> dict[str, Any]:
    a = obs.attrs
    start = _parse_time(a.get("time_coverage_start")) or _parse_time(
        geo.attrs.get("time_coverage_start")
    )
    end = _parse_time(a.get("time_coverage_end")) or _parse_time(geo.attrs.get("time_coverage_end"))
    if start is None and "date" in obs.name_fields:
        from firesmoke.io.viirs.bands import parse_granule_time

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
        out["orbit_number"] = int(_scalar(orbit))
    if n_scans:
        out["number_of_scans"] = int(n_scans)
    if "number_of_filled_scans" in a:
        out["number_of_filled_scans"] = int(_scalar(a["number_of_filled_scans"]))
    for key in ("startDirection", "endDirection"):
        if key in a:
            out[key] = str(a[key])
    if "comment" in a:
        out["comment"] = str(a["comment"])
    return out
