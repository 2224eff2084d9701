"""Synthetic MCD64A1 (MODIS burned area, Collection 6) monthly tiles.

Layout of the real ``MCD64A1.A2001213.h08v04.006.2017012140005.hdf``: one HDF4-EOS file
per sinusoidal tile and month, ``MCD64A1.AYYYYDDD.hHHvVV.006.<production stamp>.hdf``
(``DDD`` = first day of the month), grid ``MOD_Grid_Monthly_500m_DB_BA`` of 2400 x 2400
cells (~463 m) in ``GCTP_SNSOID`` (sphere R = 6371007.181 m), five deflated SDS:

* ``Burn Date`` (int16): day of year of the burn within the month, 0 unburned,
  -1 fill (no data), -2 water;
* ``Burn Date Uncertainty`` (uint8, days; 0 when unburned);
* ``QA`` (uint8 bit field: bit 0 land, bit 1 valid data);
* ``First Day`` / ``Last Day`` (int16): window of reliable change detection.

Global attributes mirror the real ones (cell counts, product days, tile, ECS
``CoreMetadata.0`` and ``ArchiveMetadata.0`` ODL texts).

The burn truth is carried to the tile at ~463 m: each cell whose centre falls inside the
region takes the value of the region pixel containing that centre (nearest); cells
outside the region are fill (-1, QA "land without valid data"). Only tiles with at
least one cell inside the region are written. Tile indices follow the MODIS sinusoidal
grid: ``x = R lon cos(lat)``, ``y = R lat``, tiles of 1111950.5197665 m, ``h = 0..35``
from the west, ``v = 0..17`` from the north.
"""

from __future__ import annotations

import calendar
import logging
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from firesmoke.grid import Region
from firesmoke.synthetic.fire import WATER, BurnTruth, make_rng
from firesmoke.synthetic.hdf4write import write_hdf4

__all__ = [
    "SIN_RADIUS",
    "TILE_PIXELS",
    "TILE_SIZE",
    "TileMapping",
    "mcd64_file_name",
    "month_arrays",
    "region_tiles",
    "struct_metadata",
    "tile_datasets",
    "tile_mapping",
    "write_mcd64_month",
]

log = logging.getLogger(__name__)

SIN_RADIUS = 6371007.181
TILE_SIZE = 1111950.5197665
TILE_PIXELS = 2400
CELL_SIZE = TILE_SIZE / TILE_PIXELS
GRID_NAME = "MOD_Grid_Monthly_500m_DB_BA"
TAG_MCD64 = 401
FILL, WATER_VALUE = -1, -2
QA_WATER, QA_MISSING, QA_VALID = 0, 1, 3


@dataclass(frozen=True)
class TileMapping:
    """Cells of one sinusoidal tile whose centres fall in the region.

    ``cell_row``/``cell_col`` index the 2400 x 2400 tile, ``pixel`` is the flat index of
    the region pixel holding each cell centre.
    """

    h: int
    v: int
    cell_row: np.ndarray
    cell_col: np.ndarray
    pixel: np.ndarray


def tile_upper_left(h: int, v: int) -> tuple[float, float]:
    """Sinusoidal x, y (metres) of the upper-left corner of tile ``(h, v)``."""
    return (h - 18) * TILE_SIZE, (9 - v) * TILE_SIZE


def tile_mapping(region: Region, h: int, v: int) -> TileMapping:
    """Cells of tile ``(h, v)`` inside the region and their region pixels.

    Rows of a tile have one latitude each, so the cells inside the region form one run
    of columns per row; only those are evaluated.
    """
    left, bottom, right, top = region.bbox
    x0, y0 = tile_upper_left(h, v)
    i = np.arange(TILE_PIXELS)
    y = y0 - (i + 0.5) * CELL_SIZE
    lat = np.degrees(y / SIN_RADIUS)
    rows_in = np.flatnonzero((lat >= bottom) & (lat < top))
    empty = np.zeros(0, dtype=np.int64)
    if rows_in.size == 0:
        return TileMapping(h, v, empty, empty, empty)
    coslat = np.cos(np.radians(lat[rows_in]))
    xl = SIN_RADIUS * np.radians(left) * coslat
    xr = SIN_RADIUS * np.radians(right) * coslat
    j0 = np.clip(np.ceil((xl - x0) / CELL_SIZE - 0.5).astype(np.int64) - 1, 0, TILE_PIXELS)
    j1 = np.clip(np.ceil((xr - x0) / CELL_SIZE - 0.5).astype(np.int64) + 1, 0, TILE_PIXELS)
    counts = np.maximum(j1 - j0, 0)
    if counts.sum() == 0:
        return TileMapping(h, v, empty, empty, empty)
    cr = np.repeat(rows_in, counts)
    starts = np.repeat(j0, counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    cc = starts + offs
    clat = lat[cr]
    clon = np.degrees((x0 + (cc + 0.5) * CELL_SIZE) / (SIN_RADIUS * np.cos(np.radians(clat))))
    prow, pcol = region.rowcol(clat, clon)
    hgt, wid = region.shape
    inside = (prow >= 0) & (prow < hgt) & (pcol >= 0) & (pcol < wid) & (np.abs(clon) <= 180.0)
    return TileMapping(h, v, cr[inside], cc[inside], (prow * wid + pcol)[inside])


def region_tiles(region: Region) -> list[TileMapping]:
    """Mappings of every sinusoidal tile with at least one cell centre in the region."""
    left, bottom, right, top = region.bbox
    lats = [bottom, top] + ([0.0] if bottom < 0.0 < top else [])
    xs = [
        SIN_RADIUS * math.radians(lon) * math.cos(math.radians(la))
        for la in lats
        for lon in (left, right)
    ]
    h0 = max(math.floor(min(xs) / TILE_SIZE + 18), 0)
    h1 = min(math.floor(max(xs) / TILE_SIZE + 18), 35)
    v0 = max(math.floor(9 - SIN_RADIUS * math.radians(top) / TILE_SIZE), 0)
    v1 = min(math.floor(9 - SIN_RADIUS * math.radians(bottom) / TILE_SIZE), 17)
    out = []
    for v in range(v0, v1 + 1):
        for h in range(h0, h1 + 1):
            m = tile_mapping(region, h, v)
            if m.pixel.size:
                out.append(m)
    return out


# --------------------------------------------------------------------------- contents
def _months(start: np.datetime64, n_days: int) -> list[np.datetime64]:
    first = np.datetime64(start, "M")
    last = np.datetime64(np.datetime64(start, "D") + np.timedelta64(n_days - 1, "D"), "M")
    return [first + np.timedelta64(k, "M") for k in range(int((last - first).astype(int)) + 1)]


def _doy(day: np.datetime64) -> int:
    d = np.datetime64(day, "D")
    return int((d - d.astype("datetime64[Y]")).astype(np.int64)) + 1


def month_arrays(
    truth: BurnTruth, mapping: TileMapping, month: np.datetime64
) -> dict[str, np.ndarray]:
    """The five SDS of one tile and month (2400 x 2400 arrays)."""
    month = np.datetime64(month, "M")
    m_first = month.astype("datetime64[D]")
    m_last = (month + np.timedelta64(1, "M")).astype("datetime64[D]") - np.timedelta64(1, "D")
    d_first, d_last = _doy(m_first), _doy(m_last)
    year = int(month.astype("datetime64[Y]").astype(np.int64)) + 1970
    year_len = 366 if calendar.isleap(year) else 365

    shape = (TILE_PIXELS, TILE_PIXELS)
    burn = np.full(shape, FILL, dtype=np.int16)
    unc = np.zeros(shape, dtype=np.uint8)
    qa = np.full(shape, QA_MISSING, dtype=np.uint8)
    first = np.full(shape, FILL, dtype=np.int16)
    last = np.full(shape, FILL, dtype=np.int16)

    r, c, p = mapping.cell_row, mapping.cell_col, mapping.pixel
    lc = truth.land_cover.ravel()[p]
    bday = truth.burn_day.ravel()[p].astype(np.int64)
    burn_date = truth.start + bday.astype("timedelta64[D]")
    in_month = (bday >= 0) & (burn_date >= m_first) & (burn_date <= m_last)
    doy = (burn_date - burn_date.astype("datetime64[Y]")).astype(np.int64) + 1
    water = lc == WATER

    rng = make_rng(truth.seed, TAG_MCD64, mapping.h, mapping.v, int(month.astype(np.int64)))
    n = p.size
    k1 = rng.integers(0, 21, n)
    k2 = rng.integers(0, 11, n)
    a = rng.integers(0, 3, n)
    b = rng.integers(1, 4, n)

    vb = np.where(water, WATER_VALUE, np.where(in_month, doy, 0))
    burn[r, c] = vb
    qa[r, c] = np.where(water, QA_WATER, QA_VALID)
    fd = np.where(in_month, np.maximum(doy - a, 1), np.maximum(d_first - k1, 1))
    ld = np.where(in_month, np.minimum(doy + b, year_len), np.minimum(d_last + k2, year_len))
    first[r, c] = np.where(water, WATER_VALUE, fd)
    last[r, c] = np.where(water, WATER_VALUE, ld)
    unc[r, c] = np.where(in_month & ~water, a + b, 0)
    return {
        "Burn Date": burn,
        "Burn Date Uncertainty": unc,
        "QA": qa,
        "First Day": first,
        "Last Day": last,
        "_days": np.array([d_first, d_last, year]),
    }


# --------------------------------------------------------------------------- writing
def _stamp(t: np.datetime64) -> str:
    t = np.datetime64(t, "s")
    day = t.astype("datetime64[D]")
    sec = int((t - day.astype("datetime64[s]")).astype(np.int64))
    return f"{int(day.astype('datetime64[Y]').astype(np.int64)) + 1970:04d}{_doy(day):03d}{sec // 3600:02d}{sec % 3600 // 60:02d}{sec % 60:02d}"


def _production(month: np.datetime64, h: int, v: int, seed: int) -> np.datetime64:
    end = (np.datetime64(month, "M") + np.timedelta64(1, "M")).astype("datetime64[s]")
    jitter = zlib.crc32(f"{month}:{h}:{v}:{int(seed)}".encode()) % 86400
    return end + np.timedelta64(45 * 86400 + jitter, "s")


def mcd64_file_name(month: np.datetime64, h: int, v: int, production: np.datetime64) -> str:
    """``MCD64A1.AYYYYDDD.hHHvVV.006.<YYYYDDDHHMMSS>.hdf``."""
    first = np.datetime64(month, "M").astype("datetime64[D]")
    year = int(first.astype("datetime64[Y]").astype(np.int64)) + 1970
    return f"MCD64A1.A{year:04d}{_doy(first):03d}.h{h:02d}v{v:02d}.006.{_stamp(production)}.hdf"


def _struct_metadata(h: int, v: int) -> str:
    x0, y0 = tile_upper_left(h, v)
    return struct_metadata(GRID_NAME, (x0, y0), (x0 + TILE_SIZE, y0 - TILE_SIZE),
                           (TILE_PIXELS, TILE_PIXELS))


#: The SDS of a monthly burned-area tile and their HDF-EOS2 types (MCD64A1 and VNP64A1).
TILE_FIELDS: tuple[tuple[str, str], ...] = (
    ("Burn Date", "DFNT_INT16"),
    ("Burn Date Uncertainty", "DFNT_UINT8"),
    ("QA", "DFNT_UINT8"),
    ("First Day", "DFNT_INT16"),
    ("Last Day", "DFNT_INT16"),
)


def struct_metadata(grid_name: str, ul: tuple[float, float], lr: tuple[float, float],
                    shape: tuple[int, int], fields: Any = None) -> str:
    """HDF-EOS2 ``StructMetadata.0`` of one GCTP_SNSOID grid (padded to 32000 characters).

    ``ul``/``lr`` are the outer corners in metres, ``shape`` ``(YDim, XDim)``, ``fields``
    the ``(name, DFNT type)`` of its data fields (default :data:`TILE_FIELDS`).
    """
    (x0, y0), (x1, y1) = ul, lr
    ny, nx = shape
    parts = [
        "GROUP=SwathStructure\nEND_GROUP=SwathStructure\nGROUP=GridStructure\n\tGROUP=GRID_1\n",
        f'\t\tGridName="{grid_name}"\n\t\tXDim={nx}\n\t\tYDim={ny}\n',
        f"\t\tUpperLeftPointMtrs=({x0:.6f},{y0:.6f})\n\t\tLowerRightMtrs=({x1:.6f},{y1:.6f})\n",
        f"\t\tProjection=GCTP_SNSOID\n\t\tProjParams=({SIN_RADIUS:.6f},0,0,0,0,0,0,0,0,0,0,0,0)\n",
        "\t\tSphereCode=-1\n\t\tGridOrigin=HDFE_GD_UL\n\t\tGROUP=Dimension\n\t\tEND_GROUP=Dimension\n",
        "\t\tGROUP=DataField\n",
    ]
    for k, (name, typ) in enumerate(TILE_FIELDS if fields is None else fields, start=1):
        parts.append(
            f'\t\t\tOBJECT=DataField_{k}\n\t\t\t\tDataFieldName="{name}"\n\t\t\t\tDataType={typ}\n'
            f'\t\t\t\tDimList=("YDim","XDim")\n\t\t\tEND_OBJECT=DataField_{k}\n'
        )
    parts.append(
        "\t\tEND_GROUP=DataField\n\t\tGROUP=MergedFields\n\t\tEND_GROUP=MergedFields\n\tEND_GROUP=GRID_1\n"
        "END_GROUP=GridStructure\nGROUP=PointStructure\nEND_GROUP=PointStructure\nEND\n"
    )
    text = "".join(parts)
    return text + "\x00" * (32000 - len(text))


def _tile_corners(h: int, v: int) -> tuple[list[float], list[float]]:
    """Latitude/longitude of the tile corners: lower-left, upper-left, upper-right, lower-right."""
    x0, y0 = tile_upper_left(h, v)
    lats, lons = [], []
    for x, y in (
        (x0, y0 - TILE_SIZE),
        (x0, y0),
        (x0 + TILE_SIZE, y0),
        (x0 + TILE_SIZE, y0 - TILE_SIZE),
    ):
        lat = math.degrees(y / SIN_RADIUS)
        c = max(math.cos(math.radians(lat)), 1e-9)
        lon = max(-180.0, min(180.0, math.degrees(x / (SIN_RADIUS * c))))
        lats.append(lat)
        lons.append(lon)
    return lats, lons


def _odl(lines: list[tuple[int, str]]) -> str:
    return "\n" + "\n".join(("  " * d + s) if s else "" for d, s in lines) + "\n\n"


def _obj(
    depth: int, name: str, value: str, num: int = 1, cls: str | None = None
) -> list[tuple[int, str]]:
    out = [(depth, f"{'OBJECT'.ljust(23)}= {name}")]
    if cls is not None:
        out.append((depth + 1, f'{"CLASS".ljust(21)}= "{cls}"'))
    out.append((depth + 1, f"{'NUM_VAL'.ljust(21)}= {num}"))
    out.append((depth + 1, f"{'VALUE'.ljust(21)}= {value}"))
    out.append((depth, f"{'END_OBJECT'.ljust(23)}= {name}"))
    out.append((0, ""))
    return out


def _core_metadata(
    name: str, h: int, v: int, month: np.datetime64, production: np.datetime64
) -> str:
    first = np.datetime64(month, "M").astype("datetime64[D]")
    last = (np.datetime64(month, "M") + np.timedelta64(1, "M")).astype(
        "datetime64[D]"
    ) - np.timedelta64(1, "D")
    lats, lons = _tile_corners(h, v)
    ring = [lats[0], lats[1], lats[2], lats[3]], [lons[0], lons[1], lons[2], lons[3]]
    L: list[tuple[int, str]] = [
        (0, f"{'GROUP'.ljust(23)}= INVENTORYMETADATA"),
        (1, f"{'GROUPTYPE'.ljust(21)}= MASTERGROUP"),
        (0, ""),
    ]
    L += [(1, f"{'GROUP'.ljust(23)}= ECSDATAGRANULE"), (0, "")]
    L += _obj(2, "REPROCESSINGPLANNED", '"further update is anticipated"')
    L += _obj(2, "REPROCESSINGACTUAL", '"reprocessed"')
    L += _obj(2, "LOCALGRANULEID", f'"{name}"')
    L += _obj(2, "DAYNIGHTFLAG", '"Day"')
    L += _obj(2, "PRODUCTIONDATETIME", f'"{np.datetime64(production, "ms")}Z"')
    L += _obj(2, "LOCALVERSIONID", '"4.0.0"')
    L += [(1, f"{'END_GROUP'.ljust(23)}= ECSDATAGRANULE"), (0, "")]
    L += [(1, f"{'GROUP'.ljust(23)}= COLLECTIONDESCRIPTIONCLASS"), (0, "")]
    L += _obj(2, "SHORTNAME", '"MCD64A1"')
    L += _obj(2, "VERSIONID", "6")
    L += [(1, f"{'END_GROUP'.ljust(23)}= COLLECTIONDESCRIPTIONCLASS"), (0, "")]
    L += [(1, f"{'GROUP'.ljust(23)}= INPUTGRANULE"), (0, "")]
    L += _obj(2, "INPUTPOINTER", '("firesmoke synthetic scenario")')
    L += [(1, f"{'END_GROUP'.ljust(23)}= INPUTGRANULE"), (0, "")]
    L += [(1, f"{'GROUP'.ljust(23)}= SPATIALDOMAINCONTAINER"), (0, "")]
    L += [(2, f"{'GROUP'.ljust(23)}= HORIZONTALSPATIALDOMAINCONTAINER"), (0, "")]
    L += [(3, f"{'GROUP'.ljust(23)}= GPOLYGON"), (0, "")]
    L += [
        (4, f"{'OBJECT'.ljust(23)}= GPOLYGONCONTAINER"),
        (5, f'{"CLASS".ljust(21)}= "1"'),
        (0, ""),
    ]
    L += [(5, f"{'GROUP'.ljust(23)}= GRINGPOINT"), (6, f'{"CLASS".ljust(21)}= "1"'), (0, "")]
    L += _obj(6, "GRINGPOINTLATITUDE", "(" + ", ".join(f"{x:.10f}" for x in ring[0]) + ")", 4, "1")
    L += _obj(6, "GRINGPOINTLONGITUDE", "(" + ", ".join(f"{x:.10f}" for x in ring[1]) + ")", 4, "1")
    L += _obj(6, "GRINGPOINTSEQUENCENO", "(1, 2, 3, 4)", 4, "1")
    L += [(5, f"{'END_GROUP'.ljust(23)}= GRINGPOINT"), (0, "")]
    L += [(4, f"{'END_OBJECT'.ljust(23)}= GPOLYGONCONTAINER"), (0, "")]
    L += [(3, f"{'END_GROUP'.ljust(23)}= GPOLYGON"), (0, "")]
    L += [(2, f"{'END_GROUP'.ljust(23)}= HORIZONTALSPATIALDOMAINCONTAINER"), (0, "")]
    L += [(1, f"{'END_GROUP'.ljust(23)}= SPATIALDOMAINCONTAINER"), (0, "")]
    L += [(1, f"{'GROUP'.ljust(23)}= RANGEDATETIME"), (0, "")]
    L += _obj(2, "RANGEBEGINNINGDATE", f'"{first}"')
    L += _obj(2, "RANGEBEGINNINGTIME", '"00:00:00"')
    L += _obj(2, "RANGEENDINGDATE", f'"{last}"')
    L += _obj(2, "RANGEENDINGTIME", '"23:59:59"')
    L += [(1, f"{'END_GROUP'.ljust(23)}= RANGEDATETIME"), (0, "")]
    L += [(1, f"{'GROUP'.ljust(23)}= ADDITIONALATTRIBUTES"), (0, "")]
    for k, (aname, aval) in enumerate(
        [
            ("HORIZONTALTILENUMBER", f"{h:02d}"),
            ("VERTICALTILENUMBER", f"{v:02d}"),
            ("TileID", f"51{h:03d}{v:03d}"),
        ],
        start=1,
    ):
        L += [
            (2, f"{'OBJECT'.ljust(23)}= ADDITIONALATTRIBUTESCONTAINER"),
            (3, f'{"CLASS".ljust(21)}= "{k}"'),
            (0, ""),
        ]
        L += _obj(3, "ADDITIONALATTRIBUTENAME", f'"{aname}"', 1, str(k))
        L += [
            (3, f"{'GROUP'.ljust(23)}= INFORMATIONCONTENT"),
            (4, f'{"CLASS".ljust(21)}= "{k}"'),
            (0, ""),
        ]
        L += _obj(4, "PARAMETERVALUE", f'"{aval}"', 1, str(k))
        L += [(3, f"{'END_GROUP'.ljust(23)}= INFORMATIONCONTENT"), (0, "")]
        L += [(2, f"{'END_OBJECT'.ljust(23)}= ADDITIONALATTRIBUTESCONTAINER"), (0, "")]
    L += [(1, f"{'END_GROUP'.ljust(23)}= ADDITIONALATTRIBUTES"), (0, "")]
    L += [(0, f"{'END_GROUP'.ljust(23)}= INVENTORYMETADATA"), (0, ""), (0, "END")]
    return _odl(L)


def _archive_metadata(h: int, v: int, burned: int) -> str:
    lats, lons = _tile_corners(h, v)
    L: list[tuple[int, str]] = [
        (0, f"{'GROUP'.ljust(23)}= ARCHIVEDMETADATA"),
        (1, f"{'GROUPTYPE'.ljust(21)}= MASTERGROUP"),
        (0, ""),
    ]
    L += [(1, f"{'GROUP'.ljust(23)}= BOUNDINGRECTANGLE"), (0, "")]
    L += _obj(2, "WESTBOUNDINGCOORDINATE", f"{min(lons):.10f}")
    L += _obj(2, "NORTHBOUNDINGCOORDINATE", f"{max(lats):.10f}")
    L += _obj(2, "EASTBOUNDINGCOORDINATE", f"{max(lons):.10f}")
    L += _obj(2, "SOUTHBOUNDINGCOORDINATE", f"{min(lats):.10f}")
    L += [(1, f"{'END_GROUP'.ljust(23)}= BOUNDINGRECTANGLE"), (0, "")]
    for name, value in (
        ("ALGORITHMPACKAGENAME", '"MOD_PR64A1"'),
        ("ALGORITHMPACKAGEVERSION", '"6"'),
        (
            "LONGNAME",
            '"MODIS/Terra+Aqua Direct Broadcast Burned Area Monthly L3 Global 500m SIN Grid"',
        ),
        ("PROCESSINGCENTER", '"firesmoke synthetic"'),
        ("CHARACTERISTICBINSIZE", "463.312716527778"),
        ("DATACOLUMNS", str(TILE_PIXELS)),
        ("DATAROWS", str(TILE_PIXELS)),
        ("GLOBALGRIDCOLUMNS", "86400"),
        ("GLOBALGRIDROWS", "43200"),
        ("NADIRDATARESOLUTION", '"500m"'),
        ("DESCRREVISION", '"6.0"'),
        ("NUMBERBURNEDPIXELS", str(int(burned))),
    ):
        L += _obj(1, name, value)
    L += [(0, f"{'END_GROUP'.ljust(23)}= ARCHIVEDMETADATA"), (0, ""), (0, "END")]
    return _odl(L)


def tile_datasets(arrays: Any, grid_name: str) -> list[tuple[str, np.ndarray, tuple[str, str], list]]:
    """The SDS of a monthly burned-area tile as :func:`~firesmoke.synthetic.hdf4write.write_hdf4`
    datasets (names, types, attributes and fill values of MCD64A1, shared by VNP64A1);
    ``arrays`` maps SDS names to arrays (``Burn Date`` required, the others when given)."""
    burn = np.asarray(arrays["Burn Date"], np.int16)
    dims = (f"YDim:{grid_name}", f"XDim:{grid_name}")
    date_attrs = [
        ("valid_range", "INT16", [0, 366]),
        ("_FillValue", "FILL", FILL),
        ("water", "INT16", WATER_VALUE),
    ]
    window_attrs = [
        ("valid_range", "INT16", [1, 366]),
        ("_FillValue", "FILL", FILL),
        ("water", "INT16", WATER_VALUE),
    ]
    spec = {
        "Burn Date": (np.int16, [("long_name", "CHAR8", "ordinal day of burn"), *date_attrs]),
        "Burn Date Uncertainty": (np.uint8, [("long_name", "CHAR8", "uncertainty in day of burn"),
                                             ("units", "CHAR8", "days")]),
        "QA": (np.uint8, [("units", "CHAR8", "bit field")]),
        "First Day": (np.int16, [("long_name", "CHAR8", "first day of reliable change detection"),
                                 *window_attrs]),
        "Last Day": (np.int16, [("long_name", "CHAR8", "last day of reliable change detection"),
                                *window_attrs]),
    }
    out = []
    for name, (dtype, attrs) in spec.items():
        if name not in arrays:
            continue
        arr = burn if name == "Burn Date" else np.asarray(arrays[name], dtype)
        if arr.shape != burn.shape:
            raise ValueError(f"layer {name!r} has shape {arr.shape}, 'Burn Date' {burn.shape}")
        out.append((name, arr, dims, attrs))
    return out


def write_mcd64_month(
    out_dir: str | os.PathLike[str],
    truth: BurnTruth,
    mapping: TileMapping,
    month: np.datetime64,
    staging: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the MCD64A1 file of one tile and month; returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    h, v = mapping.h, mapping.v
    arrays = month_arrays(truth, mapping, month)
    d_first, d_last, year = (int(x) for x in arrays.pop("_days"))
    production = _production(month, h, v, truth.seed)
    name = mcd64_file_name(month, h, v, production)
    burn = arrays["Burn Date"]
    burned = int(np.count_nonzero(burn > 0))
    missing = int(np.count_nonzero(burn == FILL))
    land = int(np.count_nonzero(burn != WATER_VALUE))
    gattrs: list[tuple[str, str, Any]] = [
        ("HDFEOSVersion", "CHAR8", "HDFEOS_V2.17"),
        ("StructMetadata.0", "CHAR8", _struct_metadata(h, v)),
        ("BurnedCells", "INT32", burned),
        ("MissingCells", "INT32", missing),
        ("LandCells", "INT32", land),
        ("ValidLandCells", "INT32", land - missing),
        ("ProductStartDay", "INT16", d_first),
        ("ProductEndDay", "INT16", d_last),
        ("year", "INT16", year),
        ("tile", "CHAR8", f"h{h:02d}v{v:02d}"),
        ("CodeVersion", "CHAR8", "4.0.0"),
        (
            "MCD64A0_input_file",
            "CHAR8",
            f"MCD64A0.A{year:04d}{d_first:03d}.h{h:02d}v{v:02d}.006.{_stamp(production - np.timedelta64(1800, 's'))}.hdf",
        ),
        ("LC_input_file", "CHAR8", f"MCD12Q1.{year:04d}.051-UMD-clean-4km.hdf"),
        ("identifier_product_doi", "CHAR8", "10.5067/MODIS/MCD64A1.006"),
        ("identifier_product_doi_authority", "CHAR8", "http://dx.doi.org"),
        ("CoreMetadata.0", "CHAR8", _core_metadata(name, h, v, month, production)),
        ("ArchiveMetadata.0", "CHAR8", _archive_metadata(h, v, burned)),
    ]
    datasets = tile_datasets(arrays, GRID_NAME)
    stage = Path(staging) if staging is not None else out / ".staging"
    path = write_hdf4(out / name, gattrs, datasets, stage)
    try:
        stage.rmdir()
    except OSError:
        pass
    return path


def months_of(start: np.datetime64, n_days: int) -> list[np.datetime64]:
    """Calendar months (``datetime64[M]``) touched by ``n_days`` days from ``start``."""
    return _months(start, n_days)
