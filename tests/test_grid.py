"""Region grids: the rules of reference/banet.md, JSON round trips, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio.transform
import xarray as xr
from affine import Affine

from firesmoke.errors import GridMismatchError, InvalidRegionError
from firesmoke.grid import PUBLISHED_REGIONS, Region

# name -> (bbox, (height, width)) as published in reference/banet.md
PUBLISHED = {
    "AK": ([-169, 56, -129, 72], (1600, 4000)),
    "AU": ([113, -27, 154, -10], (1700, 4100)),
    "BR": ([-58, -20, -44, -5], (1500, 1400)),
    "CA": ([-125, 32, -113, 43], (1100, 1200)),
    "MZ": ([30, -27, 41, -10], (1700, 1100)),
    "PI": ([-10, 36, 5, 44], (800, 1500)),
    "PT": ([-10, 36, -6, 44], (800, 400)),
}


def test_all_published_regions_ship():
    assert set(PUBLISHED_REGIONS) == set(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_region_grid(name):
    bbox, shape = PUBLISHED[name]
    r = Region.named(name)
    assert r.name == name
    assert list(r.bbox) == [float(v) for v in bbox]
    assert r.pixel_size == 0.01
    assert r.shape == shape
    # the reference rule: widths from np.arange, transform "from bounds"
    left, bottom, right, top = bbox
    assert r.width == len(np.arange(left, right, 0.01))
    assert r.height == len(np.arange(bottom, top, 0.01))
    expected = rasterio.transform.from_bounds(left, bottom, right, top, shape[1], shape[0])
    assert r.transform.almost_equals(expected, precision=1e-12)
    # pixel centres: half a pixel inside the corners, north to south
    assert r.x.shape == (shape[1],) and r.y.shape == (shape[0],)
    np.testing.assert_allclose(r.x[0], left + 0.005, atol=1e-9)
    np.testing.assert_allclose(r.x[-1], right - 0.005, atol=1e-9)
    np.testing.assert_allclose(r.y[0], top - 0.005, atol=1e-9)
    np.testing.assert_allclose(r.y[-1], bottom + 0.005, atol=1e-9)
    assert np.all(np.diff(r.y) < 0) and np.all(np.diff(r.x) > 0)
    assert r.bounds == tuple(float(v) for v in bbox)
    assert r.crs.to_epsg() == 4326


def test_centres_match_transform():
    r = Region("T", (10.0, 20.0, 10.37, 20.2), 0.01)
    rows = np.arange(r.height)
    cols = np.arange(r.width)
    xs, _ = rasterio.transform.xy(r.transform, np.zeros_like(cols), cols, offset="center")
    _, ys = rasterio.transform.xy(r.transform, rows, np.zeros_like(rows), offset="center")
    np.testing.assert_allclose(r.x, xs, atol=1e-12)
    np.testing.assert_allclose(r.y, ys, atol=1e-12)


def test_non_divisible_bbox_is_refused():
    """0.025 does not divide 1.01: the arange rule would give 41 stretched pixels (issue 14).

    Refused with a suggestion instead of a grid whose pixels are not ``pixel_size`` wide.
    """
    with pytest.raises(InvalidRegionError, match=r"pixel size 0.025 does not divide the bbox width 1.01 \(40.4 pixels\).*1 or 1.025") as info:
        Region("odd", (0.0, 0.0, 1.01, 0.5), 0.025)
    assert info.value.field == "pixel_size"


def test_exact_width_where_arange_adds_a_pixel():
    """The exact rule counts 64 pixels where np.arange's float error gives 65; the
    reference's count stays available as ``reference_shape``."""
    r = Region("fp", (10.0, 0.0, 10.64, 0.5), 0.01)
    assert r.width == 64
    assert r.reference_shape == (50, len(np.arange(10.0, 10.64, 0.01))) == (50, 65)
    fs = Region.from_shape("fs", 10.0, 0.5, 0.01, 50, 64)
    assert fs.shape == (50, 64) and fs.bbox == (10.0, 0.0, 10.64, 0.5)


@pytest.mark.parametrize("name", PUBLISHED_REGIONS)
def test_published_regions_keep_the_reference_shape(name):
    r = Region.named(name)
    assert r.shape == r.reference_shape
    y, x = r.reference_coords()
    assert (y.size, x.size) == r.shape
    np.testing.assert_allclose(r.x, x + 0.005, atol=1e-9)  # centres vs the reference's corners


def test_subset_is_bit_identical_to_the_parent_slice():
    """The README's example: no float noise in bbox, coordinates or GeoTransform."""
    parent = Region.named("PT")
    sub = parent.subset("PT_demo", 300, 556, 100, 356)
    assert sub.bbox == (-9.0, 38.44, -6.44, 41.0)
    assert repr(sub.bbox[1]) == "38.44"
    assert np.array_equal(sub.x, parent.x[100:356]) and np.array_equal(sub.y, parent.y[300:556])
    assert sub.transform.a == 0.01 and sub.transform.e == -0.01
    ds = sub.coords_dataset()
    assert ds["spatial_ref"].attrs["GeoTransform"].split() == ["-9.0", "0.01", "0.0", "41.0",
                                                               "0.0", "-0.01"]
    assert ds.rio.transform().a == 0.01 and ds.rio.resolution() == (0.01, -0.01)
    # a subset of a subset is still the parent's slice; the window maps it back
    sub2 = sub.subset("s2", 7, 39, 11, 60)
    assert np.array_equal(sub2.x, parent.x[111:160]) and np.array_equal(sub2.y, parent.y[307:339])
    assert parent.window_of(sub2) == (slice(307, 339), slice(111, 160))
    # and the parent's grid recovered from the subset's coordinates alone is the subset
    bare = xr.Dataset(coords={"y": sub.y, "x": sub.x})
    assert Region.from_dataset(bare).bbox == sub.bbox


def test_window_of_refuses_unaligned_grids():
    parent = Region.named("PT")
    with pytest.raises(GridMismatchError, match="aligned sub-grid"):
        parent.window_of(Region.from_shape("off", -9.005, 41.0, 0.01, 10, 10))
    with pytest.raises(GridMismatchError):
        parent.window_of(Region.from_shape("px", -9.0, 41.0, 0.02, 10, 10))


@pytest.mark.parametrize("xs, ys, match", [
    ([0.5, 0.4, 0.3], [1.5, 1.4, 1.3], "x coordinates must be finite and run strictly west to east"),
    ([0.5, 0.6, 0.7], [1.3, 1.4, 1.5], "north to south"),
    ([0.5, 0.6, 0.75], [1.5, 1.4, 1.3], "irregular"),
    ([0.5], [1.5, 1.4], "a grid needs 2"),
])
def test_from_dataset_refuses_bad_axes(xs, ys, match):
    with pytest.raises(InvalidRegionError, match=match):
        Region.from_dataset(xr.Dataset(coords={"y": ys, "x": xs}))


def test_rowcol_inverse_of_centres():
    r = Region.named("PT")
    rows, cols = r.rowcol(r.y[[0, 10, 799]], r.x[[0, 5, 399]])
    assert rows.tolist() == [0, 10, 799]
    assert cols.tolist() == [0, 5, 399]


def test_json_round_trip(tmp_path):
    r = Region("MY", (1.5, -3.25, 2.75, -1.0), 0.005)
    p = r.to_json(tmp_path)
    assert p.name == "R_MY.json"
    data = json.loads(p.read_text())
    assert data == {"name": "MY", "bbox": [1.5, -3.25, 2.75, -1.0], "pixel_size": 0.005}
    r2 = Region.from_json(p)
    assert r2 == r
    assert r2.shape == r.shape
    assert Region.resolve(p) == r
    assert Region.resolve("PI") == Region.named("PI")


def test_coords_dataset_has_crs_and_transform():
    r = Region.from_shape("T", 10.0, 20.32, 0.01, 32, 64)
    ds = r.coords_dataset(time=np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"))
    assert ds.sizes == {"y": 32, "x": 64, "time": 2}
    assert ds.rio.crs.to_epsg() == 4326
    assert Affine(*ds.rio.transform()[:6]).almost_equals(r.transform, precision=1e-9)
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    assert ds["x"].attrs["units"] == "degrees_east"
    assert Region.from_dataset(ds) == r


def test_from_dataset_without_attrs_infers_grid():
    r = Region.from_shape("T", 10.0, 20.32, 0.01, 32, 64)
    ds = r.coords_dataset()
    ds.attrs.clear()
    r2 = Region.from_dataset(ds)
    assert r2.shape == r.shape
    assert r2.transform.almost_equals(r.transform, precision=1e-9)


def test_from_shape_guards_against_arange_float_error():
    # arange(10, 10.64, 0.01) has 65 elements: the footgun from_shape avoids
    assert len(np.arange(10.0, 10.64, 0.01)) == 65
    r = Region.from_shape("T", 10.0, 20.32, 0.01, 32, 64)
    assert r.shape == (32, 64)
    np.testing.assert_allclose(r.x, 10.005 + 0.01 * np.arange(64), atol=1e-9)


def test_subset_is_aligned():
    r = Region.named("PT")
    s = r.subset("PT_sub", 100, 228, 50, 306)
    assert s.shape == (128, 256)
    np.testing.assert_allclose(s.x, r.x[50:306], atol=1e-9)
    np.testing.assert_allclose(s.y, r.y[100:228], atol=1e-9)


def test_check_same_grid():
    a = Region.named("PT")
    a.check_same_grid(Region.named("PT"))
    with pytest.raises(GridMismatchError, match="different grids"):
        a.check_same_grid(Region.named("PI"))


@pytest.mark.parametrize(
    ("payload", "field", "match"),
    [
        ({"name": "X", "bbox": [5, 0, 1, 1], "pixel_size": 0.01}, "bbox", "left"),
        ({"name": "X", "bbox": [0, 1, 1, 1], "pixel_size": 0.01}, "bbox", "bottom"),
        ({"name": "X", "bbox": [0, 0, 1, 1], "pixel_size": 0}, "pixel_size", "> 0"),
        ({"name": "X", "bbox": [0, 0, 1, 1], "pixel_size": -0.1}, "pixel_size", "> 0"),
        ({"name": "X", "bbox": [0, -95, 1, 1], "pixel_size": 0.01}, "bbox", "latitudes"),
        ({"name": "X", "bbox": [0, 0, 1, 91], "pixel_size": 0.01}, "bbox", "latitudes"),
        ({"bbox": [0, 0, 1, 1], "pixel_size": 0.01}, "name", "missing"),
        ({"name": "X", "pixel_size": 0.01}, "bbox", "missing"),
        ({"name": "X", "bbox": [0, 0, 1, 1]}, "pixel_size", "missing"),
        ({"name": "X", "bbox": [0, 0, 1], "pixel_size": 0.01}, "bbox", "left, bottom"),
        ({"name": "X", "bbox": [0, 0, "a", 1], "pixel_size": 0.01}, "bbox", "number"),
        ({"name": "X", "bbox": [0, 0, 1, 1], "pixel_size": "0.01"}, "pixel_size", "number"),
        ({"name": "../evil", "bbox": [0, 0, 1, 1], "pixel_size": 0.01}, "name", "separator"),
    ],
)
def test_bad_json_names_file_and_field(tmp_path, payload, field, match):
    p = tmp_path / "R_bad.json"
    p.write_text(json.dumps(payload))
    with pytest.raises(InvalidRegionError, match=match) as info:
        Region.from_json(p)
    assert str(p) in str(info.value)
    assert info.value.field == field
    assert f"'{field}'" in str(info.value)


def test_malformed_json(tmp_path):
    p = tmp_path / "R_broken.json"
    p.write_text('{"name": "X", "bbox": [0, 0, 1, 1],')
    with pytest.raises(InvalidRegionError, match="malformed JSON") as info:
        Region.from_json(p)
    assert str(p) in str(info.value)


def test_not_an_object(tmp_path):
    p = tmp_path / "R_list.json"
    p.write_text("[1, 2, 3]")
    with pytest.raises(InvalidRegionError, match="JSON object"):
        Region.from_json(p)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidRegionError, match="not found"):
        Region.from_json(tmp_path / "R_nope.json")


def test_unknown_name():
    with pytest.raises(InvalidRegionError, match="unknown region 'XX'"):
        Region.named("XX")


def test_constructor_validates():
    with pytest.raises(InvalidRegionError, match="left"):
        Region("X", (1, 0, 0, 1), 0.1)


# -- inputs bounded before allocation (issue 14, item 7) --------------------------------
def test_huge_region_is_refused_quickly(tmp_path, monkeypatch):
    import time

    path = tmp_path / "R_huge.json"
    path.write_text(json.dumps({"name": "huge", "bbox": [113, -27, 154, -10], "pixel_size": 1e-9}))
    t0 = time.perf_counter()
    with pytest.raises(InvalidRegionError, match=r"exceeds the limit of 1,000,000,000 pixels.*FIRESMOKE_MAX_REGION_PIXELS") as info:
        Region.from_json(path)
    assert time.perf_counter() - t0 < 0.5
    assert info.value.path == str(path)
    with pytest.raises(InvalidRegionError, match="exceeds the limit"):
        Region("tiny", (0.0, 0.0, 1.0, 1.0), 5e-324)  # denormal: inf pixels, no OverflowError
    # the limit is configurable; AU is 1700 x 4100 = 6,970,000 pixels
    monkeypatch.setenv("FIRESMOKE_MAX_REGION_PIXELS", "6969999")
    with pytest.raises(InvalidRegionError, match="limit of 6,969,999 pixels"):
        Region.named("AU")
    monkeypatch.setenv("FIRESMOKE_MAX_REGION_PIXELS", "6970000")
    assert Region.named("AU").shape == (1700, 4100)
    monkeypatch.setenv("FIRESMOKE_MAX_REGION_PIXELS", "lots")
    with pytest.raises(InvalidRegionError, match="FIRESMOKE_MAX_REGION_PIXELS must be a positive integer"):
        Region.named("PT")


def test_deeply_nested_json_is_refused_without_recursion_error(tmp_path):
    path = tmp_path / "R_deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InvalidRegionError, match="nested 100000 levels deep") as info:
        Region.from_json(path)
    assert info.value.path == str(path)
    # brackets inside strings do not count
    ok = tmp_path / "R_ok.json"
    ok.write_text(json.dumps({"name": "[[[[" * 20, "bbox": [0, 0, 1, 1], "pixel_size": 0.5}))
    assert Region.from_json(ok).shape == (2, 2)


def test_oversized_json_is_refused(tmp_path):
    path = tmp_path / "R_big.json"
    path.write_text(json.dumps({"name": "b", "bbox": [0, 0, 1, 1], "pixel_size": 0.5, "pad": "x" * (1 << 20)}))
    with pytest.raises(InvalidRegionError, match="larger than 1048576 bytes"):
        Region.from_json(path)


@pytest.mark.parametrize("key", ["crs", "resolution"])
def test_unknown_keys_are_refused(tmp_path, key):
    path = tmp_path / "R_k.json"
    path.write_text(json.dumps({"name": "k", "bbox": [0, 0, 1, 1], "pixel_size": 0.5, key: "EPSG:3857"}))
    with pytest.raises(InvalidRegionError, match="unknown key") as info:
        Region.from_json(path)
    assert info.value.field == key and info.value.path == str(path)
    if key == "crs":
        assert "EPSG:4326" in str(info.value)
