"""VNP64A1 (VIIRS burned area) as NASA distributes it -- HDF4 sinusoidal tiles like MCD64A1:
names, reader, fill codes, georeferencing, daily fraction (the BA-Net target)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from test_mcd64 import NS, SEAM_LON, TILE, cell_lonlat, synthetic_burns, write_tile

from firesmoke.cube.build import burned_fraction_cube
from firesmoke.errors import CorruptFileError, WrongProductError
from firesmoke.grid import Region
from firesmoke.io.burned_area.fraction import daily_burned_fraction, plan_burned_fraction
from firesmoke.io.burned_area.mcd64 import open_burned_area_tile, open_mcd64, parse_mcd64_name
from firesmoke.io.burned_area.sinusoidal import sinusoidal_crs, tile_bounds
from firesmoke.io.burned_area.vnp64 import GRID_NAME, open_vnp64a1
from firesmoke.synthetic.vnp64 import vnp64_file_name, write_vnp64a1

REGION = Region("SEAM", (SEAM_LON - 1.0, 44.3, SEAM_LON + 1.0, 45.7), 0.02)


def _burns(month_doy: int) -> np.ndarray:
    """Burn dates over tiles h08v04 + h09v04 (NS x 2NS cells), as in the MCD64A1 tests."""
    l8, _, _, t8 = tile_bounds(8, 4)
    lon, lat = cell_lonlat((l8, t8), TILE / NS, NS, 2 * NS)
    return synthetic_burns(lon, lat, month_doy + 2)


def _write_both(folder: Path, month_doy: int = 213, **kw) -> tuple[list[Path], list[Path]]:
    """The same burn dates as MCD64A1 and VNP64A1 (both HDF4) tiles h08v04 and h09v04."""
    bd = _burns(month_doy)
    (folder / "modis").mkdir(parents=True, exist_ok=True)
    (folder / "viirs").mkdir(parents=True, exist_ok=True)
    mod, vii = [], []
    for h, part in ((8, bd[:, :NS]), (9, bd[:, NS:])):
        left, bottom, right, top = tile_bounds(h, 4)
        mod.append(write_tile(folder / "modis" / f"MCD64A1.A2001{month_doy:03d}.h{h:02d}v04.061.2021000000000.hdf",
                              part, (left, top), (right, bottom)))
        layers = {"Burn Date": part, "QA": np.where(part == -2, 0, 3)}
        vii.append(write_vnp64a1(folder / "viirs" / vnp64_file_name("2001-08", h, 4), layers, (h, 4), "2001-08", **kw))
    return mod, vii


def test_name_parser_recognises_vnp64a1():
    src = parse_mcd64_name("VNP64A1.A2021213.h19v05.002.2021302184000.hdf")
    assert (src.kind, src.product, src.tile, src.collection) == ("hdf", "VNP64A1", (19, 5), "002")
    assert str(src.month_start) == "2021-08-01" and str(src.month_end) == "2021-08-31"
    mod = parse_mcd64_name("MCD64A1.A2001213.h08v04.006.2017012140005.hdf")
    assert (mod.kind, mod.product) == ("hdf", "MCD64A1")
    assert parse_mcd64_name("VJ164A1.A2021213.h19v05.002.2021302184000.hdf").product == "VJ164A1"
    assert parse_mcd64_name("VNP64A1.A2020245.h08v05.002.hdfx") is None
    assert parse_mcd64_name("VNP64A1.A2020245.h08v05.002.2021061152613.h5") is None
    assert parse_mcd64_name("VNP14IMG.A2020245.1200.002.nc") is None
    assert vnp64_file_name("2021-08", 19, 5, "2021302184000") == "VNP64A1.A2021213.h19v05.002.2021302184000.hdf"


def test_writer_has_the_hdf4_layout_of_the_product(tmp_path):
    from firesmoke.io._core import hdf4

    _, (p, _) = _write_both(tmp_path)
    assert p.name.endswith(".hdf") and p.read_bytes()[:4] == b"\x0e\x03\x13\x01"  # HDF4 magic
    attrs = hdf4.read_attributes(p)
    for key in ("StructMetadata.0", "CoreMetadata.0", "ProductStartDay", "ProductEndDay",
                "BurnedCells", "tile", "year"):
        assert key in attrs, key
    assert attrs["ShortName"] == "VNP64A1" and attrs["tile"] == "h08v04"
    assert (int(attrs["ProductStartDay"]), int(attrs["ProductEndDay"]), int(attrs["year"])) == (213, 243, 2001)
    grid = hdf4.grid_info(attrs["StructMetadata.0"])
    assert grid.name == GRID_NAME and "SNSOID" in grid.projection
    sds = hdf4.sds_info(p)
    assert set(sds) == {"Burn Date", "QA"}
    assert sds["Burn Date"]["dims"] == (f"YDim:{GRID_NAME}", f"XDim:{GRID_NAME}")
    assert hdf4.read_sds(p, "Burn Date")[0].dtype == np.int16
    assert not list(tmp_path.rglob(".staging"))


def test_open_vnp64a1_matches_open_mcd64a1(tmp_path):
    (m8, _), (v8, _) = _write_both(tmp_path)
    mod = open_mcd64(m8)
    vii = open_mcd64(v8)  # one code path: the HDF4 tile reader
    assert vii.attrs["product"] == "VNP64A1" and mod.attrs["product"] == "MCD64A1"
    assert vii.attrs["tile"] == "h08v04" and vii.attrs["grid_name"] == GRID_NAME
    assert vii.burn_date.chunks is not None  # lazy
    np.testing.assert_array_equal(vii.burn_date.values, mod.burn_date.values)
    np.testing.assert_array_equal(vii.qa.values, mod.qa.values)
    np.testing.assert_allclose(vii.x.values, mod.x.values)
    np.testing.assert_allclose(vii.y.values, mod.y.values)
    assert vii.rio.crs == sinusoidal_crs() and vii.rio.transform() == mod.rio.transform()
    assert vii.time.values == mod.time.values
    assert vii.burn_date.attrs["flag_meanings"] == mod.burn_date.attrs["flag_meanings"]
    # the fill codes are there as in MCD64A1: -2 water, -1 unmapped, 0 unburned, 1-366 burned
    codes = set(np.unique(vii.burn_date.values).tolist())
    assert {-2, 0}.issubset(codes) and any(c > 0 for c in codes)
    with pytest.raises(WrongProductError, match="a VNP64A1 tile, not MCD64A1"):
        open_burned_area_tile(v8, product="MCD64A1")
    sub = open_vnp64a1(v8, chunks={"y": 50, "x": 50}).burn_date[10:70, 30:90].values
    np.testing.assert_array_equal(sub, mod.burn_date.values[10:70, 30:90])


def test_fill_codes_are_honoured_in_the_target(tmp_path):
    """-2 water counts as observed and unburned, -1 unmapped is left out (NaN where alone),
    0 unburned is observed: as for MCD64A1."""
    h, v = 17, 4
    left, bottom, right, top = tile_bounds(h, v)
    n = 8
    burn = np.zeros((n, n), np.int16)
    burn[:4, :4] = -1       # unmapped
    burn[:4, 4:] = -2       # water
    burn[4:, :4] = 0        # unburned land
    burn[4:, 4:] = 214      # burned on 2 August
    v1 = write_vnp64a1(tmp_path / vnp64_file_name("2001-08", h, v), {"Burn Date": burn}, (h, v), "2001-08")
    m1 = write_tile(tmp_path / "MCD64A1.A2001213.h17v04.061.2021000000000.hdf", burn, (left, top), (right, bottom))
    ds = open_vnp64a1(v1)
    np.testing.assert_array_equal(ds.burn_date.values, burn)
    # a region of 4 x 4 pixels, each exactly one quarter of the tile
    lon_c = float(np.degrees(0.5 * (left + right) / (6371007.181 * np.cos(np.radians(45.0)))))
    region = Region("Q", (lon_c - 0.2, 44.8, lon_c + 0.2, 45.2), 0.1)  # across the 4 quarters
    a = daily_burned_fraction(region, [v1], "2001-08-01", "2001-08-03").values
    assert np.isnan(a[:, 0, 0]).all()                                   # unmapped: no data
    assert (a[:, 0, -1] == 0).all() and (a[:, -1, 0] == 0).all()        # water, unburned land
    np.testing.assert_array_equal(a[:, -1, -1], [0.0, 1.0, 0.0])        # burned on 2 August
    b = daily_burned_fraction(region, [m1], "2001-08-01", "2001-08-03").values
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, equal_nan=True)


def test_hdf5_files_are_refused_saying_the_tiles_are_hdf4(tmp_path):
    bad = tmp_path / "VNP64A1.A2001213.h08v04.002.2019000000000.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("Burn Date", data=np.zeros((4, 4), np.int16))
    with pytest.raises(WrongProductError, match="HDF4"):
        open_mcd64(bad)
    plan = plan_burned_fraction(REGION, tmp_path, "2001-08-01", "2001-08-31")
    assert any(s.path == str(bad) and "HDF4" in s.reason for s in plan.skipped)


def test_daily_fraction_from_vnp64a1_equals_mcd64a1(tmp_path):
    mod, vii = _write_both(tmp_path)
    a = daily_burned_fraction(REGION, mod, "2001-08-01", "2001-08-31").values
    b = daily_burned_fraction(REGION, vii, "2001-08-01", "2001-08-31").values
    assert np.nansum(a) > 1.0  # there are burns to compare
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7, equal_nan=True)


def test_cube_targets_from_a_folder_of_vnp64a1(tmp_path):
    mod, vii = _write_both(tmp_path)
    cube_t = burned_fraction_cube(REGION, tmp_path / "viirs", "2001-08-01", "2001-08-10")
    ref = daily_burned_fraction(REGION, mod, "2001-08-01", "2001-08-10")
    assert cube_t.name == "bafrac"
    np.testing.assert_allclose(cube_t.values, ref.values, equal_nan=True)
    assert sorted(cube_t.attrs["sources"]) == sorted(str(p) for p in vii)


def test_bad_vnp64a1_files_are_skipped_or_refused(tmp_path):
    _, (v8, v9) = _write_both(tmp_path)
    v9.write_bytes(v9.read_bytes()[:2000])  # truncated
    other = tmp_path / "viirs" / "VNP64A1.A2001213.h08v04.001.2019000000000.hdf"
    from firesmoke.synthetic.hdf4write import write_hdf4

    write_hdf4(other, [("ShortName", "CHAR8", "VNP64A1")],  # HDF4, not a burned-area tile
               [("something", np.zeros((3, 3), np.int16), ("y", "x"), [])], tmp_path / "stage")
    plan = plan_burned_fraction(REGION, tmp_path / "viirs", "2001-08-01", "2001-08-31")
    reasons = {Path(s.path).name: s.reason for s in plan.skipped}
    assert "truncated" in reasons[v9.name].lower()
    assert "not an VNP64A1 tile" in reasons[other.name]
    assert [s.path for s in plan.months[0][2]] == [v8]
    with pytest.raises(CorruptFileError):
        open_vnp64a1(v9)
    with pytest.raises(WrongProductError):
        open_vnp64a1(other)


def test_synthetic_month_writer_gives_the_mcd64a1_target(tmp_path):
    """One synthetic burn truth written as MCD64A1 and as VNP64A1 gives the same daily fraction."""
    from firesmoke.synthetic.fire import simulate_burn_truth
    from firesmoke.synthetic.mcd64 import region_tiles, write_mcd64_month
    from firesmoke.synthetic.vnp64 import write_vnp64_month

    region = Region("SYN", (-8.4, 40.3, -8.0, 40.7), 0.01)
    truth = simulate_burn_truth(region, np.datetime64("2017-06-01"), 30, seed=3)
    (mapping,) = region_tiles(region)
    m = write_mcd64_month(tmp_path / "m", truth, mapping, np.datetime64("2017-06"))
    v = write_vnp64_month(tmp_path / "v", truth, mapping, np.datetime64("2017-06"))
    assert v.name.startswith("VNP64A1.A2017152.h17v04.002.") and v.suffix == ".hdf"
    a = daily_burned_fraction(region, [m], "2017-06-01", "2017-06-30").values
    b = daily_burned_fraction(region, [v], "2017-06-01", "2017-06-30").values
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(b).any()


@pytest.mark.real
def test_real_mcd64a1_values_as_vnp64a1(real_data, tmp_path):
    """The real h08v04 tile's layers re-written as VNP64A1 give the same reader output and fraction."""
    from firesmoke.io._core import hdf4

    tile = real_data / "mcd64a1" / "MCD64A1.A2001213.h08v04.006.2017012140005.hdf"
    if not tile.is_file():
        pytest.skip(f"{tile} not found")
    layers = {n: hdf4.read_sds(tile, n)[0] for n in ("Burn Date", "Burn Date Uncertainty", "QA", "First Day", "Last Day")}
    grid = hdf4.grid_info(hdf4.read_attributes(tile)["StructMetadata.0"])  # the product's own corners
    v = write_vnp64a1(tmp_path / vnp64_file_name("2001-08", 8, 4), layers, (8, 4), "2001-08",
                      ul=grid.upper_left, lr=grid.lower_right)
    mod, vii = open_mcd64(tile), open_vnp64a1(v)
    for var in ("burn_date", "burn_date_uncertainty", "qa", "first_day", "last_day"):
        np.testing.assert_array_equal(vii[var].values, mod[var].values)
        assert vii[var].dtype == mod[var].dtype
    assert vii.rio.transform() == mod.rio.transform()
    region = Region("NCAL", (-120.6, 40.05, -119.3, 41.3), 0.01)
    a = daily_burned_fraction(region, [tile], "2001-08-09", "2001-08-31").values
    b = daily_burned_fraction(region, [v], "2001-08-09", "2001-08-31").values
    assert np.nansum(a) > 10
    np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7, equal_nan=True)
