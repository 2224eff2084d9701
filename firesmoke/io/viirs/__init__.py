"""VIIRS 750 m readers: gridded ``NPP_VMAES_L1`` granules and swath L1B granules.

- :func:`open_vmaes_granule` (:mod:`firesmoke.io.viirs.gridded`): LAADS ``NPP_VMAES_L1``,
  already on a lat/lon grid, one HDF4 file per layer -> Dataset ``(y, x)``.
- :func:`open_l1b_swath` (:mod:`firesmoke.io.viirs.swath`): ``VNP02MOD`` + ``VNP03MOD``
  (and NOAA-20/21 ``VJ102MOD``/``VJ202MOD``) netCDF4 -> Dataset ``(line, pixel)`` with
  2-D latitude/longitude.
- :func:`find_granules` (:mod:`firesmoke.io.viirs.discovery`): find and pair granule files.

Both are lazy (dask; opening reads metadata only), decode scale/offset/fill to float32
with NaN for missing data, and attach CF attributes. Their chunks are read by the granule
readers of :mod:`firesmoke.io.viirs.readers` (``VmaesReader``, ``SwathReader``, which the
cube uses directly): the one read path of VIIRS pixels, through the process's cache of open
files (:data:`firesmoke.io._core.handles.OPEN_FILES`).
"""

from __future__ import annotations

from firesmoke.io.viirs.bands import BANDS, DEFAULT_VMAES_LAYERS, VMAES_LAYER_TO_VARIABLE
from firesmoke.io.viirs.discovery import Granule, GranuleIndex, find_granules
from firesmoke.io.viirs.gridded import open_vmaes_granule, read_vmaes_metadata
from firesmoke.io.viirs.swath import DEFAULT_SWATH_BANDS, open_l1b_swath

__all__ = [
    "BANDS",
    "DEFAULT_SWATH_BANDS",
    "DEFAULT_VMAES_LAYERS",
    "VMAES_LAYER_TO_VARIABLE",
    "Granule",
    "GranuleIndex",
    "find_granules",
    "open_l1b_swath",
    "open_vmaes_granule",
    "read_vmaes_metadata",
]
