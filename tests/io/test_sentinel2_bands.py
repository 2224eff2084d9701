"""Sentinel-2 band names read from GeoTIFFs: aliases, tags, one error listing found and missing."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from firesmoke.errors import MissingLayerError
from firesmoke.io.sentinel2.bandnames import band_positions, canonical_band, file_band_names
from firesmoke.io.sentinel2.chips import BANDS, SMOKE_BANDS, read_chips
from firesmoke.io.sentinel2.scenes import geotiff_band_positions, open_scene


def _write(path, data, descriptions=None, tags=None):
    profile = {"driver": "GTiff", "height": data.shape[1], "width": data.shape[2],
               "count": data.shape[0], "dtype": "uint16", "crs": "EPSG:32629",
               "transform": from_origin(500000.0, 4500000.0, 10.0, 10.0)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i in range(data.shape[0]):
            if descriptions is not None and descriptions[i] is not None:
                dst.set_band_description(i + 1, descriptions[i])
            if tags is not None and tags[i] is not None:
                dst.update_tags(i + 1, **tags[i])
    return path


@pytest.mark.parametrize(("spelling", "band"), [
    ("B08", "B08"), ("B8", "B08"), ("b8", "B08"), ("b08", "B08"), ("B8A", "B8A"), ("b8a", "B8A"),
    ("B08A", "B8A"), ("B1", "B01"), ("b04", "B04"), ("B04_10m", "B04"), ("B12", "B12"),
    ("B10", "B10"), ("nir", "B08"), ("nir08", "B8A"), ("SWIR22", "B12"), ("red", "B04"),
    ("TCI_R", None), ("TCI", None), ("B13", None), ("B0", None), ("", None), (None, None),
    ("AOT", None), ("SCL", None),
])
def test_canonical_band(spelling, band):
    assert canonical_band(spelling) == band


def test_positions_by_name_any_order_and_one_error_listing_everything():
    names = ("B12", "b04", "B8", "B8A", "B02")
    assert band_positions(names, ("B02", "B04", "B08", "B8A", "B12")) == [4, 1, 2, 3, 0]
    with pytest.raises(MissingLayerError) as err:
        band_positions(("TCI_R", "TCI_G", "TCI_B", "B8", "B12"), SMOKE_BANDS, "l2a.tif")
    msg = str(err.value)
    assert "l2a.tif" in msg
    assert "missing: B01, B02, B03, B04, B05, B06, B07, B8A, B09, B11 " in msg
    assert "TCI_R, TCI_G, TCI_B, B8 (= B08), B12" in msg
    # 13 unnamed bands: the smoke data set's order; other counts without names: refused
    assert band_positions((None,) * 13, ("B8A", "B12")) == [8, 12]
    with pytest.raises(MissingLayerError, match="12 bands without names"):
        band_positions((None,) * 12, SMOKE_BANDS)


def test_names_from_descriptions_or_tags(tmp_path):
    data = np.arange(3 * 4 * 4, dtype=np.uint16).reshape(3, 4, 4)
    p = _write(tmp_path / "t.tif", data, descriptions=["B04", None, None],
               tags=[None, {"BANDNAME": "b8"}, {"name": "swir22"}])
    with rasterio.open(p) as src:
        assert file_band_names(src) == ("B04", "b8", "swir22")
    assert geotiff_band_positions(p, ("B08", "B12", "B04")) == [1, 2, 0]


def test_l2a_stack_reads_like_the_13_band_chip(tmp_path):
    rng = np.random.default_rng(0)
    full = rng.integers(0, 10000, size=(13, 24, 24), dtype=np.uint16)
    p13 = _write(tmp_path / "s13.tif", full)                       # unnamed: data set order
    order = [b for b in BANDS if b != "B10"][::-1]                 # 12 bands, reversed
    spell = {"B08": "B8", "B04": "b04", "B8A": "b8a", "B02": "blue"}
    p12 = _write(tmp_path / "s12.tif", full[[BANDS.index(b) for b in order]],
                 descriptions=[spell.get(b, b) for b in order])
    a = read_chips([p13], SMOKE_BANDS, pad_to=24)
    b = read_chips([p12], SMOKE_BANDS, pad_to=24)
    np.testing.assert_array_equal(a, b)
    sa = open_scene([str(p13)]).compute()
    sb = open_scene([str(p12)]).compute()
    np.testing.assert_array_equal(sa.values, sb.values)
    assert list(sb["band"].values) == list(SMOKE_BANDS)
    with pytest.raises(MissingLayerError, match="missing: B10"):
        read_chips([p12], BANDS, pad_to=24)
