"""Sentinel-2 readers: chips, labels, dataset index, STAC/COG scenes (all local, no network)."""

from __future__ import annotations

import copy
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
import stackstac
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.path import Path as MplPath

from firesmoke.errors import CorruptFileError, InputError, MissingLayerError, WrongProductError
from firesmoke.io.sentinel2.chips import (
    BANDS,
    SMOKE_BANDS,
    format_chip_name,
    open_chip,
    pad_to_size,
    parse_chip_name,
    read_chips,
)
from firesmoke.io.sentinel2.dataset import open_smoke_dataset, split_by_site
from firesmoke.io.sentinel2.labels import read_label_polygons, read_labels
from firesmoke.io.sentinel2.scenes import open_scene
from firesmoke.synthetic.s2_scenes import generate_scenes
from firesmoke.synthetic.sentinel2 import generate_chips


@pytest.fixture(scope="module")
def chips(tmp_path_factory):
    return generate_chips(tmp_path_factory.mktemp("chips"), 5, 4, seed=21)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return generate_scenes(
        tmp_path_factory.mktemp("scenes"),
        n_scenes=2,
        size=256,
        n_sites=2,
        seed=4,
        multiband=True,
        blocksize=128,
    )


def _rio_read(path):
    with rasterio.open(path) as src:
        return src.read(), src.transform, src.crs


# --------------------------------------------------------------------------- bands / names


def test_band_lists():
    assert BANDS == (
        "B01",
        "B02",
        "B03",
        "B04",
        "B05",
        "B06",
        "B07",
        "B08",
        "B8A",
        "B09",
        "B10",
        "B11",
        "B12",
    )
    assert SMOKE_BANDS == BANDS[:10] + BANDS[11:]
    assert len(SMOKE_BANDS) == 12 and "B10" not in SMOKE_BANDS


def test_chip_name_round_trip():
    t = pd.Timestamp("2019-06-01T10:40:21")
    name = format_chip_name("12345", t, 3)
    assert name == "12345_2019-06-01T10-40-21_3.tif"
    parsed = parse_chip_name(name)
    assert (parsed.site_id, parsed.time, parsed.index) == ("12345", t, 3)
    assert parse_chip_name("987_2020-01-02T03:04:05.tif").index is None
    for bad in (
        "foo.tif",
        "12345_2019-13-01T10-40-21_0.tif",
        "12345_2019-06-01_0.tif",
        "12345_2019-06-01T10-40-21_0.png",
    ):
        with pytest.raises(InputError):
            parse_chip_name(bad)


# --------------------------------------------------------------------------- chips


def test_pad_to_size_matches_numpy_edge_pad():
    rng = np.random.default_rng(0)
    for shape in [(13, 118, 120), (13, 120, 117), (2, 5, 3), (119, 119)]:
        a = rng.integers(0, 10000, size=shape).astype(np.uint16)
        th = 120 if shape[-1] > 10 else 7
        want = np.pad(
            a, [(0, 0)] * (a.ndim - 2) + [(0, th - shape[-2]), (0, th - shape[-1])], mode="edge"
        )
        got = pad_to_size(a, th)
        np.testing.assert_array_equal(got, want)
        assert got.dtype == a.dtype
    big = np.zeros((3, 130, 125))
    assert pad_to_size(big, 120) is big  # never cropped


def test_open_chip_round_trip(chips):
    for i, p in enumerate(chips.paths):
        raw, transform, crs = _rio_read(p)
        da = open_chip(p)
        assert da.dims == ("band", "y", "x")
        assert da.shape == (13, 120, 120)
        assert da.dtype == np.uint16
        assert list(da.band.values) == list(BANDS)
        assert da.rio.crs == crs and da.rio.crs.to_epsg() == chips.specs[i].epsg
        assert da.rio.transform() == transform
        want = np.pad(raw, [(0, 0), (0, 120 - raw.shape[1]), (0, 120 - raw.shape[2])], mode="edge")
        np.testing.assert_array_equal(da.values, want)
        assert da.attrs["original_shape"] == raw.shape[1:]
        # pixel centres, extended with constant spacing over the padding
        np.testing.assert_allclose(da.x.values, transform.c + 10 * (np.arange(120) + 0.5))
        np.testing.assert_allclose(da.y.values, transform.f - 10 * (np.arange(120) + 0.5))
        native = open_chip(p, pad_to=None)
        assert native.shape == raw.shape
        np.testing.assert_array_equal(native.values, raw)
        # rioxarray agrees on coordinates of the native chip
        np.testing.assert_allclose(
            native.x.values, native.rio.clip_box(*native.rio.bounds()).x.values
        )
    assert any(open_chip(p, pad_to=None).shape != (13, 120, 120) for p in chips.paths)


def test_read_chips_batch(chips):
    arr = read_chips(chips.paths)
    assert arr.shape == (len(chips.paths), 12, 120, 120) and arr.dtype == np.uint16
    for k, p in enumerate(chips.paths):
        np.testing.assert_array_equal(arr[k], open_chip(p).sel(band=list(SMOKE_BANDS)).values)
    np.testing.assert_array_equal(read_chips(chips.paths, max_workers=1), arr)


def _write_tif(path, count, driver="GTiff", h=10, w=10):
    with rasterio.open(
        path,
        "w",
        driver=driver,
        height=h,
        width=w,
        count=count,
        dtype="uint16",
        crs="EPSG:32631",
        transform=Affine(10, 0, 500000, 0, -10, 5000000),
    ) as dst:
        dst.write(np.ones((count, h, w), np.uint16))


def test_open_chip_errors(tmp_path, chips):
    missing = tmp_path / "nope.tif"
    with pytest.raises(InputError, match=r"nope\.tif"):
        open_chip(missing)
    text = tmp_path / "text.tif"
    text.write_text("this is not a tiff")
    with pytest.raises(CorruptFileError, match=r"text\.tif"):
        open_chip(text)
    good = chips.paths[0].read_bytes()
    for frac, name in ((0.5, "half.tif"), (0.05, "head.tif")):
        trunc = tmp_path / name
        trunc.write_bytes(good[: int(len(good) * frac)])
        with pytest.raises(CorruptFileError, match=name):
            open_chip(trunc)
    twelve = tmp_path / "twelve.tif"
    _write_tif(twelve, 12)
    with pytest.raises(WrongProductError, match=r"twelve.tif.*13.*found 12"):
        open_chip(twelve)
    png = tmp_path / "img.png"
    _write_tif(png, 3, driver="PNG")
    with pytest.raises(WrongProductError, match="not a GeoTIFF"):
        open_chip(png)
    with pytest.raises(MissingLayerError, match=r"twelve\.tif.*12 bands without names"):
        read_chips([twelve])  # 12 bands can be read only when the file names them


# --------------------------------------------------------------------------- labels


def _legacy(points_lists, image="/data/upload/x.png"):
    return {
        "data": {"image": image},
        "completions": [
            {
                "result": [
                    {"type": "polygonlabels", "value": {"points": pts, "polygonlabels": ["smoke"]}}
                ]
            }
            for pts in points_lists
        ],
    }


def _to_current(doc):
    doc = copy.deepcopy(doc)
    doc["annotations"] = doc.pop("completions")
    return doc


def _write_json(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_label_formats_agree(chips, tmp_path):
    for i, lp in enumerate(chips.labels):
        shape = chips.specs[i].shape
        legacy = read_labels(lp, shape)
        np.testing.assert_array_equal(legacy, chips.masks[i])
        doc = json.loads(lp.read_text())
        cur = _write_json(tmp_path / f"cur{i}.json", _to_current(doc))
        np.testing.assert_array_equal(read_labels(cur, shape), legacy)
        other = _legacy([[[0, 0], [10, 0], [0, 10]]], image="/data/upload/other.png")
        export = _write_json(tmp_path / f"export{i}.json", [_to_current(other), _to_current(doc)])
        np.testing.assert_array_equal(
            read_labels(export, shape, image=chips.positives[i].name), legacy
        )
        with pytest.raises(InputError, match="2 tasks"):
            read_labels(export, shape)
        assert legacy.any()


def test_label_union_of_completions_and_empty(tmp_path):
    a = [[10, 10], [30, 10], [30, 30], [10, 30]]
    b = [[60, 60], [90, 60], [90, 90]]
    both = read_labels(_write_json(tmp_path / "ab.json", _legacy([a, b])), (50, 50))
    only_a = read_labels(_write_json(tmp_path / "a.json", _legacy([a])), (50, 50))
    only_b = read_labels(_write_json(tmp_path / "b.json", _legacy([b])), (50, 50))
    np.testing.assert_array_equal(both, only_a | only_b)
    assert only_a.any() and only_b.any() and not (only_a & only_b).any()
    mixed = {
        "data": {},
        "completions": [{"result": [{"value": {"points": a}}]}],
        "annotations": [{"result": [{"value": {"points": b}}]}],
    }
    np.testing.assert_array_equal(
        read_labels(_write_json(tmp_path / "m.json", mixed), (50, 50)), both
    )
    empty = read_labels(
        _write_json(tmp_path / "e.json", {"data": {}, "completions": []}), (120, 120)
    )
    assert empty.shape == (120, 120) and empty.dtype == bool and not empty.any()
    choices = {"completions": [{"result": [{"type": "choices", "value": {"choices": ["smoke"]}}]}]}
    assert not read_labels(_write_json(tmp_path / "c.json", choices)).any()


def test_all_touched_semantics(tmp_path):
    # a sliver 0.1 % high across the image touches one row of pixels
    sliver = [[10.3, 20.1], [40.7, 20.1], [40.7, 20.2], [10.3, 20.2]]
    m = read_labels(_write_json(tmp_path / "s.json", _legacy([sliver])), (120, 120))
    want = np.zeros((120, 120), bool)
    want[24, 12:49] = True  # y 24.12..24.24 px, x 12.36..48.84 px
    np.testing.assert_array_equal(m, want)
    # a triangle: all-touched covers every pixel whose centre is inside, and only pixels
    # within one pixel of such a centre-inside region
    tri = np.array([[5.0, 7.0], [91.0, 33.0], [40.0, 95.0]])
    m = read_labels(_write_json(tmp_path / "t.json", _legacy([tri.tolist()])), (60, 80))
    yy, xx = np.mgrid[0:60, 0:80]
    centres = np.column_stack([(xx.ravel() + 0.5) / 80 * 100, (yy.ravel() + 0.5) / 60 * 100])
    inside = MplPath(tri).contains_points(centres).reshape(60, 80)
    assert (m >= inside).all() and m.sum() > inside.sum()
    from scipy.ndimage import binary_dilation

    assert not (m & ~binary_dilation(inside, np.ones((3, 3)))).any()
    # percent coordinates scale with the requested shape
    sq = [[0, 0], [50, 0], [50, 50], [0, 50]]
    p = _write_json(tmp_path / "q.json", _legacy([sq]))
    assert read_labels(p, (10, 10))[:5, :5].all()
    assert read_labels(p, (118, 120))[:59, :60].all()
    assert len(read_label_polygons(p)) == 1


@pytest.mark.parametrize(
    "content, exc, pattern",
    [
        ("{not json", CorruptFileError, "not valid JSON"),
        ("", CorruptFileError, "not valid JSON"),
        ("42", WrongProductError, "not a Label Studio task"),
        ("[]", WrongProductError, "not a Label Studio task"),
        ('{"data": {}}', InputError, "completions"),
        ('{"completions": {}}', InputError, "must be a list"),
        (
            '{"completions": [{"result": [{"type": "polygonlabels", "value": {}}]}]}',
            InputError,
            "points",
        ),
        (
            '{"completions": [{"result": [{"value": {"points": [[1, 2], [3, 4]]}}]}]}',
            InputError,
            "at least 3",
        ),
        (
            '{"completions": [{"result": [{"value": {"points": [[1, 2], [3, "a"], [5, 6]]}}]}]}',
            InputError,
            "pair of numbers",
        ),
        (
            '{"completions": [{"result": [{"value": {"points": [[1, 2], [3, NaN], [5, 6]]}}]}]}',
            InputError,
            "non-finite",
        ),
        (
            '{"completions": [{"result": [{"value": {"points": [[1, 2], [3, 1e300], [5, 6]]}}]}]}',
            InputError,
            "implausible",
        ),
        ('{"completions": [7]}', InputError, "result"),
    ],
)
def test_label_errors_name_the_file(tmp_path, content, exc, pattern):
    p = tmp_path / "bad_features.json"
    p.write_text(content)
    with pytest.raises(exc, match=pattern) as info:
        read_labels(p)
    assert "bad_features.json" in str(info.value)
    assert isinstance(info.value, InputError)


_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=5)
)
_json = st.recursive(
    _json_leaf,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=20,
)
_point = st.lists(
    st.floats(-200, 300) | st.integers(-200, 300) | _json_leaf, min_size=0, max_size=3
)
_result = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["polygonlabels", "choices", "polygon"]) | _json_leaf,
        "value": st.fixed_dictionaries(
            {}, optional={"points": st.lists(_point, max_size=6) | _json}
        )
        | _json,
    },
)
_task = st.fixed_dictionaries(
    {},
    optional={
        "data": st.fixed_dictionaries({}, optional={"image": st.text(max_size=8) | _json_leaf})
        | _json,
        "completions": st.lists(
            st.fixed_dictionaries({}, optional={"result": st.lists(_result, max_size=3) | _json})
            | _json,
            max_size=3,
        )
        | _json,
        "annotations": st.lists(
            st.fixed_dictionaries({"result": st.lists(_result, max_size=3)}), max_size=2
        )
        | _json,
    },
)


_valid_polygon = st.fixed_dictionaries(
    {
        "type": st.just("polygonlabels"),
        "value": st.fixed_dictionaries(
            {
                "points": st.lists(
                    st.tuples(st.floats(-50, 150), st.floats(-50, 150)), min_size=3, max_size=8
                )
            }
        ),
    }
)
_valid_task = st.fixed_dictionaries(
    {
        "data": st.fixed_dictionaries({"image": st.text(max_size=8)}),
        "completions": st.lists(
            st.fixed_dictionaries({"result": st.lists(_valid_polygon | _result, max_size=3)}),
            max_size=3,
        ),
    }
)


@pytest.mark.filterwarnings("error")  # e.g. rasterio skipping a shape must not go unnoticed
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=_valid_task | _valid_task.map(_to_current) | _task | st.lists(_task, max_size=3) | _json,
    shape=st.tuples(st.integers(1, 40), st.integers(1, 40)),
)
def test_read_labels_fuzz(doc, shape):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "fuzz.json"
        p.write_text(json.dumps(doc))
        try:
            m = read_labels(p, shape)
        except InputError as exc:
            assert "fuzz.json" in str(exc)
            return
        assert m.shape == shape and m.dtype == bool


# --------------------------------------------------------------------------- dataset


def test_open_smoke_dataset(chips, tmp_path):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(chips.root, root)
    (root / "positive" / "README.txt").write_text("notes")
    shutil.copy(chips.negatives[0], root / "negative" / "badname.tif")
    (root / "labels" / "99999_2020-01-01T00-00-00_0_features.json").write_text(
        json.dumps(_legacy([]))
    )
    with pytest.warns(UserWarning, match="skipped 3"):
        ds = open_smoke_dataset(root)
    skipped = sorted(Path(s.path).name for s in ds.skipped)
    assert skipped == ["99999_2020-01-01T00-00-00_0_features.json", "README.txt", "badname.tif"]
    assert all(s.reason for s in ds.skipped)
    idx = ds.index
    assert list(idx.columns) == ["path", "label", "site_id", "time", "index", "label_path"]
    assert len(ds) == len(chips.paths)
    assert idx.label.sum() == len(chips.positives)
    by_name = {Path(p).name: r for p, r in zip(idx.path, idx.itertuples(), strict=True)}
    for spec in chips.specs:
        r = by_name[spec.path.name]
        assert r.site_id == spec.site.site_id and r.time == pd.Timestamp(spec.time) and r.index == 0
        assert r.label == spec.label
        if spec.label:
            assert Path(r.label_path).name == spec.label_path.name
        else:
            assert r.label_path is None
    # masks padded like the images
    for i in range(len(ds)):
        k = [p.name for p in chips.paths].index(Path(idx.path[i]).name)
        np.testing.assert_array_equal(ds.mask(i), pad_to_size(chips.masks[k], 120))
        assert ds.chip(i).shape == (13, 120, 120)


def test_open_smoke_dataset_pairs_by_data_image_and_errors(chips, tmp_path):
    import shutil

    root = tmp_path / "ds2"
    shutil.copytree(chips.root, root)
    lp = root / "labels" / chips.labels[0].name
    lp.rename(
        root / "labels" / "task_1.json"
    )  # Label Studio export name; data.image names the image
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = open_smoke_dataset(root)
    assert ds.skipped == []
    row = ds.index[ds.index.path.str.endswith(chips.positives[0].name)]
    assert Path(row.label_path.iat[0]).name == "task_1.json"
    with pytest.raises(InputError, match="no 'positive/'"):
        open_smoke_dataset(tmp_path)
    with pytest.raises(InputError, match="not found"):
        open_smoke_dataset(tmp_path / "missing")


def test_split_by_site():
    rng = np.random.default_rng(1)
    sites = [str(1000 + k) for k in range(40)]
    rows = [
        (f"{s}_{k}.tif", int(rng.integers(0, 2)), s)
        for s in sites
        for k in range(int(rng.integers(1, 30)))
    ]
    index = pd.DataFrame(rows, columns=["path", "label", "site_id"])
    groups = split_by_site(index, (0.7, 0.15, 0.15), seed=3)
    assert groups == split_by_site(index, (0.7, 0.15, 0.15), seed=3)
    assert groups != split_by_site(index, (0.7, 0.15, 0.15), seed=4)
    flat = [s for g in groups for s in g]
    assert sorted(flat) == sorted(sites) and len(flat) == len(set(flat))
    counts = index.groupby("site_id").size()
    frac = np.array([counts[g].sum() for g in groups]) / len(index)
    np.testing.assert_allclose(frac, [0.7, 0.15, 0.15], atol=0.06)
    with pytest.raises(InputError):
        split_by_site(index, (0, 0))


def test_dataset_split_keeps_sites_together(tmp_path):
    cs = generate_chips(
        tmp_path, 6, 6, seed=5, sites=[(str(1000 + k), 5.0 + k, 50.0) for k in range(6)]
    )
    ds = open_smoke_dataset(tmp_path)
    parts = ds.split_by_site((0.5, 0.25, 0.25), seed=0)
    assert sum(len(p) for p in parts) == len(cs.paths)
    site_sets = [set(p.index.site_id) for p in parts]
    assert all(site_sets)  # every split gets at least one site
    assert (
        not (site_sets[0] & site_sets[1])
        and not (site_sets[0] & site_sets[2])
        and not (site_sets[1] & site_sets[2])
    )


# --------------------------------------------------------------------------- scenes


def test_open_scene_stackstac_equals_rasterio(scenes):
    arr = open_scene(scenes.item_paths, bands=BANDS, dtype="uint16", chunksize=128)
    assert arr.dims == ("time", "band", "y", "x")
    assert arr.dtype == np.uint16 and arr.shape == (2, 13, 256, 256)
    assert hasattr(arr.data, "dask") and arr.data.chunksize[-2:] == (128, 128)
    assert list(arr.band.values) == list(BANDS)
    assert arr.rio.crs.to_epsg() == scenes.epsg
    assert list(pd.DatetimeIndex(arr.time.values)) == [pd.Timestamp(t) for t in scenes.times]
    np.testing.assert_allclose(arr.x.values, scenes.transform.c + 10 * (np.arange(256) + 0.5))
    np.testing.assert_allclose(arr.y.values, scenes.transform.f - 10 * (np.arange(256) + 0.5))
    values = arr.values
    for t, files in enumerate(scenes.band_paths):
        for k, b in enumerate(BANDS):
            np.testing.assert_array_equal(values[t, k], _rio_read(files[b])[0][0])


def test_open_scene_float32_and_inputs(scenes):
    u16 = open_scene(scenes.item_paths, dtype="uint16").values
    f32 = open_scene(scenes.item_paths)  # default float32, smoke bands
    assert f32.dtype == np.float32 and list(f32.band.values) == list(SMOKE_BANDS)
    np.testing.assert_array_equal(f32.values, u16.astype(np.float32))
    for inp in (
        str(scenes.collection_path),
        scenes.catalog_path,
        [pystac.Item.from_file(str(p)) for p in scenes.item_paths],
        pystac.ItemCollection([pystac.Item.from_file(str(p)) for p in scenes.item_paths]),
    ):
        np.testing.assert_array_equal(open_scene(inp, dtype="uint16").values, u16)
    with pytest.raises(InputError, match="float32 or uint16"):
        open_scene(scenes.item_paths, dtype="float64")
    with pytest.raises(InputError, match="unknown"):
        open_scene(scenes.item_paths, bands=["B13"])


def test_open_scene_proj_code_only(scenes, tmp_path):
    items = []
    for p in scenes.item_paths:
        item = pystac.Item.from_file(str(p))
        item.properties.pop("proj:epsg", None)  # pystac migrates it away already
        items.append(item)
    assert "proj:epsg" not in items[0].to_dict()["properties"]
    # plain stackstac cannot pick a CRS from proj:code alone...
    with pytest.raises(ValueError, match="CRS"):
        stackstac.stack(items, assets=["B02"])
    # ...open_scene normalises it
    got = open_scene(items, dtype="uint16")
    want = open_scene(scenes.item_paths, dtype="uint16")
    np.testing.assert_array_equal(got.values, want.values)
    assert got.rio.crs.to_epsg() == scenes.epsg
    # a whole scene set written without proj:epsg works as well
    v2 = generate_scenes(tmp_path, n_scenes=1, size=64, n_sites=1, seed=1, proj_epsg=False)
    assert "proj:epsg" not in json.loads(v2.item_paths[0].read_text())["properties"]
    arr = open_scene(v2.item_paths, dtype="uint16")
    np.testing.assert_array_equal(arr.values[0, 1], _rio_read(v2.band_paths[0]["B02"])[0][0])


def test_open_scene_bbox(scenes):
    left, top = scenes.transform.c, scenes.transform.f
    bbox = (left + 400, top - 1500, left + 1200, top - 300)  # pixels rows 30..150, cols 40..120
    arr = open_scene(scenes.item_paths, bands=["B02", "B11"], bbox=bbox, dtype="uint16")
    assert arr.shape == (2, 2, 120, 80)
    assert arr.x.values[0] == left + 405 and arr.y.values[0] == top - 305
    full = _rio_read(scenes.band_paths[1]["B11"])[0][0]
    np.testing.assert_array_equal(arr.sel(band="B11").isel(time=1).values, full[30:150, 40:120])
    # lon/lat bounds around the first site
    s = scenes.sites.iloc[0]
    sub = open_scene(
        scenes.item_paths, bbox_latlon=(s.lon - 0.003, s.lat - 0.002, s.lon + 0.003, s.lat + 0.002)
    )
    assert 0 < sub.sizes["x"] < 256 and 0 < sub.sizes["y"] < 256
    assert sub.x.min() <= s.x <= sub.x.max() and sub.y.min() <= s.y <= sub.y.max()


def test_open_scene_dict_items_aliases_nodata(scenes, tmp_path):
    """Hand-made item dict: common-name asset keys, file:// hrefs, proj:code, nodata -> NaN."""
    data = _rio_read(scenes.band_paths[0]["B04"])[0][0].copy()
    data[:10, :20] = 0  # nodata corner
    cog = tmp_path / "red.tif"
    with rasterio.open(
        cog,
        "w",
        driver="COG",
        height=256,
        width=256,
        count=1,
        dtype="uint16",
        crs=f"EPSG:{scenes.epsg}",
        transform=scenes.transform,
        nodata=0,
    ) as dst:
        dst.write(data[None])
    raw = json.loads(scenes.item_paths[0].read_text())
    d = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "hand",
        "bbox": raw["bbox"],
        "geometry": raw["geometry"],
        "properties": {
            "datetime": raw["properties"]["datetime"],
            "proj:code": f"EPSG:{scenes.epsg}",
            "proj:shape": [256, 256],
            "proj:transform": list(scenes.transform)[:6],
        },
        "links": [],
        "assets": {
            "red": {"href": cog.resolve().as_uri(), "type": "image/tiff; application=geotiff"}
        },
    }
    arr = open_scene([d], bands=["B04"]).values[0, 0]
    assert np.isnan(arr[:10, :20]).all()
    np.testing.assert_array_equal(arr[10:], data[10:].astype(np.float32))
    assert (open_scene([d], bands=["B04"], dtype="uint16").values[0, 0] == data).all()
    with pytest.raises(WrongProductError, match="no asset for band B02"):
        open_scene([d], bands=["B02"])
    bad = copy.deepcopy(d)
    bad["assets"]["red"]["href"] = str(tmp_path / "gone.tif")
    with pytest.raises(InputError, match=r"gone\.tif"):
        open_scene([bad], bands=["B04"])


def test_open_scene_local_geotiffs(scenes):
    via_stac = open_scene(scenes.item_paths, dtype="uint16")
    local = open_scene(scenes.multiband_paths, dtype="uint16", chunksize=128)
    assert local.dims == ("time", "band", "y", "x") and hasattr(local.data, "dask")
    assert local.dtype == np.uint16 and list(local.band.values) == list(SMOKE_BANDS)
    assert list(pd.DatetimeIndex(local.time.values)) == [pd.Timestamp(t) for t in scenes.times]
    np.testing.assert_array_equal(local.values, via_stac.values)
    np.testing.assert_allclose(local.x.values, via_stac.x.values)
    assert local.rio.crs.to_epsg() == scenes.epsg
    f32 = open_scene(scenes.multiband_paths[:1], bands=["B8A"])
    assert f32.dtype == np.float32
    np.testing.assert_array_equal(f32.values[0, 0], via_stac.sel(band="B8A").values[0])
    left, top = scenes.transform.c, scenes.transform.f
    sub = open_scene(
        scenes.multiband_paths,
        bbox=(left + 400, top - 1500, left + 1200, top - 300),
        dtype="uint16",
    )
    np.testing.assert_array_equal(sub.values, via_stac.values[:, :, 30:150, 40:120])
    with pytest.raises(InputError, match="resolution"):
        open_scene(scenes.multiband_paths, resolution=20)
