"""Gridded granules onto any region: aligned sub-window, partial cover, resampled grids."""

from __future__ import annotations

import json

import numpy as np
import pytest

from firesmoke.cube.build import build_cube
from firesmoke.errors import GridMismatchError
from firesmoke.grid import Region
from firesmoke.io.viirs import readers as readers_mod
from firesmoke.io.viirs.placement import grid_placement
from firesmoke.synthetic.orbit import overpass_schedule
from firesmoke.synthetic.viirs_gridded import write_viirs_granule

DAY = "2020-07-10"
#: the granule's own grid (the LAADS order): 40 x 48 px at 0.01 deg
GRANULE = Region.from_shape("ORDER", -7.0, 41.0, 0.01, 40, 48)
BANDS = ("red", "nir", "mir", "solar_zenith", "sensor_zenith")


def _fields(region: Region) -> dict[str, np.ndarray]:
    """Physical values linear in lon/lat (bilinear resampling reproduces them), with a
    corner of fill (a swath edge)."""
    lon = np.broadcast_to(region.x[None, :], region.shape)
    lat = np.broadcast_to(region.y[:, None], region.shape)
    u = (lon - lon.min()) / 0.5
    v = (lat - lat.min()) / 0.5
    f = {
        "M05": 0.05 + 0.2 * u + 0.1 * v,
        "M07": 0.2 + 0.1 * u + 0.2 * v,
        "M10": 0.15 + 0.05 * u,
        "M12": 0.4 + 0.2 * v,
        "M15": 8.0 + 0.5 * u,
        "solar_zenith": 30.0 + 5.0 * u + 2.0 * v,
        "sensor_zenith": 10.0 + 20.0 * u,
    }
    edge = (u + v) > 1.7  # beyond the swath edge: fill in every layer
    return {k: np.where(edge, np.nan, a).astype(np.float64) for k, a in f.items()}


@pytest.fixture(scope="module")
def granule_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("gridded")
    ov = overpass_schedule(GRANULE, DAY)[0]
    ms = int(np.datetime64(f"{DAY}T12:00", "ms").astype(np.int64))
    write_viirs_granule(out, GRANULE, _fields(GRANULE), ov, ms, order="000500000007", seed=3)
    return out


def _cube(region, folder, **kw):
    return build_cube(region, DAY, DAY, viirs=folder, angles=True, **kw).compute()


@pytest.fixture(scope="module")
def full(granule_dir):
    cube = _cube(GRANULE, granule_dir)
    assert cube.attrs["n_granules"] == 1
    assert np.isfinite(cube["red"].values).sum() > 100
    return cube


def test_aligned_subwindow_reads_only_its_window(granule_dir, full, monkeypatch):
    seen = []
    real = readers_mod._read_sds_window

    def spy(path, sds_name, window):
        seen.append(window)
        return real(path, sds_name, window)

    monkeypatch.setattr(readers_mod, "_read_sds_window", spy)
    sub = GRANULE.subset("SUB", 8, 32, 10, 42)
    cube = _cube(sub, granule_dir, chunks={"y": 16, "x": 16})
    assert cube.attrs["n_granules"] == 1
    for name in BANDS:
        np.testing.assert_array_equal(cube[name].values, full[name].values[:, 8:32, 10:42], name)
    # only windows of the sub-grid were read from the files, never the whole granule
    assert seen
    for r0, c0, h, w in seen:
        assert 8 <= r0 and r0 + h <= 32 and 10 <= c0 and c0 + w <= 42, (r0, c0, h, w)


def test_partial_cover_fills_what_is_covered(granule_dir, full):
    # 30 x 30 px starting 20 rows down and 30 columns right: 20 x 18 px of it is covered
    part = Region.from_shape("PART", -7.0 + 0.30, 41.0 - 0.20, 0.01, 30, 30)
    cube = _cube(part, granule_dir, chunks={"y": 16, "x": 16})
    assert cube.attrs["n_granules"] == 1
    for name in BANDS:
        got = cube[name].values[0]
        np.testing.assert_array_equal(got[:20, :18], full[name].values[0, 20:40, 30:48], name)
        assert np.isnan(got[20:, :]).all() and np.isnan(got[:, 18:]).all(), name


def test_region_larger_than_granule_on_every_side(granule_dir, full):
    big = Region.from_shape("BIG", -7.0 - 0.05, 41.0 + 0.03, 0.01, 50, 60)
    cube = _cube(big, granule_dir, chunks={"y": 32, "x": 32})
    got = cube["nir"].values[0]
    np.testing.assert_array_equal(got[3:43, 5:53], full["nir"].values[0])
    outside = np.ones(got.shape, bool)
    outside[3:43, 5:53] = False
    assert np.isnan(got[outside]).all()


def test_misaligned_grid_is_resampled_bilinear(granule_dir, full):
    # half a pixel east and south of the granule lattice
    mis = Region.from_shape("MIS", -7.0 + 0.105, 41.0 - 0.105, 0.01, 20, 24)
    cube = _cube(mis, granule_dir, regrid="bilinear", chunks={"y": 8, "x": 16})
    assert cube.attrs["n_granules"] == 1
    for name in ("red", "nir", "sensor_zenith"):
        g = full[name].values[0, 10:31, 10:35]
        expected = 0.25 * (g[:-1, :-1] + g[:-1, 1:] + g[1:, :-1] + g[1:, 1:])  # linear field
        got = cube[name].values[0]
        both = np.isfinite(expected) & np.isfinite(got)
        assert both.sum() > 200
        np.testing.assert_allclose(got[both], expected[both], rtol=1e-5, atol=1e-6, err_msg=name)
        # fill stays fill: no value invented from no valid neighbour
        assert not np.isfinite(got[~np.isfinite(expected) & ~np.isfinite(
            np.fmax(np.fmax(g[:-1, :-1], g[:-1, 1:]), np.fmax(g[1:, :-1], g[1:, 1:])))]).any()
    # the same cube whatever the chunks (each block reads its own granule window)
    other = _cube(mis, granule_dir, regrid="bilinear", chunks={"y": 20, "x": 24})
    for name in BANDS:
        np.testing.assert_array_equal(other[name].values, cube[name].values)


def test_coarser_grid_is_resampled_nearest(granule_dir, full):
    coarse = Region.from_shape("COARSE", -7.0, 41.0, 0.02, 20, 24)
    cube = _cube(coarse, granule_dir, regrid="nearest", chunks={"y": 16, "x": 16})
    got = cube["sensor_zenith"].values[0]
    g = full["sensor_zenith"].values[0]
    # a 0.02 cell centre lies on a corner shared by 4 granule pixels (equal distance):
    # nearest takes one of them
    four = np.stack([g[0::2, 0::2], g[0::2, 1::2], g[1::2, 0::2], g[1::2, 1::2]])
    ok = np.isfinite(got)
    assert ok.sum() > 100
    assert np.all(np.any(four[:, ok] == got[ok], axis=0))


def test_granule_outside_the_region_is_skipped_naming_both_grids(granule_dir):
    away = Region.from_shape("AWAY", 10.0, 50.0, 0.01, 16, 16)
    cube = build_cube(away, DAY, DAY, viirs=granule_dir)
    assert cube.attrs["n_granules"] == 0
    (skip,) = json.loads(cube.attrs["skipped_inputs"])
    assert "does not cover any of region AWAY" in skip["reason"]
    assert "40x48" in skip["reason"] and "16x16" in skip["reason"]
    assert np.isnan(cube["red"].values).all()


def test_placement_rules():
    t = GRANULE.transform
    p = grid_placement(t, GRANULE.shape, GRANULE.transform, GRANULE.shape)
    assert p.kind == "aligned" and p.identical
    sub = GRANULE.subset("S", 3, 9, 4, 20)
    p = grid_placement(t, GRANULE.shape, sub.transform, sub.shape)
    assert (p.kind, p.row_off, p.col_off) == ("aligned", 3, 4)
    assert p.aligned_window((0, 0, 6, 16)) == ((3, 4, 6, 16), (slice(0, 6), slice(0, 16)))
    shifted = Region.from_shape("H", -7.0 + 0.003, 41.0, 0.01, 10, 10)
    assert grid_placement(t, GRANULE.shape, shifted.transform, shifted.shape).kind == "resample"
    with pytest.raises(GridMismatchError, match="north-up"):
        grid_placement((0.01, 0, -7, 0, 0.01, 41), (4, 4), t, GRANULE.shape)


def test_finer_region_than_granule_has_no_holes(tmp_path):
    """A granule of 0.05 deg pixels onto a 0.01 deg region: nearest reaches every region
    pixel (the search radius follows the granule's pixel size); bilinear interpolates."""
    coarse = Region.from_shape("COARSE_ORDER", -7.0, 41.0, 0.05, 8, 10)
    f = {k: np.where(np.isnan(v), 0.3, v) for k, v in _fields(coarse).items()}  # no fill
    ov = overpass_schedule(coarse, DAY)[0]
    ms = int(np.datetime64(f"{DAY}T12:00", "ms").astype(np.int64))
    write_viirs_granule(tmp_path, coarse, f, ov, ms, order="000500000008", seed=3)
    fine = Region.from_shape("FINE", -7.0 + 0.05, 41.0 - 0.05, 0.01, 30, 40)
    near = _cube(fine, tmp_path, regrid="nearest", chunks={"y": 16, "x": 16})
    assert np.isfinite(near["sensor_zenith"].values).all()
    g = _cube(coarse, tmp_path)["sensor_zenith"].values[0]
    # each fine pixel takes the coarse pixel containing it (centres never on a coarse edge)
    rows = 1 + np.arange(30) // 5
    cols = 1 + np.arange(40) // 5
    np.testing.assert_array_equal(near["sensor_zenith"].values[0], g[np.ix_(rows, cols)])
    bil = _cube(fine, tmp_path, regrid="bilinear", chunks={"y": 16, "x": 16})
    assert np.isfinite(bil["sensor_zenith"].values).all()
