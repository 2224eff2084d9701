"""Numba kernels: numpy in, numpy out, explicit dtypes; no xarray, no dask, no I/O.

* :mod:`~firesmoke.kernels.hotspots` - points -> per-day grids (GDAL-identical cells);
* :mod:`~firesmoke.kernels.regrid` - swath granules -> grid (bilinear, nearest, bucket);
* :mod:`~firesmoke.kernels.composite` - several overpasses -> one daily image;
* :mod:`~firesmoke.kernels.mir` - MIR reflectance from VIIRS M12/M15 radiances.

Every kernel is compiled with ``numba.njit(cache=True)`` (nopython) and, where it pays,
``parallel=True``; results never depend on the number of threads. Dask-aware wrappers are in
:mod:`firesmoke.cube.ops`.
"""

from firesmoke.kernels.composite import (
    composite_by_order,
    composite_min_zenith,
    mean_zenith,
    reference_order,
)
from firesmoke.kernels.hotspots import (
    STATS,
    PointGrids,
    gdal_inverse_geotransform,
    point_cells,
    rasterize_points,
)
from firesmoke.kernels.mir import mir_reflectance
from firesmoke.kernels.regrid import METHODS, regrid_swath

__all__ = [
    "METHODS",
    "STATS",
    "PointGrids",
    "composite_by_order",
    "composite_min_zenith",
    "gdal_inverse_geotransform",
    "mean_zenith",
    "mir_reflectance",
    "point_cells",
    "rasterize_points",
    "reference_order",
    "regrid_swath",
]
