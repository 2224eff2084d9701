"""Fire events: components split on date jumps, sizes, areas, GeoJSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from firesmoke.events import find_events, label_events, pixel_areas_ha, write_events_geojson
from firesmoke.grid import Region


def reference_labels(burned, dates, k=2, jump=2.0, min_px=25):
    """Brute-force flood fill: the definition, written plainly."""
    H, W = burned.shape
    comp = -np.ones((H, W), int)
    n = 0
    for y in range(H):
        for x in range(W):
            if not burned[y, x] or comp[y, x] >= 0:
                continue
            stack = [(y, x)]
            comp[y, x] = n
            while stack:
                cy, cx = stack.pop()
                for yy in range(max(cy - k, 0), min(cy + k + 1, H)):
                    for xx in range(max(cx - k, 0), min(cx + k + 1, W)):
                        if burned[yy, xx] and comp[yy, xx] < 0 and abs(dates[yy, xx] - dates[cy, cx]) <= jump:
                            comp[yy, xx] = n
                            stack.append((yy, xx))
            n += 1
    sizes = np.bincount(comp[comp >= 0], minlength=n)
    out = np.zeros((H, W), int)
    nxt = 1
    mapping = {}
    for y in range(H):
        for x in range(W):
            c = comp[y, x]
            if c >= 0 and sizes[c] >= min_px:
                if c not in mapping:
                    mapping[c] = nxt
                    nxt += 1
                out[y, x] = mapping[c]
    return out


def test_split_on_date_jump_and_gap_bridging():
    burned = np.zeros((20, 30), bool)
    dates = np.full((20, 30), np.nan)
    burned[2:10, 2:12] = True
    dates[2:10, 2:7] = 100          # west half day 100
    dates[2:10, 7:12] = 110         # east half day 110: a jump of 10 days -> two events
    burned[12:18, 2:8] = True
    burned[12:18, 9:14] = True      # one-pixel gap at column 8: bridged
    dates[12:18, 2:14] = 200
    burned[0, 25] = True            # tiny: dropped
    dates[0, 25] = 5
    labels = label_events(burned, dates)
    assert labels.max() == 3
    assert len(np.unique(labels[2:10, 2:7])) == 1 and len(np.unique(labels[2:10, 7:12])) == 1
    assert labels[2, 2] != labels[2, 11]
    assert labels[12, 2] == labels[12, 13]
    assert labels[0, 25] == 0


def test_matches_brute_force_on_random_maps():
    rng = np.random.default_rng(0)
    burned = rng.random((40, 50)) < 0.45
    dates = rng.integers(100, 110, size=(40, 50)).astype(float)
    np.testing.assert_array_equal(label_events(burned, dates), reference_labels(burned, dates))


def test_pixel_area_matches_spherical_formula():
    r = Region.from_shape("T", 10.0, 40.0, 0.01, 3, 2)
    a = pixel_areas_ha(r.transform, r.shape)
    # authalic-sphere area of a 0.01 x 0.01 deg cell at ~40 N is about 0.853 km2 = 85.3 ha
    R = 6371007.2
    lat1, lat2 = np.deg2rad(39.99), np.deg2rad(40.0)
    expected = R**2 * np.deg2rad(0.01) * (np.sin(lat2) - np.sin(lat1)) / 1e4
    assert a[0, 0] == pytest.approx(expected, rel=5e-3)
    assert a.shape == (3, 2)
    assert a[0, 0] < a[2, 0]  # smaller toward the pole


def test_find_events_and_geojson(tmp_path):
    r = Region.from_shape("T", 10.0, 40.0, 0.01, 20, 20)
    burned = np.zeros(r.shape, bool)
    burned[5:15, 5:15] = True
    dates = np.where(burned, 180.0, np.nan)
    dates[5:15, 10:15] = 181.0
    labels, table = find_events(burned, dates, r.transform,
                                date_origin=np.datetime64("2020-01-01") - np.timedelta64(1, "D"))
    assert len(table) == 1
    row = table.iloc[0]
    assert row.n_pixels == 100
    assert str(row.first_date)[:10] == "2020-06-28" and str(row.last_date)[:10] == "2020-06-29"
    assert row.area_ha == pytest.approx(pixel_areas_ha(r.transform, r.shape)[5:15, 5:15].sum())
    p = write_events_geojson(labels, table, r.transform, tmp_path / "events.geojson")
    fc = json.loads(p.read_text())
    assert len(fc["features"]) == 1
    assert fc["features"][0]["properties"]["n_pixels"] == 100
    ring = np.array(fc["features"][0]["geometry"]["coordinates"][0])
    assert ring[:, 0].min() == pytest.approx(10.05) and ring[:, 0].max() == pytest.approx(10.15)
