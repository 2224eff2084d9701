"""Sentinel-2 L2A stacks (12 bands, no B10; named bands, aliases) through the smoke models,
and inputs without the model's bands refused before any model is built."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from firesmoke.errors import MissingLayerError
from firesmoke.io.sentinel2.chips import BANDS
from firesmoke.smoke import classify_chips, segment_scene
from firesmoke.synthetic.sentinel2 import generate_chips

#: how the L2A stack spells its bands: B8 without the zero, lower case, common names
SPELL = {"B08": "B8", "B04": "b04", "B8A": "b8a", "B02": "B2", "B11": "swir16"}
L2A_ORDER = ("B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12", "B01", "B09")
REAL_LIKE = ("TCI_R", "TCI_G", "TCI_B", "B8", "B12")  # the 5-band L2A file of issue 20


def _rewrite(src_path, dst_path, order, names):
    """The chip's data as another band stack, with band descriptions."""
    with rasterio.open(src_path) as src:
        data = src.read()
        profile = src.profile
    profile.update(count=len(order))
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write(np.stack([data[BANDS.index(b)] if b in BANDS else data[3] for b in order]))
        for i, n in enumerate(names, start=1):
            dst.set_band_description(i, n)
    return dst_path


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("l2a")
    chips = generate_chips(tmp / "chips", 2, 2, seed=31)
    l2a, five = [], []
    for p in chips.paths:
        l2a.append(_rewrite(p, tmp / f"l2a_{p.name}", L2A_ORDER, [SPELL.get(b, b) for b in L2A_ORDER]))
        five.append(_rewrite(p, tmp / f"five_{p.name}", ("B04", "B03", "B02", "B08", "B12"), REAL_LIKE))
    return [str(p) for p in chips.paths], [str(p) for p in l2a], [str(p) for p in five]


def test_l2a_chips_are_classified_like_the_13_band_chips(stacks):
    full, l2a, _ = stacks
    a = classify_chips(full, return_masks=True)  # the shipped small weights
    b = classify_chips(l2a, return_masks=True)
    np.testing.assert_array_equal(a["probability"].values, b["probability"].values)
    np.testing.assert_array_equal(a["mask_pixels"].values, b["mask_pixels"].values)
    assert np.isfinite(b["probability"]).all()


def test_l2a_scene_is_segmented_like_the_13_band_scene(stacks):
    full, l2a, _ = stacks
    a = segment_scene([full[0]], tile=128, step=112).compute()
    b = segment_scene([l2a[0]], tile=128, step=112).compute()
    np.testing.assert_array_equal(a.values, b.values)
    assert b.rio.crs is not None


def test_missing_bands_refused_at_once_before_any_model_is_built(stacks, monkeypatch):
    _, _, five = stacks

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built before the bands were checked")

    monkeypatch.setattr("firesmoke.smoke.chips.load_smoke_model", no_model)
    monkeypatch.setattr("firesmoke.smoke.scenes._tile_model", no_model)
    for call in (lambda: classify_chips(five), lambda: segment_scene([five[0]])):
        with pytest.raises(MissingLayerError) as err:
            call()
        msg = str(err.value)
        assert "missing: B01, B02, B03, B04, B05, B06, B07, B8A, B09, B11 " in msg
        assert "TCI_R, TCI_G, TCI_B, B8 (= B08), B12" in msg and "B10" not in msg.split(";")[0]


def test_real_l2a_sample_gets_one_clear_error(real_data):
    """A real 5-band L2A GeoTIFF, if the shared samples hold one."""
    found = sorted((real_data / "sentinel2").glob("*.tif")) if (real_data / "sentinel2").is_dir() else []
    if not found:
        pytest.skip("no real Sentinel-2 L2A sample in the shared data")
    with pytest.raises(MissingLayerError, match="Sentinel-2 bands missing"):
        classify_chips([str(found[0])])
