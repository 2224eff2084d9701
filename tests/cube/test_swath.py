"""Swath (L1B netCDF) scenario products go through discovery, regridding and compositing."""

from __future__ import annotations

import numpy as np

from firesmoke.cube.build import build_cube
from firesmoke.grid import Region
from firesmoke.synthetic import generate_scenario


def test_swath_cube_close_to_gridded(tmp_path):
    region = Region.from_shape("SW", -7.0, 41.0, 0.01, 64, 64)
    scn = generate_scenario(region, "2020-07-01", "2020-07-03", tmp_path, seed=2,
                            products=("viirs", "swath"))
    assert scn.files["swath"] and all(p.suffix == ".nc" for p in scn.files["swath"])
    sw = build_cube(region, "2020-07-01", "2020-07-03", viirs=tmp_path / "viirs_l1b").compute()
    gr = build_cube(region, "2020-07-01", "2020-07-03", viirs=tmp_path / "viirs750").compute()
    assert sw.attrs["n_granules"] >= 3
    for v in ("red", "nir", "mir"):
        a, b = sw[v].values, gr[v].values
        both = np.isfinite(a) & np.isfinite(b)
        assert both.sum() > 0.5 * np.isfinite(b).sum()
        # same underlying fields sampled on another geometry: close in the bulk
        assert np.median(np.abs(a[both] - b[both])) < 0.03
