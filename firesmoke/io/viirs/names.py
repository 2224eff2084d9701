"""VIIRS product definitions and file-name matching (no file is opened here).

:data:`PRODUCTS` is a declarative table: each :class:`ProductDefinition` is a regular
expression with named fields (product short name, satellite, date, time, collection,
production stamp, layer) and the role the file plays in a granule. :func:`match_file`
matches a file name against it. Discovery (:mod:`firesmoke.io.viirs.discovery`) and the readers
(:mod:`firesmoke.io.viirs.gridded`, :mod:`firesmoke.io.viirs.swath`) import this module;
it imports none of them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from firesmoke.io.viirs.bands import DEFAULT_VMAES_LAYERS

__all__ = ["KINDS", "PRODUCTS", "ProductDefinition", "match_file"]

#: Granule kinds: gridded ``NPP_VMAES_L1`` and swath L1B pairs.
KINDS = ("vmaes", "l1b")


@dataclass(frozen=True)
class ProductDefinition:
    """How to recognise the files of one product and what role they play.

    Attributes
    ----------
    name
        Product family, e.g. ``"NPP_VMAES_L1"`` or ``"VIIRS_L1B_MOD"``.
    kind
        ``"vmaes"`` (gridded, one file per layer) or ``"l1b"`` (swath, observation +
        geolocation pair).
    pattern
        Regular expression matched against the file name; named groups give the fields
        (``short``, ``sat``, ``date``, ``time``, ``collection``, ``production``, ``layer``...).
    role
        ``"layer"`` (the ``layer`` field says which), ``"observation"`` or ``"geolocation"``.
    requires
        Roles/layers that make a complete granule.
    platforms
        Satellite field value -> platform name (when the name encodes the satellite).
    """

    name: str
    kind: str
    pattern: re.Pattern[str]
    role: str
    requires: tuple[str, ...]
    platforms: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


_L1B_SATS = {"VNP": "S-NPP", "VJ1": "NOAA-20", "VJ2": "NOAA-21"}
_L1B_TAIL = (
    r"(?P<nrt>_NRT)?\.A(?P<date>\d{7})\.(?P<time>\d{4})\.(?P<collection>\d{3})"
    r"(?:\.(?P<production>\d{13}))?(?:\.(?P<creator>[A-Za-z][A-Za-z0-9_-]*))?\.nc$"
)

#: The product table (first match wins).
PRODUCTS: tuple[ProductDefinition, ...] = (
    ProductDefinition(
        name="NPP_VMAES_L1",
        kind="vmaes",
        pattern=re.compile(
            r"^(?P<short>(?P<sat>NPP)_VMAES_L1)\.A(?P<date>\d{7})\.(?P<time>\d{4})"
            r"\.(?P<collection>\d{3})\.(?P<production>\d{13})"
            r"(?:\.(?P<order>[A-Za-z0-9_-]+))?\.(?P<layer>[A-Za-z][A-Za-z0-9_]*)\.hdf$"
        ),
        role="layer",
        requires=DEFAULT_VMAES_LAYERS,
        platforms={"NPP": "S-NPP"},
        description="LAADS NPP_VMAES_L1, server-side gridded, one HDF4 file per layer",
    ),
    ProductDefinition(
        name="VIIRS_L1B_MOD",
        kind="l1b",
        pattern=re.compile(r"^(?P<short>(?P<sat>VNP|VJ1|VJ2)02MOD)" + _L1B_TAIL),
        role="observation",
        requires=("observation", "geolocation"),
        platforms=_L1B_SATS,
        description="VIIRS L1B M-band observations (VNP02MOD, VJ102MOD, VJ202MOD), netCDF4",
    ),
    ProductDefinition(
        name="VIIRS_L1B_MOD",
        kind="l1b",
        pattern=re.compile(r"^(?P<short>(?P<sat>VNP|VJ1|VJ2)03MOD)" + _L1B_TAIL),
        role="geolocation",
        requires=("observation", "geolocation"),
        platforms=_L1B_SATS,
        description="VIIRS L1 M-band geolocation (VNP03MOD, VJ103MOD, VJ203MOD), netCDF4",
    ),
)


def match_file(path: str | os.PathLike[str]) -> tuple[ProductDefinition, dict[str, str]] | None:
    """Match a file name against :data:`PRODUCTS`.

    Returns
    -------
    (definition, fields) or None
        ``fields`` holds the named groups that matched (``None`` groups dropped).
    """
    name = Path(path).name
    for definition in PRODUCTS:
        m = definition.pattern.match(name)
        if m:
            fields = {k: v for k, v in m.groupdict().items() if v is not None}
            return definition, fields
    return None
