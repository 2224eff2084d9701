"""Synthetic VIIRS VNP64A1 monthly burned-area tiles, in the HDF4 layout NASA distributes.

VNP64A1 (collection 001 and 002) is HDF-EOS2 / HDF4 "nearly identical in format to the
MODIS Collection 6 MCD64A1" (LAADS file specification of VNP64A1), one file per
sinusoidal tile and month, ``VNP64A1.AYYYYDDD.hHHvVV.002.<YYYYDDDHHMMSS>.hdf``
(``DDD`` = first day of the month):

* grid ``MOD_Grid_Monthly_500m_BA`` (``GCTP_SNSOID``, sphere R = 6371007.181 m) in
  ``StructMetadata.0``; 2400 x 2400 cells for a real tile, any size here (tests use
  small grids: the geometry is read from ``StructMetadata.0``);
* SDS ``Burn Date``, ``Burn Date Uncertainty``, ``QA``, ``First Day``, ``Last Day`` with
  the MCD64A1 types, codes (-2 water, -1 unmapped, 0 unburned, 1-366 day of burn) and
  attributes, deflated;
* global attributes ``CoreMetadata.0`` (tile numbers), ``BurnedCells``,
  ``MissingCells``, ``LandCells``, ``ValidLandCells``, ``ProductStartDay``,
  ``ProductEndDay``, ``year``, ``tile``, ``CodeVersion``, ``VNP64A0_input_file``,
  ``LC_input_file``, ``ShortName``, ``LongName``.

The SDS and the grid text are written by the MCD64A1 writer's own pieces
(:func:`firesmoke.synthetic.mcd64.tile_datasets`,
:func:`firesmoke.synthetic.mcd64.struct_metadata`), through
:func:`firesmoke.synthetic.hdf4write.write_hdf4` (atomic). :func:`write_vnp64_month` reuses
the MCD64A1 simulation (:func:`firesmoke.synthetic.mcd64.month_arrays`), so one burn truth
gives both products.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from firesmoke.errors import InputError
from firesmoke.io.burned_area.sinusoidal import tile_bounds
from firesmoke.synthetic.hdf4write import write_hdf4
from firesmoke.synthetic.mcd64 import month_arrays, struct_metadata, tile_datasets

__all__ = ["GRID_NAME", "vnp64_file_name", "write_vnp64_month", "write_vnp64a1"]

#: HDF-EOS2 grid name of VNP64A1 (LAADS file specification).
GRID_NAME = "MOD_Grid_Monthly_500m_BA"
_LONG_NAME = "VIIRS/NPP Burned Area Monthly L3 Global 500m SIN Grid"


def _month_days(month: Any) -> tuple[int, int, int]:
    """(first day of year, last day of year, year) of a month."""
    m = np.datetime64(month, "M")
    first = m.astype("datetime64[D]")
    last = (m + np.timedelta64(1, "M")).astype("datetime64[D]") - np.timedelta64(1, "D")
    year = int(m.astype("datetime64[Y]").astype(np.int64)) + 1970

    def doy(d: np.datetime64) -> int:
        return int((d - d.astype("datetime64[Y]")).astype(np.int64)) + 1

    return doy(first), doy(last), year


def vnp64_file_name(month: Any, h: int, v: int, production: str = "2024001000000",
                    collection: str = "002") -> str:
    """``VNP64A1.AYYYYDDD.hHHvVV.CCC.<production>.hdf`` for the month starting ``month``."""
    d_first, _, year = _month_days(month)
    return f"VNP64A1.A{year:04d}{d_first:03d}.h{h:02d}v{v:02d}.{collection}.{production}.hdf"


def _core_metadata(name: str, h: int, v: int) -> str:
    """The small ECS ``CoreMetadata.0`` of VNP64A1 (tile numbers, granule id)."""
    def obj(key: str, value: str) -> str:
        return (f"      OBJECT                 = {key}\n        NUM_VAL              = 1\n"
                f"        VALUE                = {value}\n      END_OBJECT             = {key}\n")

    return ("\nGROUP                  = INVENTORYMETADATA\n  GROUPTYPE            = MASTERGROUP\n"
            "  GROUP                  = ADDITIONALATTRIBUTES\n"
            + obj("HORIZONTALTILENUMBER", f'"{h:02d}"') + obj("VERTICALTILENUMBER", f'"{v:02d}"')
            + "  END_GROUP              = ADDITIONALATTRIBUTES\n"
            + obj("LOCALGRANULEID", f'"{name}"')
            + "END_GROUP              = INVENTORYMETADATA\n\nEND\n")


def write_vnp64a1(
    path: str | os.PathLike[str],
    layers: Mapping[str, np.ndarray],
    tile: tuple[int, int],
    month: Any,
    *,
    ul: tuple[float, float] | None = None,
    lr: tuple[float, float] | None = None,
    attrs: Mapping[str, Any] | None = None,
    staging: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a VNP64A1 HDF4 tile holding ``layers`` (``"Burn Date"`` required) of tile ``(h, v)``.

    ``ul``/``lr`` default to the tile's corners (any grid size: the cell size follows).
    ``attrs`` adds or replaces integer/string global attributes. The file is written in a
    staging folder and moved into place when complete.
    """
    if "Burn Date" not in layers:
        raise InputError("layers must hold 'Burn Date'", field="layers")
    p = Path(path)
    h, v = tile
    left, bottom, right, top = tile_bounds(h, v)
    ul = ul or (left, top)
    lr = lr or (right, bottom)
    burn = np.asarray(layers["Burn Date"], np.int16)
    try:
        datasets = tile_datasets(layers, GRID_NAME)
    except ValueError as exc:
        raise InputError(str(exc), field="layers") from exc
    d_first, d_last, year = _month_days(month)
    burned = int(np.count_nonzero(burn > 0))
    missing = int(np.count_nonzero(burn == -1))
    land = int(np.count_nonzero(burn != -2))
    fields = [(name, {"Burn Date": "DFNT_INT16", "First Day": "DFNT_INT16",
                      "Last Day": "DFNT_INT16"}.get(name, "DFNT_UINT8")) for name, *_ in datasets]
    gattrs: dict[str, tuple[str, Any]] = {
        "HDFEOSVersion": ("CHAR8", "HDFEOS_V2.19"),
        "StructMetadata.0": ("CHAR8", struct_metadata(GRID_NAME, ul, lr, burn.shape, fields)),
        "CoreMetadata.0": ("CHAR8", _core_metadata(p.name, h, v)),
        "BurnedCells": ("INT32", burned),
        "MissingCells": ("INT32", missing),
        "LandCells": ("INT32", land),
        "ValidLandCells": ("INT32", land - missing),
        "ProductStartDay": ("INT16", d_first),
        "ProductEndDay": ("INT16", d_last),
        "year": ("INT16", year),
        "tile": ("CHAR8", f"h{h:02d}v{v:02d}"),
        "CodeVersion": ("CHAR8", "1.0.4"),
        "VNP64A0_input_file": ("CHAR8", f"VNP64A0.A{year:04d}{d_first:03d}.h{h:02d}v{v:02d}.002.hdf"),
        "LC_input_file": ("CHAR8", f"MCD12Q1.A{year - 1:04d}001.h{h:02d}v{v:02d}.061.hdf"),
        "ShortName": ("CHAR8", "VNP64A1"),
        "LongName": ("CHAR8", _LONG_NAME),
    }
    for k, val in (attrs or {}).items():
        gattrs[k] = ("CHAR8", val) if isinstance(val, str) else ("INT32", int(val))
    stage = Path(staging) if staging is not None else p.parent / ".staging"
    p.parent.mkdir(parents=True, exist_ok=True)
    out = write_hdf4(p, [(k, t, val) for k, (t, val) in gattrs.items()], datasets, stage)
    if staging is None:
        try:
            stage.rmdir()
        except OSError:
            pass
    return out


def write_vnp64_month(out_dir: str | os.PathLike[str], truth: Any, mapping: Any, month: Any) -> Path:
    """The VNP64A1 file of one tile and month from a synthetic burn truth (cf. ``write_mcd64_month``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = month_arrays(truth, mapping, month)
    arrays.pop("_days")
    return write_vnp64a1(out / vnp64_file_name(month, mapping.h, mapping.v), arrays,
                         (mapping.h, mapping.v), month)
