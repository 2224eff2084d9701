"""Metadata of VIIRS L1B swath granules: ``VNP02MOD`` observations + ``VNP03MOD`` geolocation.

:func:`validate_l1b_pair` reads the metadata of an observation/geolocation pair (no
pixel data), checks that they are one granule of the right products, with every variable
asked for on one shape, and says how each variable decodes: an :class:`L1bPair`. The
window reader :class:`firesmoke.io.viirs.readers.SwathReader` is built from it, and
:func:`firesmoke.io.viirs.swath.open_l1b_swath` reads through that reader. Files are
opened through :data:`firesmoke.io._core.handles.OPEN_FILES` holding
:data:`~firesmoke.io._core.handles.FILE_LOCK` (netCDF4/HDF5 is not thread-safe).

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
is refused (:meth:`L1bPair.decoder`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from firesmoke.errors import (
    CorruptFileError,
    GridMismatchError,
    InputError,
    MissingLayerError,
    WrongProductError,
)
from firesmoke.io._core.handles import FILE_LOCK, OPEN_FILES
from firesmoke.io.viirs.arrays import NcDecoder
from firesmoke.io.viirs.bands import BANDS, normalize_platform
from firesmoke.io.viirs.names import match_file

__all__ = [
    "DEFAULT_SWATH_BANDS",
    "GEOLOCATION_GROUP",
    "OBSERVATION_GROUP",
    "L1bPair",
    "NcFile",
    "VarDef",
    "parse_time",
    "validate_l1b_pair",
]

log = logging.getLogger(__name__)

OBSERVATION_GROUP = "observation_data"
GEOLOCATION_GROUP = "geolocation_data"
DEFAULT_SWATH_BANDS: tuple[str, ...] = ("M05", "M07", "M10", "M12", "M15")
_RADIANCE_UNITS = {
    "watts/meter^2/steradian/micrometer",
    "w m-2 sr-1 um-1",
    "w m-2 um-1 sr-1",
    "w/m^2/sr/um",
    "w m-2 sr-1 micrometer-1",
}
_KELVIN_UNITS = {"k", "kelvin", "degrees_kelvin"}


# --------------------------------------------------------------------------- low level
def _attrs(obj: Any) -> dict[str, Any]:
    out = {}
    for k in obj.ncattrs():
        v = obj.getncattr(k)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        out[k] = v
    return out


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
    with FILE_LOCK:
        ds = OPEN_FILES.get("netcdf", p)
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
            OPEN_FILES.forget(p)
            raise CorruptFileError(f"cannot read netCDF metadata ({exc})", path=p) from exc
    hit = match_file(p)
    fields = hit[1] if hit is not None and hit[0].kind == "l1b" else {}
    short = fields.get("short", "") or str(attrs.get("ShortName", ""))
    return NcFile(p, attrs, dims, present, variables, fields, short)


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


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time attribute (``2017-10-27T14:06:00.000Z``) as naive UTC; None when absent
    or unreadable."""
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
    to = parse_time(obs.attrs.get("time_coverage_start"))
    tg = parse_time(geo.attrs.get("time_coverage_start"))
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



# --------------------------------------------------------------------------- the pair
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

    def decoding(self, name: str) -> tuple[NcDecoder, str]:
        """Decoding (scale, offset, fill) of variable ``name`` and the attribute its scale
        comes from (``scale_factor`` or ``radiance_scale_factor``)."""
        var = self.variables[name]
        if name in BANDS and BANDS[name].kind == "radiance":
            return _radiance_decoder(var, self.obs)
        return NcDecoder.from_attrs(var.attrs), "scale_factor"

    def decoder(self, name: str) -> NcDecoder:
        """Decoding (scale, offset, fill) of variable ``name``."""
        return self.decoding(name)[0]

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


