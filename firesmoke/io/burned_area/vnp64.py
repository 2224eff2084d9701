"""VIIRS VNP64A1 burned area: monthly HDF4 (HDF-EOS2) sinusoidal tiles, read like MCD64A1.

VNP64A1 (S-NPP; VJ164A1 for NOAA-20) is the VIIRS successor of MODIS MCD64A1: the same
algorithm, the same 500 m sinusoidal tiles (2400 x 2400 cells of ~463 m, ``hHHvVV``) and,
as NASA distributes it (collection 001 and 002), the same file layout: HDF-EOS2 / HDF4
"nearly identical in format to the MODIS Collection 6 MCD64A1" (LAADS file specification
of VNP64A1)::

    VNP64A1.AYYYYDDD.hHHvVV.002.YYYYDDDHHMMSS.hdf
      SDS  Burn Date              int16   1-366 day of burn, 0 unburned, -1 unmapped, -2 water
           Burn Date Uncertainty  uint8   days
           QA                     uint8   bit field
           First Day, Last Day    int16   window of reliable change detection
      global attributes  StructMetadata.0 (grid MOD_Grid_Monthly_500m_BA, GCTP_SNSOID),
           CoreMetadata.0, BurnedCells, MissingCells, LandCells, ValidLandCells,
           ProductStartDay, ProductEndDay, year, tile, CodeVersion, ShortName, ...

One code path reads both products: :func:`firesmoke.io.burned_area.mcd64.open_burned_area_tile`
(parametrised by the product named in the file name or ``ShortName``). Every consumer of
MCD64A1 -- in particular the daily burned fraction of
:mod:`firesmoke.io.burned_area.fraction`, the BA-Net training target -- takes VNP64A1
tiles as they are. No HDF5 VNP64A1 is distributed; an ``.h5`` file is refused with a
:class:`~firesmoke.errors.WrongProductError` saying so.
"""

from __future__ import annotations

import os
from typing import Any

import xarray as xr

from firesmoke.io.burned_area.codes import parse_vnp64_name
from firesmoke.io.burned_area.mcd64 import open_burned_area_tile

__all__ = ["GRID_NAME", "open_vnp64a1", "parse_vnp64_name"]

#: HDF-EOS2 grid name of the VNP64A1 tiles (LAADS file specification).
GRID_NAME = "MOD_Grid_Monthly_500m_BA"


def open_vnp64a1(path: str | os.PathLike[str], chunks: Any = None) -> xr.Dataset:
    """Open a VNP64A1 HDF4 tile lazily, as :func:`~firesmoke.io.burned_area.mcd64.open_mcd64a1`.

    Returns the variables ``burn_date``, ``burn_date_uncertainty``, ``qa``, ``first_day``,
    ``last_day`` (those present) with the raw codes and CF attributes of MCD64A1, sinusoidal
    ``x``/``y`` cell centres, the CRS attached, scalar ``time`` = first day of the month,
    ``attrs["product"] == "VNP64A1"``.
    """
    return open_burned_area_tile(path, chunks=chunks)
