"""Swath L1B reader (VNP02MOD + VNP03MOD netCDF4) and the synthetic swath writer."""

from __future__ import annotations

import hashlib
from datetime import datetime

import dask.array
import netCDF4
import numpy as np
import pytest

from firesmoke.errors import GridMismatchError, InputError, MissingLayerError, WrongProductError
from firesmoke.grid import Region
from firesmoke.io._core.handles import close_cached_files
from firesmoke.io.viirs import open_l1b_swath
from firesmoke.io.viirs.discovery import find_granules
from firesmoke.synthetic.swath import (
    QUALITY_FLAGS,
    STORAGE,
    bowtie_deleted,
    swath_geometry,
    write_l1b_pair,
)
from firesmoke.synthetic.swath_scenario import generate_swath_granules, sample_grid_fields

R = 6371.0
START = datetime(2020, 8, 1, 13, 42)
BANDS = ("M05", "M07", "M10", "M12", "M15")


def gc_km(lat1, lon1, lat2, lon2):
    la1, lo1, la2, lo2 = map(np.radians, (lat1, lon1, lat2, lon2))
    h = np.sin((la2 - la1) / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2
    return 2 * R * np.arcsin(np.sqrt(h))


def along_track_km(lat, lon, lat0, lon0, heading):
    """Along-track distance of points from (lat0, lon0) on a great-circle track with ``heading``."""
    la, lo, la0, lo0 = map(np.radians, (lat, lon, lat0, lon0))
    p = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], -1)
    c = np.array([np.cos(la0) * np.cos(lo0), np.cos(la0) * np.sin(lo0), np.sin(la0)])
    north = np.array([0.0, 0.0, 1.0]) - c[2] * c
    north /= np.linalg.norm(north)
    east = np.cross(north, c)
    t = np.cos(np.radians(heading)) * north + np.sin(np.radians(heading)) * east
    return R * np.arctan2(p @ t, p @ c)  # angle in the plane of the track


def fields_for(shape, seed=0):
    rng = np.random.default_rng(seed)
    bands = {
        "M05": rng.uniform(0.0, 0.6, shape),
        "M07": rng.uniform(0.0, 0.8, shape),
        "M10": rng.uniform(0.0, 0.5, shape),
        "M12": rng.uniform(0.05, 3.0, shape),
        "M15": rng.uniform(2.0, 12.0, shape),
    }
    sza = rng.uniform(10.0, 70.0, shape)
    return bands, sza


@pytest.fixture(scope="module")
def granule(tmp_path_factory):
    out = tmp_path_factory.mktemp("l1b")
    lat, lon, vza = swath_geometry(38.0, -8.0, -12.0, n_scans=4)
    bands, sza = fields_for(lat.shape)
    bands["M05"][0, :7] = np.nan
    bands["M07"][1, 0] = 2.0  # above the storable range -> saturated
    bands["M10"][2, 0] = -0.1  # negative -> out of range
    quality = {"M12": np.zeros(lat.shape, np.uint16)}
    quality["M12"][5, 100:110] = QUALITY_FLAGS["Cal_Fail"]
    p02, p03 = write_l1b_pair(
        out, START, lat, lon, bands, sza, vza, orbit_number=45678, quality=quality
    )
    return {"p02": p02, "p03": p03, "lat": lat, "lon": lon, "vza": vza, "bands": bands, "sza": sza}


def test_geometry_pixel_sizes_and_bowtie():
    lat, lon, vza = swath_geometry(0.0, 20.0, 0.0, n_scans=3)
    assert lat.shape == (48, 3200)
    mid = 8
    assert gc_km(lat[mid, 1599], lon[mid, 1599], lat[mid, 1600], lon[mid, 1600]) == pytest.approx(
        0.75, abs=0.01
    )
    assert gc_km(lat[7, 1600], lon[7, 1600], lat[8, 1600], lon[8, 1600]) == pytest.approx(
        0.75, abs=0.01
    )
    edge_cross = gc_km(lat[mid, 0], lon[mid, 0], lat[mid, 1], lon[mid, 1])
    edge_along = gc_km(lat[7, 0], lon[7, 0], lat[8, 0], lon[8, 0])
    assert 1.3 < edge_cross < 2.0 and 1.3 < edge_along < 2.0  # pixels grow toward the edges
    assert 2900 < gc_km(lat[mid, 0], lon[mid, 0], lat[mid, -1], lon[mid, -1]) < 3100
    assert vza[:, 1600].max() < 1.0 and 65 < vza[:, 0].min() < 72
    # along-track position of the last row of scan 0 and first row of scan 1
    a = along_track_km(lat, lon, 0.0, 20.0, 0.0)
    gap_nadir = a[16, 1600] - a[15, 1600]
    gap_edge = a[16, 0] - a[15, 0]
    assert gap_nadir == pytest.approx(0.75, abs=0.02)  # scans abut at nadir
    # ... and overlap at the edge: the next scan starts behind where the last one ended
    assert gap_edge < 0
    overlap_rows = np.sum(a[16:32, 0] < a[15, 0])
    assert overlap_rows >= 5  # several rows of scan 1 lie on ground already seen by scan 0
    # within a scan, rows are ordered along track everywhere
    assert np.all(np.diff(a[:16], axis=0) > 0)
    mask = bowtie_deleted(48)
    assert not mask[:, 1600].any() and mask[0, 0] and mask[3, 0] and not mask[4, 0] and mask[15, 0]


def test_round_trip_within_quantisation(granule):
    ds = open_l1b_swath(granule["p02"], granule["p03"])
    assert ds.sizes == {"line": 64, "pixel": 3200}
    assert all(isinstance(ds[v].data, dask.array.Array) for v in ds.data_vars)
    assert isinstance(ds.latitude.data, dask.array.Array)
    v = ds.compute()
    for b in BANDS:
        expect = granule["bands"][b].copy()
        scale = STORAGE[b][0]
        got = v[b].values
        assert got.dtype == np.float32
        ok = np.isfinite(expect) & (expect >= 0) & (expect <= 65527 * scale)
        err = np.abs(got[ok] - expect[ok])
        assert err.max() <= scale / 2 + 1e-6 * np.abs(expect[ok]).max()
    assert np.isnan(v.M05.values[0, :7]).all() and np.isfinite(v.M05.values[0, 7:]).all()
    assert v.M07.values[1, 0] == pytest.approx(65527 * STORAGE["M07"][0], rel=1e-6)
    assert v.M10.values[2, 0] == 0.0
    assert v.M07_quality_flags.values[1, 0] & QUALITY_FLAGS["Saturation"]
    assert v.M10_quality_flags.values[2, 0] & QUALITY_FLAGS["Out_of_Range"]
    np.testing.assert_array_equal(v.latitude.values, granule["lat"].astype(np.float32))
    np.testing.assert_array_equal(v.longitude.values, granule["lon"].astype(np.float32))
    assert np.abs(v.solar_zenith.values - granule["sza"]).max() <= 0.005 + 1e-4
    assert np.abs(v.sensor_zenith.values - granule["vza"]).max() <= 0.005 + 1e-4
    a = ds.attrs
    assert a["rows_per_scan"] == 16 and a["platform"] == "S-NPP" and a["orbit_number"] == 45678
    assert a["start_time"] == "2020-08-01T13:42:00Z" and a["granule_id"] == "A2020214.1342"
    assert a["DayNightFlag"] == "D" and a["product"] == "VNP02MOD"
    assert ds["time"].values == np.datetime64(START)
    np.testing.assert_array_equal(ds.scan.values, np.repeat(np.arange(4), 16))
    assert ds.M12.attrs["units"] == "W m-2 sr-1 um-1" and ds.M05.attrs["units"] == "1"
    assert ds.latitude.attrs["standard_name"] == "latitude"


def test_reader_matches_independent_decoding(granule):
    ds = open_l1b_swath(
        granule["p02"], granule["p03"], chunks={"line": 32, "pixel": 1600}
    ).compute()
    with netCDF4.Dataset(granule["p02"]) as nc:
        for b in BANDS:
            var = nc["observation_data"][b]
            var.set_auto_maskandscale(False)
            raw = var[:].astype(np.float64)
            ref = raw * float(var.getncattr("scale_factor")) + float(var.getncattr("add_offset"))
            bad = (raw > var.getncattr("valid_max")) | (raw == var.getncattr("_FillValue"))
            ref[bad] = np.nan
            np.testing.assert_array_equal(ds[b].values, ref.astype(np.float32))
    with netCDF4.Dataset(granule["p03"]) as nc:
        var = nc["geolocation_data"]["sensor_zenith"]
        var.set_auto_maskandscale(False)
        raw = var[:]
        scale = float(var.getncattr("scale_factor"))  # float32 0.01 as stored
        ref = np.where(raw == -32767, np.nan, raw * scale).astype(np.float32)
        np.testing.assert_array_equal(ds.sensor_zenith.values, ref)


def test_options_normalize_and_quality_mask(granule, tmp_path):
    ds = open_l1b_swath(granule["p02"], granule["p03"], normalize_reflectance=True, bands=["M05"])
    stored = open_l1b_swath(granule["p02"], granule["p03"], bands=["M05"])
    expect = stored.M05.values / np.cos(np.deg2rad(stored.solar_zenith.values))
    np.testing.assert_allclose(ds.M05.values, expect, rtol=1e-6)
    assert ds.M05.attrs["standard_name"] == "toa_bidirectional_reflectance"
    plain = open_l1b_swath(granule["p02"], granule["p03"], bands=["M12"]).M12.values
    masked = open_l1b_swath(
        granule["p02"], granule["p03"], bands=["M12"], mask_quality=True
    ).M12.values
    assert np.isfinite(plain[5, 100:110]).all() and np.isnan(masked[5, 100:110]).all()
    assert np.isfinite(masked[5, 110:]).all()
    lean = open_l1b_swath(granule["p02"], granule["p03"], quality_flags=False)
    assert not any(name.endswith("quality_flags") for name in lean.data_vars)
    # bow-tie deleted pixels are stored as the flag value 65533 and read as NaN
    lat, lon, vza = swath_geometry(10, 10, 0, n_scans=2, pixels=800)
    bands, sza = fields_for(lat.shape, seed=3)
    p02, p03 = write_l1b_pair(tmp_path, START, lat, lon, bands, sza, vza, bowtie_deletion=True)
    got = open_l1b_swath(p02, p03).compute()
    deleted = bowtie_deleted(32, 800)
    assert deleted.any()
    assert np.isnan(got.M05.values[deleted]).all() and np.isfinite(got.M05.values[~deleted]).all()
    assert (got.M05_quality_flags.values[deleted] & QUALITY_FLAGS["Bowtie_Deleted"]).all()


def test_radiance_attribute_layouts(granule, tmp_path):
    import shutil

    p02 = tmp_path / granule["p02"].name
    shutil.copy(granule["p02"], p02)
    with netCDF4.Dataset(p02, "a") as nc:
        var = nc["observation_data"]["M12"]
        var.setncattr("radiance_scale_factor", np.float32(2.0e-4))
        var.setncattr("radiance_add_offset", np.float32(0.5))
    with netCDF4.Dataset(p02) as nc:
        var = nc["observation_data"]["M12"]
        var.set_auto_maskandscale(False)
        raw = var[:].astype(np.float64)
    got = open_l1b_swath(p02, granule["p03"], bands=["M12"]).M12.values
    np.testing.assert_allclose(
        got, (raw * np.float32(2.0e-4) + np.float32(0.5)).astype(np.float32), rtol=1e-6
    )
    close_cached_files(p02)  # the reader keeps files open; HDF5 refuses to append then
    with netCDF4.Dataset(p02, "a") as nc:
        var = nc["observation_data"]["M15"]
        var.setncattr("units", "K")
    with pytest.raises(WrongProductError, match="brightness temperature"):
        open_l1b_swath(p02, granule["p03"])


def test_pairing_and_structure_errors(granule, tmp_path):
    lat, lon, vza = swath_geometry(38.0, -8.0, -12.0, n_scans=2, pixels=400)
    bands, sza = fields_for(lat.shape)
    other02, other03 = write_l1b_pair(
        tmp_path / "b", datetime(2020, 8, 1, 13, 48), lat, lon, bands, sza, vza
    )
    with pytest.raises(GridMismatchError, match="different granules"):
        open_l1b_swath(granule["p02"], other03)
    renamed = tmp_path / "obs.nc"
    renamed.write_bytes(other02.read_bytes())
    # no names to compare: time_coverage_start (or the shapes) differ
    with pytest.raises(GridMismatchError):
        open_l1b_swath(renamed, granule["p03"])
    with pytest.raises(WrongProductError):
        open_l1b_swath(granule["p03"], granule["p02"])
    with pytest.raises(MissingLayerError, match="M11"):
        open_l1b_swath(granule["p02"], granule["p03"], bands=["M05", "M11"])
    with pytest.raises(InputError):
        open_l1b_swath(granule["p02"], granule["p03"], bands=["M99"])
    nogeo = tmp_path / "VNP03MOD.A2020214.1342.002.2020214192200.nc"
    with netCDF4.Dataset(nogeo, "w") as nc:
        nc.createGroup("navigation_data")
    with pytest.raises(MissingLayerError, match="geolocation_data"):
        open_l1b_swath(granule["p02"], nogeo)


def test_rewrite_after_read_in_same_process(tmp_path):
    lat, lon, vza = swath_geometry(5.0, 5.0, 0.0, n_scans=1, pixels=300)
    bands, sza = fields_for(lat.shape, seed=5)
    p02, p03 = write_l1b_pair(tmp_path, START, lat, lon, bands, sza, vza)
    first = open_l1b_swath(p02, p03).M05.values
    bands["M05"] = bands["M05"] + 0.1
    write_l1b_pair(tmp_path, START, lat, lon, bands, sza, vza)  # same names: overwritten
    np.testing.assert_allclose(open_l1b_swath(p02, p03).M05.values, first + 0.1, atol=3e-5)


def test_deterministic_bytes_and_noaa_names(tmp_path):
    lat, lon, vza = swath_geometry(-20.0, 30.0, 190.0, n_scans=2, pixels=500)
    bands, sza = fields_for(lat.shape, seed=7)
    paths = [
        write_l1b_pair(
            tmp_path / d, START, lat, lon, bands, sza, vza, platform="NOAA-20", ascending=False
        )
        for d in ("one", "two")
    ]
    for a, b in zip(*paths, strict=True):
        assert a.name == b.name
        assert (
            hashlib.sha256(a.read_bytes()).hexdigest() == hashlib.sha256(b.read_bytes()).hexdigest()
        )
    p02, p03 = paths[0]
    assert p02.name == "VJ102MOD.A2020214.1342.002.2020214194200.nc"
    assert p03.name.startswith("VJ103MOD.A2020214.1342.002.")
    ds = open_l1b_swath(p02, p03)
    assert ds.attrs["platform"] == "NOAA-20" and ds.attrs["startDirection"] == "Descending"
    idx = find_granules(tmp_path / "one")
    assert len(idx) == 1 and idx[0].platform == "NOAA-20" and idx.skipped == []


def test_antimeridian_granule(tmp_path):
    lat, lon, vza = swath_geometry(62.0, 179.6, -15.0, n_scans=3, pixels=1600)
    assert lon.min() >= -180 and lon.max() <= 180
    assert (lon > 170).any() and (lon < -170).any()  # crosses the antimeridian
    # neighbours stay neighbours on the ground: the wrap is only a representation
    step = gc_km(lat[:, :-1], lon[:, :-1], lat[:, 1:], lon[:, 1:])
    assert step.max() < 5.0
    bands, sza = fields_for(lat.shape, seed=11)
    p02, p03 = write_l1b_pair(tmp_path, START, lat, lon, bands, sza, vza)
    ds = open_l1b_swath(p02, p03).compute()
    np.testing.assert_array_equal(ds.longitude.values, lon.astype(np.float32))
    assert float(ds.longitude.min()) >= -180 and float(ds.longitude.max()) <= 180
    # fields of a region straddling the antimeridian are sampled on both sides
    region = Region("DATELINE", (170.0, 55.0, 190.0, 70.0), 0.05)
    yy, xx = np.meshgrid(region.y, region.x, indexing="ij")
    field = (0.01 * xx + 0.02 * yy).astype(np.float64)
    got = sample_grid_fields(region, {"f": field}, lat, lon)["f"]
    lon360 = np.where(lon < 0, lon + 360, lon)
    inside = (lat > 55.03) & (lat < 69.97) & (lon360 > 170.03) & (lon360 < 189.97)
    assert inside.sum() > 1000 and (inside & (lon < 0)).sum() > 100
    np.testing.assert_allclose(got[inside], 0.01 * lon360[inside] + 0.02 * lat[inside], atol=1e-4)


def test_sample_grid_fields_bilinear_nearest_and_outside():
    region = Region("T", (0.0, 40.0, 2.0, 41.0), 0.01)
    yy, xx = np.meshgrid(region.y, region.x, indexing="ij")
    field = 3.0 * xx - 2.0 * yy
    lat = np.array([[40.5, 40.123, 40.0051, 39.5], [40.99, 40.2, 40.7, 41.5]])
    lon = np.array([[1.0, 0.4567, 1.9949, 1.0], [0.003, -0.5, 1.2345, 1.0]])
    got = sample_grid_fields(region, {"f": field}, lat, lon)["f"]
    expect = 3.0 * lon - 2.0 * lat
    inside = np.array([[True, True, True, False], [True, False, True, False]])
    np.testing.assert_allclose(got[inside][[0, 1, 2, 4]], expect[inside][[0, 1, 2, 4]], atol=1e-4)
    assert np.isnan(got[~inside]).all()
    near = sample_grid_fields(region, {"f": field}, lat, lon, method="nearest")["f"]
    row, col = region.rowcol(lat[0, 1], lon[0, 1])
    assert near[0, 1] == pytest.approx(field[row, col], abs=1e-5)
    holey = field.copy()
    holey[50, 100] = np.nan
    g2 = sample_grid_fields(region, {"f": holey}, np.array([40.495]), np.array([1.005]))["f"]
    assert np.isfinite(g2).all()  # NaN neighbours are left out, not propagated
    with pytest.raises(InputError):
        sample_grid_fields(region, {"f": field[:10]}, lat, lon)


def test_generate_swath_granules(tmp_path):
    region = Region("SMALL", (-9.0, 38.0, -7.0, 39.5), 0.01)
    yy, xx = np.meshgrid(region.y, region.x, indexing="ij")
    h, w = region.shape
    fields = {
        "M05": 0.05 + 0.01 * (xx + 9.0),
        "M07": np.full((h, w), 0.3),
        "M10": np.full((h, w), 0.2),
        "M12": 0.4 + 0.1 * (yy - 38.0),
        "M15": np.full((h, w), 9.0),
        "solar_zenith": np.full((h, w), 35.0),
        "sensor_zenith": np.zeros((h, w)),
    }
    pairs = generate_swath_granules(
        region,
        [(datetime(2021, 7, 1, 13, 30), fields)],
        tmp_path,
        seed=1,
        pixels=1600,
        max_offset_km=300,
    )
    assert len(pairs) == 1
    ds = open_l1b_swath(*pairs[0]).compute()
    lat, lon = ds.latitude.values, ds.longitude.values
    inside = (lat > 38.01) & (lat < 39.49) & (lon > -8.99) & (lon < -7.01)
    assert inside.sum() > 10000
    np.testing.assert_allclose(ds.M05.values[inside], 0.05 + 0.01 * (lon[inside] + 9.0), atol=2e-5)
    np.testing.assert_allclose(ds.M12.values[inside], 0.4 + 0.1 * (lat[inside] - 38.0), atol=1e-4)
    assert np.isnan(ds.M05.values[~inside & ((lat < 37.9) | (lon > -6.9))]).all()
    assert float(ds.sensor_zenith.max()) > 60  # the swath's own geometry, not the field's zeros
