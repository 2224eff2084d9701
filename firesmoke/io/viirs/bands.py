"""Facts shared by the VIIRS 750 m readers (gridded ``NPP_VMAES_L1`` and swath L1B).

One table of the M bands firesmoke uses (names, wavelengths, physical quantity), the
mapping from the LAADS ``NPP_VMAES_L1`` layer names to firesmoke variable names, CF
attributes, platform names and the ``AYYYYDDD.HHMM`` granule-time convention of NASA file
names. No I/O here.

Facts
-----
- VIIRS moderate-resolution (M) bands: M1-M11 are reflective solar bands (the products
  store a reflectance factor), M12-M16 thermal emissive bands (the products store
  radiance in W m-2 sr-1 um-1). Centre wavelengths used here (um): M5 0.672, M7 0.865,
  M10 1.61, M12 3.70, M15 10.763 (BA-Net uses 3.6966 and 10.7343 um as the effective
  wavelengths of M12 and M15 in its MIR computation).
- ``NPP_VMAES_L1`` (LAADS) ships one HDF4 file per layer: ``Reflectance_M5``,
  ``Reflectance_M7``, ``Reflectance_M10``, ``Radiance_M12``, ``Radiance_M15``,
  ``SolarZenithAngle``, ``SatelliteZenithAngle``.
- NASA granule names carry the start of acquisition as ``AYYYYDDD.HHMM`` (year, day of
  year, hour, minute; UTC), e.g. ``A2017300.1406`` = 2017-10-27 14:06 UTC.
- Platform names: ``NPP``/``Suomi-NPP``/``SNPP`` -> S-NPP; ``J01``/``JPSS-1``/``NOAA-20``
  -> NOAA-20; ``J02``/``JPSS-2``/``NOAA-21`` -> NOAA-21. File prefixes: ``VNP`` (S-NPP),
  ``VJ1`` (NOAA-20), ``VJ2`` (NOAA-21).
- Reflectance normalisation: the NASA VIIRS L1B (VNP02) reflective bands store the
  reflectance factor *not* divided by cos(solar zenith) (rho * cos(SZA)); dividing by
  cos(SZA) gives the CF ``toa_bidirectional_reflectance``. firesmoke readers return the
  stored quantity by default (as BA-Net consumed ``NPP_VMAES_L1``) and divide on request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from firesmoke.errors import InputError

__all__ = [
    "ANGLE_VARIABLES",
    "BANDS",
    "DEFAULT_VMAES_LAYERS",
    "GRANULE_ID_RE",
    "VMAES_LAYER_TO_VARIABLE",
    "VMAES_SHORT_NAMES",
    "BandInfo",
    "angle_attrs",
    "band_attrs",
    "granule_id",
    "normalize_platform",
    "parse_granule_time",
    "vmaes_layer_variable",
]


@dataclass(frozen=True)
class BandInfo:
    """One VIIRS M band."""

    name: str  #: firesmoke variable name, e.g. ``"M05"``
    kind: str  #: ``"reflectance"`` or ``"radiance"``
    wavelength_um: float  #: centre wavelength
    wavelength_range_um: tuple[float, float]
    role: str = ""  #: how firesmoke uses it (red, nir, mir, ...)


#: The M bands (all 16; firesmoke uses M05, M07, M10, M12, M15).
BANDS: dict[str, BandInfo] = {
    "M01": BandInfo("M01", "reflectance", 0.412, (0.402, 0.422)),
    "M02": BandInfo("M02", "reflectance", 0.445, (0.436, 0.454)),
    "M03": BandInfo("M03", "reflectance", 0.488, (0.478, 0.498)),
    "M04": BandInfo("M04", "reflectance", 0.555, (0.545, 0.565)),
    "M05": BandInfo("M05", "reflectance", 0.672, (0.662, 0.682), "red"),
    "M06": BandInfo("M06", "reflectance", 0.746, (0.739, 0.754)),
    "M07": BandInfo("M07", "reflectance", 0.865, (0.846, 0.885), "nir"),
    "M08": BandInfo("M08", "reflectance", 1.240, (1.230, 1.250)),
    "M09": BandInfo("M09", "reflectance", 1.378, (1.371, 1.386)),
    "M10": BandInfo("M10", "reflectance", 1.610, (1.580, 1.640), "swir"),
    "M11": BandInfo("M11", "reflectance", 2.250, (2.225, 2.275)),
    "M12": BandInfo("M12", "radiance", 3.700, (3.610, 3.790), "mir"),
    "M13": BandInfo("M13", "radiance", 4.050, (3.973, 4.128)),
    "M14": BandInfo("M14", "radiance", 8.550, (8.400, 8.700)),
    "M15": BandInfo("M15", "radiance", 10.763, (10.263, 11.263), "tir"),
    "M16": BandInfo("M16", "radiance", 12.013, (11.538, 12.489)),
}

#: Angle variables firesmoke reads, with their CF standard names.
ANGLE_VARIABLES: dict[str, str] = {
    "solar_zenith": "solar_zenith_angle",
    "sensor_zenith": "sensor_zenith_angle",
    "solar_azimuth": "solar_azimuth_angle",
    "sensor_azimuth": "sensor_azimuth_angle",
}

#: Product short names accepted by the gridded reader.
VMAES_SHORT_NAMES: tuple[str, ...] = ("NPP_VMAES_L1",)

#: LAADS layer (file suffix and SDS name) -> firesmoke variable.
VMAES_LAYER_TO_VARIABLE: dict[str, str] = {
    "Reflectance_M5": "M05",
    "Reflectance_M7": "M07",
    "Reflectance_M10": "M10",
    "Radiance_M12": "M12",
    "Radiance_M15": "M15",
    "SolarZenithAngle": "solar_zenith",
    "SatelliteZenithAngle": "sensor_zenith",
}

#: The layers a BA-Net granule is made of (and that the gridded reader reads by default).
DEFAULT_VMAES_LAYERS: tuple[str, ...] = tuple(VMAES_LAYER_TO_VARIABLE)

_BAND_LAYER_RE = re.compile(r"^(?:Reflectance|Radiance)_M(\d{1,2})$")
_EXTRA_LAYERS = {
    "SolarAzimuthAngle": "solar_azimuth",
    "SatelliteAzimuthAngle": "sensor_azimuth",
}

#: ``AYYYYDDD.HHMM`` as in NASA file names.
GRANULE_ID_RE = re.compile(r"^A(?P<date>\d{7})\.(?P<time>\d{4})$")

_PLATFORMS = {
    "NPP": "S-NPP",
    "SNPP": "S-NPP",
    "S-NPP": "S-NPP",
    "SUOMI-NPP": "S-NPP",
    "SUOMI NPP": "S-NPP",
    "NP": "S-NPP",
    "VNP": "S-NPP",
    "J01": "NOAA-20",
    "J1": "NOAA-20",
    "JPSS-1": "NOAA-20",
    "NOAA-20": "NOAA-20",
    "NOAA20": "NOAA-20",
    "VJ1": "NOAA-20",
    "J02": "NOAA-21",
    "J2": "NOAA-21",
    "JPSS-2": "NOAA-21",
    "NOAA-21": "NOAA-21",
    "NOAA21": "NOAA-21",
    "VJ2": "NOAA-21",
}


def vmaes_layer_variable(layer: str) -> str | None:
    """firesmoke variable name of an ``NPP_VMAES_L1`` layer, or ``None`` if unknown.

    Besides the seven BA-Net layers, any ``Reflectance_M<n>``/``Radiance_M<n>`` layer maps
    to ``M<nn>``.
    """
    if layer in VMAES_LAYER_TO_VARIABLE:
        return VMAES_LAYER_TO_VARIABLE[layer]
    if layer in _EXTRA_LAYERS:
        return _EXTRA_LAYERS[layer]
    m = _BAND_LAYER_RE.match(layer)
    if m and 1 <= int(m.group(1)) <= 16:
        return f"M{int(m.group(1)):02d}"
    return None


def normalize_platform(name: Any) -> str:
    """Common platform name (``"S-NPP"``, ``"NOAA-20"``, ``"NOAA-21"``); unknown names unchanged."""
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    text = str(name).strip()
    return _PLATFORMS.get(text.upper(), text)


def parse_granule_time(date: str, time: str) -> datetime:
    """UTC start time (naive datetime) from the ``YYYYDDD`` and ``HHMM`` fields of a name.

    Raises
    ------
    ValueError
        If the fields are not a valid day of year / time of day.
    """
    if not (len(date) == 7 and date.isdigit() and len(time) == 4 and time.isdigit()):
        raise InputError(f"expected YYYYDDD and HHMM, got {date!r} {time!r}")
    year, doy = int(date[:4]), int(date[4:])
    hour, minute = int(time[:2]), int(time[2:])
    start = datetime(year, 1, 1)
    days_in_year = (datetime(year + 1, 1, 1) - start).days
    if not 1 <= doy <= days_in_year or hour > 23 or minute > 59:
        raise InputError(f"invalid day of year or time in A{date}.{time}")
    return start + timedelta(days=doy - 1, hours=hour, minutes=minute)


def granule_id(start: datetime) -> str:
    """``AYYYYDDD.HHMM`` of a start time."""
    return f"A{start:%Y%j}.{start:%H%M}"


def band_attrs(name: str, *, normalized: bool = False, stored_in: str = "") -> dict[str, Any]:
    """CF attributes of a decoded M band.

    Parameters
    ----------
    name
        ``"M05"`` ... ``"M16"``.
    normalized
        For reflective bands: whether the values were divided by cos(solar zenith) (then
        they are the CF ``toa_bidirectional_reflectance``).
    stored_in
        Product name, quoted in ``long_name``.
    """
    band = BANDS[name]
    src = f" ({stored_in})" if stored_in else ""
    attrs: dict[str, Any] = {
        "wavelength": band.wavelength_um,
        "wavelength_units": "um",
        "wavelength_range": list(band.wavelength_range_um),
        "band": name,
    }
    if band.kind == "reflectance":
        attrs["units"] = "1"
        if normalized:
            attrs["standard_name"] = "toa_bidirectional_reflectance"
            attrs["long_name"] = f"VIIRS {name} top-of-atmosphere reflectance{src}"
            attrs["reflectance_normalization"] = "divided by cos(solar_zenith)"
        else:
            attrs["long_name"] = f"VIIRS {name} top-of-atmosphere reflectance factor as stored{src}"
            attrs["reflectance_normalization"] = (
                "none: reflectance factor as stored in the product (not divided by cos(solar_zenith))"
            )
    else:
        attrs["units"] = "W m-2 sr-1 um-1"
        attrs["standard_name"] = "toa_outgoing_radiance_per_unit_wavelength"
        attrs["long_name"] = f"VIIRS {name} top-of-atmosphere spectral radiance{src}"
    return attrs


def angle_attrs(name: str) -> dict[str, Any]:
    """CF attributes of a decoded angle variable (``solar_zenith``, ``sensor_zenith``, ...)."""
    standard = ANGLE_VARIABLES[name]
    return {
        "units": "degree",
        "standard_name": standard,
        "long_name": standard.replace("_", " "),
    }
