"""Synthetic fire scenarios in the real satellite file formats.

No satellite archive is needed to try, test or demo firesmoke: :func:`generate_scenario`
simulates burn scars (land cover, wind-driven fire spread) over a region and a period
and writes what S-NPP VIIRS and MODIS would have delivered: gridded VIIRS 750 m
granules (LAADS ``NPP_VMAES_L1`` HDF4 layout), FIRMS VIIRS 375 m active-fire CSVs and
MCD64A1 monthly burned-area tiles, plus a ``scenario.json`` manifest. The same seed
gives the same bytes.

Modules: :mod:`~firesmoke.synthetic.fire` (burn truth), :mod:`~firesmoke.synthetic.orbit`
(sun and S-NPP geometry), :mod:`~firesmoke.synthetic.surface` (radiometric model,
:func:`simulate_overpass`), writers :mod:`~firesmoke.synthetic.viirs_gridded`,
:mod:`~firesmoke.synthetic.firms`, :mod:`~firesmoke.synthetic.mcd64`, and
:mod:`~firesmoke.synthetic.scenario` (orchestration).
"""

from firesmoke.synthetic.fire import BurnTruth, simulate_burn_truth
from firesmoke.synthetic.orbit import Overpass, overpass_schedule
from firesmoke.synthetic.scenario import (
    PRODUCTS,
    Scenario,
    check_scenario_size,
    demo_region,
    generate_scenario,
    simulate_truth,
    truth_dataset,
)
from firesmoke.synthetic.surface import mir_reflectance, simulate_overpass

__all__ = [
    "PRODUCTS",
    "BurnTruth",
    "Overpass",
    "Scenario",
    "check_scenario_size",
    "demo_region",
    "generate_scenario",
    "mir_reflectance",
    "overpass_schedule",
    "simulate_burn_truth",
    "simulate_overpass",
    "simulate_truth",
    "truth_dataset",
]
