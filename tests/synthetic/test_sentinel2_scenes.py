"""Synthetic Sentinel-2 writer: layout, determinism, georeferencing, physics, STAC/COG."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from pyproj import Transformer

from firesmoke.synthetic.s2_scenes import generate_scenes
from firesmoke.synthetic.sentinel2 import (
    VISIBLE_OPACITY,
    Site,
    generate_chips,
    utm_epsg,
)

BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
SITES = [Site("10234", 6.95, 51.45), Site("987654", 147.3, -42.9), Site("55021", -8.6, 41.2)]


@pytest.fixture(scope="module")
def chips(tmp_path_factory):
    return generate_chips(tmp_path_factory.mktemp("chips"), 6, 4, seed=7, sites=SITES)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return generate_scenes(
        tmp_path_factory.mktemp("scenes"), n_scenes=2, size=256, n_sites=3, seed=3, blocksize=128
    )


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_utm_epsg_independent_formula():
    # zone 32 N covers 6..12 E; zone 55 S covers 144..150 E; zone 29 N covers -12..-6 E
    assert utm_epsg(6.95, 51.45) == 32632
    assert utm_epsg(147.3, -42.9) == 32755
    assert utm_epsg(-8.6, 41.2) == 32629
    assert utm_epsg(-180.0, 0.0) == 32601
    assert utm_epsg(179.99, 10.0) == 32660


def test_chip_determinism(tmp_path):
    a = generate_chips(tmp_path / "a", 3, 2, seed=11)
    b = generate_chips(tmp_path / "b", 3, 2, seed=11)
    c = generate_chips(tmp_path / "c", 3, 2, seed=12)
    ta, tb, tc = (
        _tree_bytes(tmp_path / "a"),
        _tree_bytes(tmp_path / "b"),
        _tree_bytes(tmp_path / "c"),
    )
    assert len(ta) == 5 + 3  # 5 images, 3 label files
    assert ta == tb
    assert ta != tc
    for ma, mb in zip(a.masks, b.masks, strict=True):
        np.testing.assert_array_equal(ma, mb)
    assert [p.name for p in a.paths] != [p.name for p in c.paths]


def test_chip_layout_and_names(chips):
    root = chips.root
    assert sorted(p.name for p in (root / "positive").iterdir()) == sorted(
        p.name for p in chips.positives
    )
    assert sorted(p.name for p in (root / "negative").iterdir()) == sorted(
        p.name for p in chips.negatives
    )
    assert len(chips.positives) == 6 and len(chips.negatives) == 4
    pattern = r"^\d{4,6}_\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}_\d+\.tif$"
    for p in chips.paths:
        assert ":" not in p.name
        assert re.match(pattern, p.name), p.name
    # labels: one per positive, named <image-stem>_features.json
    assert [lp.name for lp in chips.labels] == [p.stem + "_features.json" for p in chips.positives]
    assert sorted(p.name for p in (root / "labels").iterdir()) == sorted(
        lp.name for lp in chips.labels
    )
    # some chips are undersized, none oversized
    shapes = [s.shape for s in chips.specs]
    assert any(s != (120, 120) for s in shapes)
    assert all(117 <= h <= 120 and 117 <= w <= 120 for h, w in shapes)


def test_chip_geotiff_contents_and_georeference(chips):
    for spec in chips.specs:
        with rasterio.open(spec.path) as src:
            assert src.count == 13
            assert src.dtypes == ("uint16",) * 13
            assert src.descriptions == BANDS
            assert (src.height, src.width) == spec.shape
            assert src.res == (10.0, 10.0)
            site = spec.site
            assert src.crs.to_epsg() == utm_epsg(site.lon, site.lat)
            # the emitter lies inside the chip, near its centre
            east, north = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True).transform(
                site.lon, site.lat
            )
            row, col = src.index(east, north)
            assert 40 <= row <= 80 and 40 <= col <= 80
            data = src.read()
        assert data.min() >= 1  # 0 is reserved for nodata
        np.testing.assert_array_equal(data, chips.render(chips.specs.index(spec)).image)


def test_label_json_is_legacy_label_studio(chips):
    for lp, spec in zip(chips.labels, chips.specs, strict=False):
        doc = json.loads(lp.read_text())
        assert doc["data"]["image"].endswith(spec.path.stem + ".png")
        assert "annotations" not in doc
        results = doc["completions"][0]["result"]
        assert 1 <= len(results) <= 2
        for r in results:
            pts = np.array(r["value"]["points"], dtype=float)
            assert pts.ndim == 2 and pts.shape[1] == 2 and len(pts) >= 3
            assert pts.min() >= 0 and pts.max() <= 100
            assert r["type"] == "polygonlabels"


def test_truth_mask_is_all_touched_rasterisation_of_polygons(chips):
    """Independent of firesmoke.io: rasterio all-touched on a pixel -> percent transform."""
    from affine import Affine
    from rasterio import features

    for i, lp in enumerate(chips.labels):
        h, w = chips.specs[i].shape
        doc = json.loads(lp.read_text())
        shapes = []
        for r in doc["completions"][0]["result"]:
            ring = [tuple(p) for p in r["value"]["points"]]
            shapes.append({"type": "Polygon", "coordinates": [[*ring, ring[0]]]})
        ref = features.rasterize(
            shapes,
            out_shape=(h, w),
            transform=Affine(100 / w, 0, 0, 0, 100 / h, 0),
            all_touched=True,
        ).astype(bool)
        np.testing.assert_array_equal(chips.masks[i], ref)
        assert chips.masks[i].shape == (h, w)
    for i in range(len(chips.positives), len(chips.paths)):
        assert not chips.masks[i].any()


def test_labels_approximate_the_physical_plume(chips):
    for i in range(len(chips.positives)):
        layers = chips.render(i)
        visible = layers.plume_opacity * (0.490 / 0.443) ** -1.3 >= VISIBLE_OPACITY
        mask = chips.masks[i]
        assert visible.sum() >= 15
        inter = (visible & mask).sum()
        assert inter / visible.sum() > 0.95  # labels cover the visible smoke
        assert inter / (visible | mask).sum() > 0.5  # and are not much larger


def test_plume_physics(chips):
    for i in range(len(chips.positives)):
        L = chips.render(i)
        img, free = L.image.astype(float), L.plume_free.astype(float)
        spec = chips.specs[i]
        sx, sy = spec.site_xy
        near = L.plume_opacity > 0.2
        assert near.any()
        # pixels near the source are part of the plume
        yy, xx = np.mgrid[0 : spec.shape[0], 0 : spec.shape[1]] + 0.5
        assert (near & (np.hypot(xx - sx, yy - sy) < 3)).any()
        diff = img - free
        # brighter in the blue near the source; strongest at short wavelengths, weak in SWIR
        gain = diff[:, near].mean(axis=1)
        assert gain[1] > 300  # B02
        assert gain[0] > gain[3] > gain[7]  # B01 > B04 > B08
        assert abs(gain[11]) < 0.5 * gain[1] and abs(gain[12]) < 0.5 * gain[1]
        np.testing.assert_array_equal(img[10], free[10])  # cirrus band unaffected
        # outside the plume nothing changes
        np.testing.assert_array_equal(img[:, L.plume_opacity == 0], free[:, L.plume_opacity == 0])
    for i in range(len(chips.positives), len(chips.paths)):
        L = chips.render(i)
        np.testing.assert_array_equal(L.image, L.plume_free)
        assert not L.plume_opacity.any()


def test_surfaces_and_distractors(tmp_path):
    cs = generate_chips(tmp_path, 4, 8, seed=2)
    veg = water = 0
    cloud_seen = False
    for i in range(len(cs.paths)):
        L = cs.render(i)
        s = L.surface
        ndvi = (s[7] - s[3]) / (s[7] + s[3])
        veg += int((ndvi > 0.6).sum())
        water += int(((s[7] < 0.03) & (s[2] > s[7])).sum())  # dark NIR, green above NIR
        thick = L.cloud_opacity > 0.8
        if thick.any():
            cloud_seen = True
            img = L.image.astype(float)
            # natural clouds are bright in every band, SWIR and cirrus included
            assert (
                img[1, thick].mean() > 4000
                and img[11, thick].mean() > 3000
                and img[10, thick].mean() > 1000
            )
        smoke = (L.plume_opacity > 0.4) & (L.cloud_opacity == 0)
        if smoke.any():
            assert L.image[10, smoke].mean() < 300  # smoke: dark in B10, unlike clouds
            assert L.image[11, smoke].mean() < L.image[1, smoke].mean() * 3
    assert veg > 1000 and water > 0 and cloud_seen


def test_chips_with_given_sites_cycle_through_them(chips):
    assert [s.site.site_id for s in chips.specs[:3]] == ["10234", "987654", "55021"]
    assert chips.specs[1].epsg == 32755


def test_scene_determinism(tmp_path):
    generate_scenes(tmp_path / "a", n_scenes=1, size=128, n_sites=2, seed=5)
    generate_scenes(tmp_path / "b", n_scenes=1, size=128, n_sites=2, seed=5)
    generate_scenes(tmp_path / "c", n_scenes=1, size=128, n_sites=2, seed=6)
    ta, tb = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert len(ta) == 13 + 3  # 13 COGs, item, items.json, catalog.json
    assert ta == tb
    assert ta != _tree_bytes(tmp_path / "c")


def test_scene_files_are_cogs(scenes):
    assert len(scenes.band_paths) == 2
    for files in scenes.band_paths:
        assert list(files) == list(BANDS)
        for b, p in files.items():
            with rasterio.open(p) as src:
                assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
                assert src.profile["tiled"] and src.block_shapes[0] == (128, 128)
                assert src.overviews(1)  # 256 px with 128 px tiles has an overview
                assert src.count == 1 and src.dtypes[0] == "uint16"
                assert src.crs.to_epsg() == scenes.epsg
                assert src.transform == scenes.transform
                assert src.descriptions == (b,)


def test_scene_stac_items(scenes):
    for path, when in zip(scenes.item_paths, scenes.times, strict=True):
        raw = json.loads(path.read_text())
        props = raw["properties"]
        assert props["proj:code"] == f"EPSG:{scenes.epsg}" and props["proj:epsg"] == scenes.epsg
        assert props["proj:shape"] == [256, 256]
        assert props["proj:transform"][:6] == list(scenes.transform)[:6]
        left, top = scenes.transform.c, scenes.transform.f
        assert props["proj:bbox"] == [left, top - 2560, left + 2560, top]
        for b in BANDS:
            asset = raw["assets"][b]
            assert asset["href"] == f"./{b}.tif"  # relative to the item file
            assert asset["eo:bands"][0]["name"] == b
            assert asset["eo:bands"][0]["center_wavelength"] > 0.4
        item = pystac.Item.from_file(str(path))
        assert item.datetime.replace(tzinfo=None) == when
        assert (
            Path(item.assets["B02"].get_absolute_href())
            == scenes.band_paths[scenes.item_paths.index(path)]["B02"].resolve()
        )
        # footprint contains every site
        lon0, lat0, lon1, lat1 = item.bbox
        assert all(
            lon0 < lo < lon1 and lat0 < la < lat1
            for lo, la in zip(scenes.sites.lon, scenes.sites.lat, strict=True)
        )
    cat = pystac.Catalog.from_file(str(scenes.catalog_path))
    assert sorted(i.id for i in cat.get_items(recursive=True)) == sorted(
        p.stem for p in scenes.item_paths
    )
    coll = json.loads(scenes.collection_path.read_text())
    assert coll["type"] == "FeatureCollection" and len(coll["features"]) == 2
    href = coll["features"][0]["assets"]["B03"]["href"]
    assert (scenes.collection_path.parent / href).resolve() == scenes.band_paths[0]["B03"].resolve()


def test_scene_sites_and_truth(scenes):
    s = scenes.sites
    assert len(s) == 3 and s.site_id.str.fullmatch(r"\d{4,6}").all()
    to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{scenes.epsg}", always_xy=True)
    for _, r in s.iterrows():
        x, y = to_utm.transform(r.lon, r.lat)
        col, row = ~scenes.transform @ (x, y)
        assert math.isclose(col, r.col, abs_tol=1e-3) and math.isclose(row, r.row, abs_tol=1e-3)
    assert scenes.active.shape == (2, 3) and scenes.active.any(axis=1).all()
    for t, mask in enumerate(scenes.masks):
        assert mask.shape == (256, 256) and mask.dtype == bool
        for j in range(3):
            r, c = int(s.row[j]), int(s.col[j])
            if scenes.active[t, j]:  # an active source is inside its visible plume
                assert mask[max(r - 3, 0) : r + 4, max(c - 3, 0) : c + 4].any()
