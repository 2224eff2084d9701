"""VNP64A1 (VIIRS burned area, HDF5 sinusoidal tiles) beside MCD64A1: names, reader, daily fraction."""

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
from firesmoke.io.burned_area.mcd64 import open_mcd64, parse_mcd64_name
from firesmoke.io.burned_area.sinusoidal import sinusoidal_crs, tile_bounds
from firesmoke.io.burned_area.vnp64 import DATA_FIELDS, STRUCT_METADATA, open_vnp64a1, vnp64_meta
from firesmoke.synthetic.vnp64 import vnp64_file_name, write_vnp64a1

REGION = Region("SEAM", (SEAM_LON - 1.0, 44.3, SEAM_LON + 1.0, 45.7), 0.02)


def _burns(month_doy: int) -> np.ndarray:
    """Burn dates over tiles h08v04 + h09v04 (NS x 2NS cells), as in the MCD64A1 tests."""
    l8, _, _, t8 = tile_bounds(8, 4)
    lon, lat = cell_lonlat((l8, t8), TILE / NS, NS, 2 * NS)
    return synthetic_burns(lon, lat, month_doy + 2)


def _write_both(folder: Path, month_doy: int = 213, **kw) -> tuple[list[Path], list[Path]]:
    """The same burn dates as MCD64A1 (HDF4) and VNP64A1 (HDF5) tiles h08v04 and h09v04."""
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
    src = parse_mcd64_name("VNP64A1.A2020245.h08v05.002.2021061152613.h5")
    assert src.kind == "h5" and src.tile == (8, 5) and src.collection == "002"
    assert str(src.month_start) == "2020-09-01" and str(src.month_end) == "2020-09-30"
    assert parse_mcd64_name("MCD64A1.A2001213.h08v04.006.2017012140005.hdf").kind == "hdf"
    assert parse_mcd64_name("VNP64A1.A2020245.h08v05.002.h5x") is None
    assert parse_mcd64_name("VNP14IMG.A2020245.1200.002.nc") is None
    assert vnp64_file_name("2020-09", 8, 5, "2021061152613") == "VNP64A1.A2020245.h08v05.002.2021061152613.h5"


def test_writer_has_the_hdfeos5_layout(tmp_path):
    _, (p, _) = _write_both(tmp_path)
    with h5py.File(p, "r") as f:
        assert set(f[DATA_FIELDS]) == {"Burn Date", "QA"}
        assert f[f"{DATA_FIELDS}/Burn Date"].dtype == np.int16
        assert f[f"{DATA_FIELDS}/Burn Date"].compression == "gzip"
        text = f[STRUCT_METADATA][()].decode()
        assert 'GridName="VNP_Grid_Monthly_500m_2D"' in text and "HE5_GCTP_SNSOID" in text
        assert f.attrs["HorizontalTileNumber"] == b"08" or f.attrs["HorizontalTileNumber"] == "08"
    assert not list(tmp_path.rglob("*.tmp"))


def test_open_vnp64a1_matches_open_mcd64a1(tmp_path):
    (m8, _), (v8, _) = _write_both(tmp_path)
    mod = open_mcd64(m8)
    vii = open_mcd64(v8)  # dispatches on .h5
    assert vii.attrs["product"] == "VNP64A1" and vii.attrs["tile"] == "h08v04"
    assert vii.burn_date.chunks is not None  # lazy
    np.testing.assert_array_equal(vii.burn_date.values, mod.burn_date.values)
    np.testing.assert_array_equal(vii.qa.values, mod.qa.values)
    np.testing.assert_allclose(vii.x.values, mod.x.values)
    np.testing.assert_allclose(vii.y.values, mod.y.values)
    assert vii.rio.crs == sinusoidal_crs() and vii.rio.transform() == mod.rio.transform()
    assert vii.time.values == mod.time.values
    assert vii.burn_date.attrs["flag_meanings"] == mod.burn_date.attrs["flag_meanings"]
    sub = open_vnp64a1(v8, chunks={"y": 50, "x": 50}).burn_date[10:70, 30:90].values
    np.testing.assert_array_equal(sub, mod.burn_date.values[10:70, 30:90])


@pytest.mark.parametrize("struct", [True, False])
def test_daily_fraction_from_vnp64a1_equals_mcd64a1(tmp_path, struct):
    mod, vii = _write_both(tmp_path, struct=struct)
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
    other = tmp_path / "viirs" / "VNP64A1.A2001213.h08v04.001.2019000000000.h5"
    with h5py.File(other, "w") as f:  # HDF5, not a VNP64A1 tile
        f.create_dataset("something", data=np.zeros(3))
    plan = plan_burned_fraction(REGION, tmp_path / "viirs", "2001-08-01", "2001-08-31")
    reasons = {Path(s.path).name: s.reason for s in plan.skipped}
    assert "HDF5" in reasons[v9.name]
    assert "not a VNP64A1 tile" in reasons[other.name]
    assert [s.path for s in plan.months[0][2]] == [v8]
    with pytest.raises(CorruptFileError):
        vnp64_meta(v9)
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
    assert v.name.startswith("VNP64A1.A2017152.h17v04.")
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
