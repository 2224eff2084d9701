"""Fire events: components split on date jumps, sizes, areas, GeoJSON."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from firesmoke.burned.events import (
    find_events,
    label_events,
    pixel_areas_ha,
    split_fires,
    write_events_geojson,
)
from firesmoke.grid import Region


def reference_labels(burned, dates, k=2, jump=2.0, min_px=25):
    """Brute-force flood fill of the "linked" rule: the definition, written plainly."""
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
    np.testing.assert_array_equal(label_events(burned, dates, rule="linked"),
                                  reference_labels(burned, dates))


def _flood4(mask):
    """4-connected components of ``mask`` by plain flood fill (label 1..n, 0 outside)."""
    H, W = mask.shape
    lab = np.zeros((H, W), int)
    n = 0
    for y in range(H):
        for x in range(W):
            if mask[y, x] and lab[y, x] == 0:
                n += 1
                lab[y, x] = n
                stack = [(y, x)]
                while stack:
                    cy, cx = stack.pop()
                    for yy, xx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                        if 0 <= yy < H and 0 <= xx < W and mask[yy, xx] and lab[yy, xx] == 0:
                            lab[yy, xx] = n
                            stack.append((yy, xx))
    return lab


def _dilate_2x2(mask):
    """Convolution with a 2 x 2 box (output pixel covers itself and its lower-right
    neighbours), written as loops."""
    H, W = mask.shape
    out = np.zeros_like(mask)
    for y in range(H):
        for x in range(W):
            out[y, x] = mask[y:y + 2, x:x + 2].any()
    return out


def split_fires_reference(burned, dates, days=2.0, min_px=25):
    """banet.md's description of fire_split 0.1.9 split_fires, step by step."""
    def spatial(mask):
        lab = _flood4(_dilate_2x2(mask)) * mask
        sizes = np.bincount(lab.ravel())
        return np.where((sizes[lab] >= min_px) & (lab > 0), lab, 0)

    parts = []
    comp = spatial(burned)
    for c in np.unique(comp[comp > 0]):
        inside = comp == c
        distinct = sorted(set(dates[inside].tolist()))
        cuts = [a for a, b in itertools.pairwise(distinct) if b - a > days]
        bounds = [-np.inf, *cuts, np.inf]
        for lo, hi in itertools.pairwise(bounds):
            part = inside & (dates > lo) & (dates <= hi)
            sub = spatial(part)
            parts.extend(sub == s for s in np.unique(sub[sub > 0]))
    out = np.zeros(burned.shape, int)
    for k, p in enumerate(sorted(parts, key=lambda p: np.flatnonzero(p.ravel())[0]), start=1):
        out[p] = k
    return out


def rules_differ_case():
    """A map where the reference rule and the "linked" rule give different events."""
    burned = np.zeros((40, 30), bool)
    dates = np.full((40, 30), np.nan)
    # A (days 101 | 100) touching B (day 103): the linked rule cuts the 100-103 links
    # (3 days), the reference sees dates 100, 101, 103 (no gap > 2): one event
    burned[0:10, 0:11] = True
    dates[0:10, 0:3] = 101
    dates[0:10, 3:6] = 100
    dates[0:10, 6:11] = 103
    # C and D (same day) touch only diagonally 2 px apart: linked (Chebyshev 2) joins
    # them, the reference's 2 x 2 dilation does not
    burned[20:26, 0:6] = True
    burned[27:33, 7:13] = True
    dates[20:33, 0:13] = 200
    return burned, dates


def test_reference_and_linked_rules_differ_on_a_constructed_case():
    burned, dates = rules_differ_case()
    ref = label_events(burned, dates)  # default: the reference rule
    np.testing.assert_array_equal(ref, split_fires_reference(burned, dates))
    np.testing.assert_array_equal(ref, split_fires(burned, dates))
    linked = label_events(burned, dates, rule="linked")
    np.testing.assert_array_equal(linked, reference_labels(burned, dates))
    # reference: A+B one event, C and D two; linked: A and B two, C+D one
    assert ref.max() == 3 and linked.max() == 3
    assert ref[0, 0] == ref[0, 10] and linked[0, 0] != linked[0, 10]
    assert ref[25, 5] != ref[27, 7] and linked[25, 5] == linked[27, 7]


def test_reference_rule_splits_on_gaps_in_the_date_list_and_regroups():
    burned = np.zeros((12, 40), bool)
    dates = np.full((12, 40), np.nan)
    burned[1:11, 0:36] = True
    dates[1:11, 0:12] = 50          # a date gap 50 -> 60 -> 61 ... cut between 50 and 60
    dates[1:11, 12:24] = 60
    dates[1:11, 24:36] = 61
    dates[5, 30] = 50               # a lone pixel of day 50 inside the later fire
    lab = split_fires(burned, dates)
    np.testing.assert_array_equal(lab, split_fires_reference(burned, dates))
    assert lab.max() == 2
    assert lab[1, 0] == 1 and lab[1, 12] == lab[1, 35] == 2
    assert lab[5, 30] == 0          # its day-50 part is a separate part of 1 px: dropped


def test_reference_rule_matches_step_by_step_description_on_random_maps():
    rng = np.random.default_rng(3)
    for _ in range(3):
        burned = rng.random((36, 44)) < 0.5
        dates = rng.choice([100.0, 101.0, 102.0, 106.0, 107.0, 115.0], size=burned.shape)
        np.testing.assert_array_equal(split_fires(burned, dates, min_size_pixels=10),
                                      split_fires_reference(burned, dates, min_px=10))


def test_find_events_takes_a_confidence_map():
    r = Region.from_shape("T", 10.0, 40.0, 0.01, 20, 20)
    conf = np.zeros(r.shape)
    conf[2:12, 2:12] = 0.7
    conf[2:12, 7] = 0.45            # below 0.5: a one-pixel gap, still bridged by the 2 x 2 box
    conf[15:19, 0:20] = 0.49        # below 0.5 everywhere: no event
    dates = np.full(r.shape, 200.0)
    _labels, table = find_events(conf, dates, r.transform)
    assert len(table) == 1 and table.iloc[0].n_pixels == 90
    with pytest.raises(ValueError, match="event rule"):
        label_events(conf > 0.5, dates, rule="nope")


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
