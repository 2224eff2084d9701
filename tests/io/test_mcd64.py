"""MCD64A1 readers, MODIS sinusoidal tiling and the daily burned fraction target."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from pyproj import CRS, Transformer

from firesmoke.errors import CorruptFileError, InputError, WrongProductError
from firesmoke.grid import Region
from firesmoke.io._core import hdf4
from firesmoke.io.burned_area.fraction import daily_burned_fraction, plan_burned_fraction
from firesmoke.io.burned_area.mcd64 import (
    mcd64_tiles_for_region,
    open_mcd64,
    open_mcd64_geotiff,
    open_mcd64a1,
    parse_mcd64_name,
)
from firesmoke.io.burned_area.sinusoidal import tile_bounds, tiles_for_bbox

REAL_TILE = "mcd64a1/MCD64A1.A2001213.h08v04.006.2017012140005.hdf"
BRIEF_SINU = "+proj=sinu +R=6371007.181 +nadgrids=@null +wktext +units=m"
R = 6371007.181
TILE = 1111950.5197665

# ----------------------------------------------------------------------------- synthetic tiles
_STRUCT = """GROUP=SwathStructure
END_GROUP=SwathStructure
GROUP=GridStructure
\tGROUP=GRID_1
\t\tGridName="MOD_Grid_Monthly_500m_DB_BA"
\t\tXDim={nx}
\t\tYDim={ny}
\t\tUpperLeftPointMtrs=({ulx:.6f},{uly:.6f})
\t\tLowerRightMtrs=({lrx:.6f},{lry:.6f})
\t\tProjection=GCTP_SNSOID
\t\tProjParams=(6371007.181000,0,0,0,0,0,0,0,0,0,0,0,0)
\t\tSphereCode=-1
\t\tGridOrigin=HDFE_GD_UL
\t\tGROUP=DataField
{fields}\t\tEND_GROUP=DataField
\tEND_GROUP=GRID_1
END_GROUP=GridStructure
END
"""


def write_tile(path: Path, burn_date: np.ndarray, ul: tuple[float, float], lr: tuple[float, float]) -> Path:
    """Write an HDF4-EOS file laid out like MCD64A1 (StructMetadata.0 + SDS) with pyhdf."""
    from pyhdf.SD import SD, SDC

    ny, nx = burn_date.shape
    layers = {
        "Burn Date": (SDC.INT16, burn_date.astype(np.int16)),
        "QA": (SDC.UINT8, np.where(burn_date == -2, 0, 3).astype(np.uint8)),
    }
    fields = "".join(
        f'\t\t\tOBJECT=DataField_{i}\n\t\t\t\tDataFieldName="{n}"\n\t\t\t\tDimList=("YDim","XDim")\n'
        f"\t\t\tEND_OBJECT=DataField_{i}\n"
        for i, n in enumerate(layers, 1)
    )
    sd = SD(str(path), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    try:
        sd.attr("StructMetadata.0").set(
            SDC.CHAR8, _STRUCT.format(nx=nx, ny=ny, ulx=ul[0], uly=ul[1], lrx=lr[0], lry=lr[1], fields=fields)
        )
        for name, (typ, arr) in layers.items():
            sds = sd.create(name, typ, arr.shape)
            sds[:] = arr
            sds.setfillvalue(-1 if name == "Burn Date" else 0)
            sds.endaccess()
    finally:
        sd.end()
    return path


def cell_lonlat(ul: tuple[float, float], cell: float, ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre lon/lat of a sinusoidal grid, with pyproj."""
    x = ul[0] + (np.arange(nx) + 0.5) * cell
    y = ul[1] - (np.arange(ny) + 0.5) * cell
    xx, yy = np.meshgrid(x, y)
    tr = Transformer.from_crs(CRS.from_proj4(BRIEF_SINU), "EPSG:4326", always_xy=True)
    return tr.transform(xx, yy)


#: Longitude of the h08v04 / h09v04 tile edge at 45 N.
SEAM_LON = float(np.degrees(-9 * TILE / (R * np.cos(np.radians(45.0)))))


def synthetic_burns(lon: np.ndarray, lat: np.ndarray, first_doy: int) -> np.ndarray:
    """A burn pattern defined in lon/lat around the tile edge (continuous across tiles)."""
    bd = np.zeros(lon.shape, np.int16)
    r = np.hypot((lon - SEAM_LON) * np.cos(np.radians(lat)), lat - 45.0)
    burned = r < 0.6
    bd[burned] = first_doy + (np.floor((lon[burned] - SEAM_LON + 1.0) * 7) % 9).astype(np.int16)
    bd[(lat > 45.2) & (lat < 45.25)] = -2  # a strip of water
    bd[(lon > SEAM_LON + 0.3) & (lon < SEAM_LON + 0.35) & (lat < 45.0)] = -1  # a strip of fill
    return bd


def pixel_area(region: Region) -> np.ndarray:
    """Area (m^2) of each region row's pixels on the MODIS sphere."""
    edges = region.transform.f + np.arange(region.height + 1) * region.transform.e
    return R**2 * np.radians(region.pixel_size) * np.abs(np.diff(np.sin(np.radians(edges))))


# ----------------------------------------------------------------------------- real tile
@pytest.fixture(scope="module")
def real_tile(real_data: Path) -> Path:
    p = real_data / REAL_TILE
    if not p.is_file():
        pytest.skip(f"{p} not found")
    return p


@pytest.mark.real
def test_real_tile_opens_lazily_with_crs_and_transform(real_tile: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = hdf4.read_sds

    def spy(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(hdf4, "read_sds", spy)
    ds = open_mcd64a1(real_tile)
    assert calls == []  # nothing read on open
    assert set(ds.data_vars) == {"burn_date", "burn_date_uncertainty", "qa", "first_day", "last_day"}
    assert ds.burn_date.dtype == np.int16 and ds.qa.dtype == np.uint8 and ds.first_day.dtype == np.int16
    assert ds.burn_date.dims == ("y", "x") and ds.burn_date.shape == (2400, 2400)
    assert ds["time"].values == np.datetime64("2001-08-01")
    assert (ds.attrs["tile"], ds.attrs["tile_h"], ds.attrs["tile_v"]) == ("h08v04", 8, 4)

    # transform from the grid metadata, parsed here independently
    text = hdf4.read_attributes(real_tile)["StructMetadata.0"]
    ulx, uly = (float(v) for v in re.search(r"UpperLeftPointMtrs=\(([^,]+),([^)]+)\)", text).groups())
    lrx, lry = (float(v) for v in re.search(r"LowerRightMtrs=\(([^,]+),([^)]+)\)", text).groups())
    nx = int(re.search(r"XDim=(\d+)", text).group(1))
    ny = int(re.search(r"YDim=(\d+)", text).group(1))
    expected = Affine((lrx - ulx) / nx, 0, ulx, 0, (lry - uly) / ny, uly)
    assert ds.rio.transform().almost_equals(expected, precision=1e-9)
    assert ds.x.values[0] == pytest.approx(ulx + expected.a / 2, abs=1e-6)
    assert ds.y.values[-1] == pytest.approx(lry - expected.e / 2, abs=1e-6)
    # the CRS is the MODIS sphere sinusoidal: same coordinates as the reference PROJ string
    a = Transformer.from_crs(ds.rio.crs, "EPSG:4326", always_xy=True)
    b = Transformer.from_crs(CRS.from_proj4(BRIEF_SINU), "EPSG:4326", always_xy=True)
    pts = (np.array([ulx, lrx, -1.05e7]), np.array([uly, lry, 5.0e6]))
    np.testing.assert_allclose(a.transform(*pts), b.transform(*pts), rtol=0, atol=1e-9)

    values = ds.burn_date.values
    assert len(calls) >= 1
    raw, _ = original(real_tile, "Burn Date")
    np.testing.assert_array_equal(values, raw)


@pytest.mark.real
def test_real_tile_known_pixels_lat_lon(real_tile: Path) -> None:
    ds = open_mcd64a1(real_tile)
    to_ll = Transformer.from_crs(ds.rio.crs, "EPSG:4326", always_xy=True)
    # upper-left corner of h08v04 is 50 N; its longitude follows lon = x / (R cos lat)
    corner_x = float(ds.x[0]) - 0.5 * float(ds.x[1] - ds.x[0])
    corner_y = float(ds.y[0]) + 0.5 * float(ds.y[0] - ds.y[1])
    lon, lat = to_ll.transform(corner_x, corner_y)
    assert lat == pytest.approx(50.0, abs=1e-6)
    assert lon == pytest.approx(np.degrees(corner_x / (R * np.cos(np.radians(50.0)))), abs=1e-6)
    assert lon == pytest.approx(-155.5724, abs=1e-3)
    # a burned pixel: its centre from the tiling constants (h, v, 2400 px per tile)
    bd = ds.burn_date.values
    row, col = (int(v[0]) for v in np.nonzero(bd > 0))
    x = -18 * TILE + (8 * 2400 + col + 0.5) * TILE / 2400
    y = 9 * TILE - (4 * 2400 + row + 0.5) * TILE / 2400
    assert float(ds.x[col]) == pytest.approx(x, abs=1e-3) and float(ds.y[row]) == pytest.approx(y, abs=1e-3)
    xc, yc = float(ds.x[col]), float(ds.y[row])
    lon, lat = to_ll.transform(xc, yc)
    assert lat == pytest.approx(np.degrees(yc / R), abs=1e-9)
    assert lon == pytest.approx(np.degrees(xc / (R * np.cos(yc / R))), abs=1e-9)
    assert 40 < lat < 43 and -123 < lon < -119  # northern California / Oregon


@pytest.mark.real
def test_real_tile_counts_and_chunked_reads(real_tile: Path) -> None:
    ds = open_mcd64a1(real_tile, chunks={"y": 700, "x": 1000})
    assert ds.burn_date.data.chunks == ((700, 700, 700, 300), (1000, 1000, 400))
    bd = ds.burn_date.values
    assert int((bd > 0).sum()) == 2242 == int(ds.attrs["BurnedCells"])
    assert set(np.unique(bd)) >= {-2, -1, 0}
    assert bd[bd > 0].min() >= 213 and bd.max() <= 243  # August 2001
    raw, _ = hdf4.read_sds(real_tile, "Burn Date")
    np.testing.assert_array_equal(bd, raw)
    np.testing.assert_array_equal(ds.qa[100:1800:7, 5:2000:3].values, hdf4.read_sds(real_tile, "QA")[0][100:1800:7, 5:2000:3])
    assert open_mcd64(real_tile).burn_date.shape == (2400, 2400)


@pytest.mark.real
def test_wrong_product_viirs_file(real_viirs_dir: Path) -> None:
    viirs = sorted(real_viirs_dir.glob("*Reflectance_M5.hdf"))[0]
    with pytest.raises(WrongProductError) as err:
        open_mcd64a1(viirs)
    assert str(viirs) in str(err.value)


def test_wrong_product_plain_hdf4(tmp_path: Path) -> None:
    from pyhdf.SD import SD, SDC

    p = tmp_path / "plain.hdf"
    sd = SD(str(p), SDC.WRITE | SDC.CREATE)
    sds = sd.create("Temperature", SDC.FLOAT32, (4, 4))
    sds[:] = np.ones((4, 4), np.float32)
    sds.endaccess()
    sd.end()
    with pytest.raises(WrongProductError, match="StructMetadata"):
        open_mcd64a1(p)


@pytest.mark.real
def test_daily_burned_fraction_real_tile_vs_bruteforce(real_tile: Path) -> None:
    region = Region("NCAL", (-120.6, 40.05, -119.3, 41.3), 0.01)
    left, bottom, right, top = region.bbox
    frac = daily_burned_fraction(region, [real_tile], "2001-08-09", "2001-08-31")
    assert frac.dtype == np.float32 and frac.dims == ("time", "y", "x")
    assert frac.rio.crs == CRS.from_epsg(4326)
    # rioxarray derives the origin from the (exact) pixel-centre coordinates: 1e-15 off
    assert frac.rio.transform().almost_equals(region.transform, precision=1e-12)
    got = frac.values

    # brute force: every cell near the region, 4 x 4 sub-points through pyproj, np.add.at
    bd = hdf4.read_sds(real_tile, "Burn Date")[0]
    ulx, uly, cell, k = -11119505.196662, 5559752.598331, (-10007554.676995 + 11119505.196662) / 2400, 4
    lon_c, lat_c = cell_lonlat((ulx, uly), cell, 2400, 2400)
    near = (lon_c > left - 0.1) & (lon_c < right + 0.1) & (lat_c > bottom - 0.1) & (lat_c < top + 0.1)
    rows, cols = np.nonzero(near)
    off = (np.arange(k) + 0.5) / k
    sx = ulx + (cols[:, None, None] + off[None, None, :]) * cell
    sy = uly - (rows[:, None, None] + off[None, :, None]) * cell
    sx, sy = np.broadcast_arrays(sx, sy)
    tr = Transformer.from_crs(CRS.from_proj4(BRIEF_SINU), "EPSG:4326", always_xy=True)
    slon, slat = tr.transform(sx, sy)
    r, c = region.rowcol(slat, slon)
    inside = (r >= 0) & (r < region.height) & (c >= 0) & (c < region.width)
    code = np.broadcast_to(bd[rows, cols][:, None, None], sx.shape)
    observed = np.zeros(region.shape)
    ok = inside & ((code >= 0) | (code == -2))
    np.add.at(observed, (r[ok], c[ok]), 1.0)
    days = np.arange(221, 244)  # 2001-08-09 .. 2001-08-31
    burned = np.zeros((days.size, *region.shape))
    okb = inside & (code >= days[0]) & (code <= days[-1])
    np.add.at(burned, (code[okb] - days[0], r[okb], c[okb]), 1.0)
    with np.errstate(invalid="ignore"):
        expected = burned / observed
    assert np.isnan(got).sum() == np.isnan(expected).sum()
    np.testing.assert_allclose(got, expected, atol=1e-6, equal_nan=True)

    # area check: sum over pixels of fraction x pixel area = burned cells x cell area
    area = pixel_area(region)[None, :, None]
    ba = np.nansum(got * area, axis=(1, 2))
    in_box = near & (lon_c > left) & (lon_c < right) & (lat_c > bottom) & (lat_c < top)
    n_cells = np.array([(bd[in_box] == d).sum() for d in days])
    assert n_cells.sum() > 1000
    big = n_cells >= 100
    np.testing.assert_allclose(ba[big], n_cells[big] * cell**2, rtol=0.03)
    assert ba.sum() == pytest.approx(n_cells.sum() * cell**2, rel=0.01)
    assert np.all(got[n_cells == 0][~np.isnan(got[n_cells == 0])] == 0)


# ----------------------------------------------------------------------------- synthetic tiles
NS = 120  # cells per synthetic tile side (~9.3 km cells keep the tests fast)


def make_tiles(folder: Path, month_doy: int, year: int = 2001, tag: str = "006") -> dict[str, Path]:
    """Tiles h08v04 and h09v04 (adjacent) and one grid covering both, same burn pattern."""
    folder.mkdir(parents=True, exist_ok=True)
    cell = TILE / NS
    out = {}
    l8, b8, _, t8 = tile_bounds(8, 4)
    _, _, r9, _ = tile_bounds(9, 4)
    lon, lat = cell_lonlat((l8, t8), cell, NS, 2 * NS)
    bd = synthetic_burns(lon, lat, month_doy + 2)
    for h, part in ((8, bd[:, :NS]), (9, bd[:, NS:])):
        left, bottom, right, top = tile_bounds(h, 4)
        out[f"h{h:02d}"] = write_tile(folder / f"MCD64A1.A{year}{month_doy:03d}.h{h:02d}v04.{tag}.2017000000000.hdf",
                                      part, (left, top), (right, bottom))
    merged = folder / "merged"
    merged.mkdir(exist_ok=True)
    out["merged"] = write_tile(merged / f"MCD64A1.A{year}{month_doy:03d}.h08v04.{tag}.2017000000000.hdf",
                               bd, (l8, t8), (r9, b8))
    return out


def test_two_adjacent_tiles_are_seamless(tmp_path: Path) -> None:
    tiles = make_tiles(tmp_path / "aug", 213)
    seam_lon = SEAM_LON
    region = Region("SEAM", (seam_lon - 1.0, 44.3, seam_lon + 1.0, 45.7), 0.02)
    assert {(8, 4), (9, 4)} <= set(mcd64_tiles_for_region(region))
    two = daily_burned_fraction(region, [tiles["h08"], tiles["h09"]], "2001-08-01", "2001-08-31").values
    one = daily_burned_fraction(region, [tiles["merged"]], "2001-08-01", "2001-08-31").values
    np.testing.assert_allclose(two, one, rtol=1e-6, atol=1e-7, equal_nan=True)
    # both sides of the seam carry burns and the pixels over the seam are fully observed
    col = int((seam_lon - region.bbox[0]) / region.pixel_size)
    total = np.nansum(two, axis=0)
    assert total[:, col - 5 : col].sum() > 0 and total[:, col + 1 : col + 6].sum() > 0
    rows = slice(5, region.height - 5)
    assert not np.isnan(two[0][rows, col - 3 : col + 4]).any()
    assert np.nanmax(two) <= 1.0 and np.nanmin(two) >= 0.0
    # sum over days of the fraction never exceeds 1 (each cell burns once a month)
    assert np.nanmax(total) <= 1.0 + 1e-6


def test_several_months_skips_and_nan_days(tmp_path: Path) -> None:
    aug = make_tiles(tmp_path / "src" / "aug", 213)
    sep = make_tiles(tmp_path / "src" / "sep", 244)
    (aug["merged"]).unlink()
    (sep["merged"]).unlink()
    src = tmp_path / "src"
    # files that must not even be opened: other month, other tile (garbage content)
    (src / "MCD64A1.A2001182.h08v04.006.2017000000000.hdf").write_bytes(b"garbage")
    (src / "MCD64A1.A2001213.h30v10.006.2017000000000.hdf").write_bytes(b"garbage")
    # an intersecting but truncated file is skipped and listed
    bad = src / "MCD64A1.A2001244.h08v05.006.2017000000000.hdf"
    bad.write_bytes(aug["h08"].read_bytes()[:3000])
    # an older collection of the same tile-month is superseded
    old = make_tiles(tmp_path / "old", 244, tag="005")
    (src / old["h09"].name).write_bytes(old["h09"].read_bytes())
    (src / "notes.hdf").write_text("hello")  # not an MCD64 name: ignored in folder scans
    (src / "MCD64A1.notes.hdf").write_text("hello")  # MCD64 name that does not parse: listed

    seam_lon = SEAM_LON
    region = Region("M", (seam_lon - 1.0, 39.5, seam_lon + 1.0, 45.7), 0.02)
    plan = plan_burned_fraction(region, src, "2001-08-03", "2001-10-02")
    reasons = {Path(s.path).name: s.reason for s in plan.skipped}
    # October has no file: the month itself is listed (its days are NaN, not unburned)
    assert set(reasons) == {bad.name, old["h09"].name, "MCD64A1.notes.hdf", "MCD64A1 2001-10 M"}
    assert "2001-10-01..2001-10-02" in reasons["MCD64A1 2001-10 M"]
    assert "truncated" in reasons[bad.name] or "corrupt" in reasons[bad.name]
    assert "superseded" in reasons[old["h09"].name]
    assert [(m0, m1, len(s)) for m0, m1, s in plan.months] == [
        (date(2001, 8, 3), date(2001, 8, 31), 2),
        (date(2001, 9, 1), date(2001, 9, 30), 2),
        (date(2001, 10, 1), date(2001, 10, 2), 0),
    ]

    explicit = plan_burned_fraction(region, [src / "notes.hdf", tmp_path / "missing.hdf"], "2001-08-03", "2001-08-04")
    assert [(Path(s.path).name, s.reason) for s in explicit.skipped] == [
        ("notes.hdf", "not an MCD64A1/VNP64A1 tile or MCD64monthly burndate GeoTIFF name"),
        ("missing.hdf", "file not found"),
        ("MCD64A1 2001-08 M", "no usable MCD64A1/VNP64A1/MCD64monthly file for 2001-08 covering region M: "
                              "burned fraction is NaN on 2001-08-03..2001-08-04"),
    ]

    frac = daily_burned_fraction(region, src, "2001-08-03", "2001-10-02")
    assert frac.shape[0] == 61 and frac.data.chunks[0] == (29, 30, 2)
    assert any(bad.name in s for s in frac.attrs["skipped_inputs"])
    assert sum("no usable MCD64A1" in s for s in frac.attrs["skipped_inputs"]) == 1
    v = frac.values
    assert np.isnan(v[-2:]).all()  # October: no source
    days = frac["time"].dt.dayofyear.values
    # each month's burn pattern starts 2 days after the month's first day and lasts 9 days
    aug_burn_days = {int(d) for d, f in zip(days[:29], v[:29], strict=True) if np.nansum(f) > 0}
    sep_burn_days = {int(d) for d, f in zip(days[29:59], v[29:59], strict=True) if np.nansum(f) > 0}
    assert aug_burn_days == set(range(215, 224))
    assert sep_burn_days == set(range(246, 255))
    # each month equals a computation from that month's files alone
    aug_only = daily_burned_fraction(region, [aug["h08"], aug["h09"]], "2001-08-03", "2001-08-31").values
    sep_only = daily_burned_fraction(region, [sep["h08"], sep["h09"]], "2001-09-01", "2001-09-30").values
    np.testing.assert_array_equal(v[:29], aug_only)
    np.testing.assert_array_equal(v[29:59], sep_only)
    v = v[29:59]
    # the rows south of 40 N (tile h08v05, skipped) are NaN
    south = region.y < 40.0
    assert np.isnan(v[:, south]).all()


def test_geotiff_window_reader_and_fraction(tmp_path: Path) -> None:
    import rasterio
    from rasterio.transform import from_origin

    res = 0.0041666666666667
    left, top = -100.123, 40.377
    ny, nx = 240, 300
    rng = np.random.default_rng(3)
    bd = np.zeros((ny, nx), np.int16)
    burned = rng.random((ny, nx)) < 0.2
    bd[burned] = (244 + rng.integers(0, 30, burned.sum())).astype(np.int16)
    bd[:10, :] = -2
    bd[:, :5] = -1
    bd[100:111, 100:143] = -1  # unmapped cells inside the region: the denominators differ
    transform = from_origin(left, top, res, res)
    stem = "MCD64monthly.A2019244.Win20.061"
    profile = {"driver": "GTiff", "height": ny, "width": nx, "count": 1, "crs": "EPSG:4326", "transform": transform}
    with rasterio.open(tmp_path / f"{stem}.burndate.tif", "w", dtype="int16", nodata=-1, **profile) as dst:
        dst.write(bd, 1)
    with rasterio.open(tmp_path / f"{stem}.ba_qa.tif", "w", dtype="uint8", **profile) as dst:
        dst.write(np.full((ny, nx), 3, np.uint8), 1)

    ds = open_mcd64_geotiff(tmp_path / f"{stem}.burndate.tif")
    assert set(ds.data_vars) == {"burn_date", "qa"}
    assert ds.burn_date.dtype == np.int16 and ds.burn_date.dims == ("y", "x")
    np.testing.assert_array_equal(ds.burn_date.values, bd)
    assert ds["time"].values == np.datetime64("2019-09-01") and ds.attrs["window"] == 20
    assert ds.rio.crs == CRS.from_epsg(4326) and ds.rio.transform().almost_equals(transform)
    assert parse_mcd64_name(tmp_path / f"{stem}.burndate.tif").kind == "tif"

    region = Region("G", (-99.9, 39.6, -99.05, 40.3), 0.01)
    got = daily_burned_fraction(region, tmp_path, "2019-09-01", "2019-09-30").values
    # brute force: 4 x 4 sub-points weighted by cos(lat), accumulated with np.add.at
    k = 4
    off = (np.arange(k) + 0.5) / k
    rr, cc = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    slon = left + (cc[..., None, None] + off[None, None, None, :]) * res
    slat = top - (rr[..., None, None] + off[None, None, :, None]) * res
    slon, slat = np.broadcast_arrays(slon, slat)
    w = np.cos(np.radians(slat))
    code = np.broadcast_to(bd[..., None, None], slon.shape)
    r, c = region.rowcol(slat, slon)
    inside = (r >= 0) & (r < region.height) & (c >= 0) & (c < region.width)
    obs = np.zeros(region.shape)
    m = inside & ((code >= 0) | (code == -2))
    np.add.at(obs, (r[m], c[m]), w[m])
    num = np.zeros((30, *region.shape))
    mb = inside & (code >= 244)
    np.add.at(num, (code[mb] - 244, r[mb], c[mb]), w[mb])
    with np.errstate(invalid="ignore"):
        expected = num / obs
    np.testing.assert_allclose(got, expected, atol=1e-5, equal_nan=True)
    assert np.nansum(got) > 10
    # the reference's denominator: all cells (the fill columns count as unburned area)
    got_all = daily_burned_fraction(region, tmp_path, "2019-09-01", "2019-09-30", denominator="all")
    assert got_all.attrs["denominator"] == "all"
    every = np.zeros(region.shape)
    np.add.at(every, (r[inside], c[inside]), w[inside])
    with np.errstate(invalid="ignore"):
        expected_all = num / every
    np.testing.assert_allclose(got_all.values, expected_all, atol=1e-5, equal_nan=True)
    # they differ exactly on the pixels that hold fill cells, and only there
    partial = (obs > 0) & (obs < every * (1 - 1e-9))
    assert partial.any()
    burned_px = num.sum(0) > 0
    assert (np.abs(got_all.values - got).sum(0)[partial & burned_px] > 0).all()
    full = (obs > 0) & ~partial
    np.testing.assert_allclose(got_all.values[:, full], got[:, full], atol=1e-6)
    # a pixel covered only by fill cells: unknown (NaN) when observed, 0 with all cells
    only_fill = (every > 0) & (obs == 0)
    assert only_fill.any()
    assert np.isnan(got[:, only_fill]).all() and (got_all.values[:, only_fill] == 0).all()
    with pytest.raises(InputError, match="denominator"):
        daily_burned_fraction(region, tmp_path, "2019-09-01", "2019-09-30", denominator="nope")


def test_tiles_for_region_match_dense_sampling() -> None:
    tr = Transformer.from_crs("EPSG:4326", CRS.from_proj4(BRIEF_SINU), always_xy=True)
    for bbox in [(-125, 32, -113, 43), (-10, 36, 5, 44), (113, -27, 154, -10), (-58, -20, -44, -5), (-169, 56, -129, 72)]:
        lon = np.linspace(bbox[0] + 1e-9, bbox[2] - 1e-9, 400)  # interior points: edges touch
        lat = np.linspace(bbox[1] + 1e-9, bbox[3] - 1e-9, 400)  # neighbours with zero area
        x, y = tr.transform(*np.meshgrid(lon, lat))
        h = np.floor((x + 18 * TILE) / TILE).astype(int)
        v = np.floor((9 * TILE - y) / TILE).astype(int)
        sampled = set(zip(h.ravel().tolist(), v.ravel().tolist(), strict=True))
        got = set(tiles_for_bbox(bbox))
        assert sampled <= got
        # anything extra must touch the box only along an edge missed by the sampling
        assert len(got - sampled) <= 2, (bbox, got - sampled)
    assert mcd64_tiles_for_region("PI") == [(17, 4), (18, 4), (17, 5), (18, 5)]
    # a box across the antimeridian (right > 180): x = lon cos(lat) puts 175-180 E at 15 S in h34
    assert tiles_for_bbox((175, -15, 185, -12)) == [(0, 10), (1, 10), (34, 10), (35, 10)]


def test_corrupt_tile_named_in_error(tmp_path: Path) -> None:
    p = tmp_path / "MCD64A1.A2001213.h08v04.006.2017012140005.hdf"
    p.write_bytes(b"\x0e\x03\x13\x01" + b"\x00" * 10)
    with pytest.raises(CorruptFileError) as err:
        open_mcd64a1(p)
    assert str(p) in str(err.value)


# ----------------------------------------------------------------------------- corner vs tile (issue 14)
def test_corner_must_be_that_of_the_named_tile(tmp_path: Path) -> None:
    cell = TILE / NS
    left, bottom, right, top = tile_bounds(8, 4)
    bd = np.full((NS, NS), -2, np.int16)
    good = write_tile(tmp_path / "MCD64A1.A2001213.h08v04.006.2017000000000.hdf", bd, (left, top), (right, bottom))
    assert open_mcd64a1(good).attrs["tile"] == "h08v04"
    # the h08v04 grid in a file named h09v04: refused, both tiles named
    wrong_name = write_tile(tmp_path / "MCD64A1.A2001213.h09v04.006.2017000000000.hdf", bd, (left, top), (right, bottom))
    with pytest.raises(WrongProductError, match=r"name says tile h09v04 but .* tile h08v04") as info:
        open_mcd64a1(wrong_name)
    assert info.value.path == str(wrong_name)
    # a corner one cell off the tile grid (a damaged StructMetadata digit): refused
    (tmp_path / "x").mkdir()
    shifted = write_tile(tmp_path / "x" / good.name, bd, (left + cell, top), (right + cell, bottom))
    with pytest.raises(WrongProductError, match="not a sinusoidal tile corner"):
        open_mcd64a1(shifted)


def test_real_tile_corner_passes_and_a_flipped_corner_digit_is_refused(real_data: Path, tmp_path: Path) -> None:
    src = real_data / REAL_TILE
    if not src.is_file():
        pytest.skip(f"{src} not found")
    data = bytearray(src.read_bytes())
    key = b"UpperLeftPointMtrs=(-11119505.196662"
    i = data.find(key)
    assert i > 0
    data[i + len(key) - 4] = ord("8")  # .196662 -> .188662: 8 mm, still the tile corner
    near = tmp_path / "near" / src.name
    near.parent.mkdir()
    near.write_bytes(bytes(data))
    assert open_mcd64a1(near).attrs["tile"] == "h08v04"
    data[i + len("UpperLeftPointMtrs=(-111")] = ord("2")  # -11119505 -> -11129505: 10 km west
    bad = tmp_path / src.name
    bad.write_bytes(bytes(data))
    with pytest.raises(WrongProductError, match="not a sinusoidal tile corner") as info:
        open_mcd64a1(bad)
    assert info.value.path == str(bad)
