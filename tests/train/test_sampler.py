"""Sample sampler over Zarr cubes: cell sums, burned-window preference, splits, chunk reads."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _banet_helpers import BANDS, make_arrays, write_pair

from firesmoke.errors import GridMismatchError, InputError
from firesmoke.models.normalization import BANET
from firesmoke.train.sampler import (
    BANetSamples,
    TrainingSampler,
    cell_sums,
    open_source,
    open_targets,
    time_split,
)


def plain_cell_sums(a: np.ndarray, cell):
    """Independent reference: pad to whole cells and reshape."""
    shape = tuple(-(-n // c) * c for n, c in zip(a.shape, cell, strict=True))
    pad = np.zeros(shape)
    cnt = np.zeros(shape, np.int64)
    f = np.isfinite(a)
    pad[: a.shape[0], : a.shape[1], : a.shape[2]] = np.where(f, a, 0)
    cnt[: a.shape[0], : a.shape[1], : a.shape[2]] = f
    ct, cy, cx = cell
    r = (shape[0] // ct, ct, shape[1] // cy, cy, shape[2] // cx, cx)
    return pad.reshape(r).sum((1, 3, 5)), cnt.reshape(r).sum((1, 3, 5))


@pytest.mark.parametrize("chunks", [(7, 13, 20), (16, 32, 32), (50, 50, 50)])
def test_cell_sums_match_numpy(chunks):
    rng = np.random.default_rng(1)
    a = rng.random((37, 45, 50))
    a[rng.random(a.shape) < 0.1] = np.nan
    arr = xr.DataArray(da.from_array(a, chunks=chunks), dims=("time", "y", "x"))
    s, n = cell_sums(arr, (8, 16, 16))
    rs, rn = plain_cell_sums(a, (8, 16, 16))
    np.testing.assert_allclose(s, rs, rtol=1e-12)
    np.testing.assert_array_equal(n, rn)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sampler")
    x, y = make_arrays(48, 96, 96, burns=((20, 8, 8, 12), (30, 60, 70, 10)))
    cube, tg = write_pair(tmp, "A", x, y)
    return {"cube": cube, "targets": tg, "x": x, "y": y, "tmp": tmp}


def test_targets_round_trip_and_source_checks(pair, tmp_path):
    tg = open_targets(pair["targets"])
    assert tg.dims == ("time", "y", "x")
    assert tg.data.chunksize == (8, 32, 32)  # same chunk grid as the cube
    np.testing.assert_array_equal(tg.values, pair["y"])
    src = open_source(pair["cube"], pair["targets"])
    assert src.shape == (48, 96, 96)
    # targets on another grid / lacking days are refused
    x2, y2 = make_arrays(48, 64, 64)
    _, tg2 = write_pair(tmp_path, "B", x2, y2)
    with pytest.raises(GridMismatchError):
        open_source(pair["cube"], tg2)
    with pytest.raises(InputError, match="lack"):
        open_source(pair["cube"], open_targets(pair["targets"]).isel(time=slice(0, 40)))
    with pytest.raises(InputError, match="not found"):
        open_source(pair["cube"], tmp_path / "nope.zarr")


def test_candidate_sums_are_exact(pair):
    s = TrainingSampler([open_source(pair["cube"], pair["targets"])], seq_len=16, patch=32,
                      stride=16, t_stride=8, threshold=10)
    c = s.candidates
    assert len(c) == 5 * 5 * 5  # t0 in 0..32 step 8, y0/x0 in 0..64 step 16
    y = pair["y"]
    for rec in c:
        t0, y0, x0 = rec["t0"], rec["y0"], rec["x0"]
        assert rec["burned"] == pytest.approx(y[t0 : t0 + 16, y0 : y0 + 32, x0 : x0 + 32].sum())
        assert rec["valid"] == pytest.approx(1.0)
    assert set(s.burned_ids) == set(np.flatnonzero(c["burned"] > 10))


def test_sampler_favours_burned_windows(pair):
    src = open_source(pair["cube"], pair["targets"])
    kw = dict(seq_len=16, patch=32, stride=16, t_stride=8, threshold=10)
    s = TrainingSampler([src], random_share=0.2, seed=3, **kw)
    base = len(s.burned_ids) / len(s)
    assert base < 0.3
    drawn = np.array([s.draw(k).burned > 10 for k in range(600)])
    expected = 0.8 + 0.2 * base
    assert abs(drawn.mean() - expected) < 0.06
    # random_share=1: burned windows only at their base rate
    u = TrainingSampler([src], random_share=1.0, seed=3, **kw)
    drawn_u = np.array([u.draw(k).burned > 10 for k in range(600)])
    assert abs(drawn_u.mean() - base) < 0.06
    # deterministic with the seed, order-independent; another seed differs
    again = TrainingSampler([src], random_share=0.2, seed=3, **kw)
    assert [again.draw(k) for k in (5, 1, 9)] == [s.draw(k) for k in (5, 1, 9)]
    other = TrainingSampler([src], random_share=0.2, seed=4, **kw)
    assert [other.draw(k) for k in range(20)] != [s.draw(k) for k in range(20)]


def test_unobserved_targets_filter_and_mask(tmp_path):
    x, y = make_arrays(32, 64, 64)
    nan = np.zeros(y.shape, bool)
    nan[:, :32, :32] = True  # one quadrant never observed
    cube, tg = write_pair(tmp_path, "N", x, y, target_nan=nan)
    s = TrainingSampler([open_source(cube, tg)], seq_len=16, patch=32, stride=32, t_stride=16,
                      min_valid=0.5)
    assert not any((r["y0"] == 0) & (r["x0"] == 0) for r in s.candidates)
    s_all = TrainingSampler([open_source(cube, tg)], seq_len=16, patch=32, stride=32,
                          t_stride=16, min_valid=0.0)
    w = next(s_all._sample(j) for j, r in enumerate(s_all.candidates)
             if r["y0"] == 0 and r["x0"] == 0)
    item = s_all.read(w)
    assert item["mask"].sum() == 0 and np.all(item["y"] == 0)


def test_time_split_never_overlaps(pair):
    src = open_source(pair["cube"], pair["targets"])
    days = src.times
    period = (days[24].date(), days[40].date())
    train_kw, val_kw = time_split(*period)
    kw = dict(seq_len=16, patch=32, stride=16, t_stride=8, threshold=1)
    tr = TrainingSampler([src], jitter=True, **kw, **train_kw)
    va = TrainingSampler([src], **kw, **val_kw)
    lo, hi = pd.Timestamp(period[0]), pd.Timestamp(period[1])
    assert len(tr) > 0 and len(va) > 0
    for k in range(300):
        d = tr.sample_days(tr.draw(k))
        assert (d[-1] < lo) or (d[0] > hi)
        v = va.sample_days(va.draw(k))
        assert v[0] >= lo and v[-1] <= hi
    for rec in tr.candidates:
        d = days[rec["t0"] : rec["t0"] + 16]
        assert not ((d >= lo) & (d <= hi)).any()


def test_read_returns_reference_normalisation(pair):
    s = TrainingSampler([open_source(pair["cube"], pair["targets"])], seq_len=16, patch=32)
    w = s.draw(0)
    item = s.read(w)
    sl = (slice(w.t0, w.t0 + 16), slice(w.y0, w.y0 + 32), slice(w.x0, w.x0 + 32))
    raw = pair["x"][(slice(None), *sl)]
    mean = np.array(BANET.mean, np.float32)[:, None, None, None]
    std = np.array(BANET.std, np.float32)[:, None, None, None]
    expect = (np.nan_to_num(raw, nan=0.0) - mean) / std
    assert item["x"].shape == (4, 16, 32, 32) and item["x"].dtype == np.float32
    np.testing.assert_allclose(item["x"], expect, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(item["y"][0], pair["y"][sl])
    assert item["mask"].shape == (1, 16, 32, 32) and item["mask"].min() == 1.0
    ds = BANetSamples(s, length=4)
    t = ds[0]
    assert set(t) == {"x", "y", "mask"} and tuple(t["x"].shape) == (4, 16, 32, 32)
    np.testing.assert_array_equal(t["x"].numpy(), item["x"])  # item 0 = draw 0
    with pytest.raises(IndexError):
        ds[4]


def _chunk_files(store, var):
    root = store / var / "c"
    return {tuple(int(p) for p in f.relative_to(root).parts): f
            for f in root.rglob("*") if f.is_file()}


def test_reads_only_the_chunks_a_window_needs(tmp_path):
    x, y = make_arrays(48, 96, 96, burns=((20, 40, 40, 12),))
    cube, tg = write_pair(tmp_path, "C", x, y, chunks=(8, 32, 32))
    s = TrainingSampler([open_source(cube, tg)], seq_len=16, patch=32, stride=32, t_stride=8)
    w = next(s._sample(j) for j, r in enumerate(s.candidates)
             if (r["t0"], r["y0"], r["x0"]) == (16, 32, 32))
    need = {(t, 1, 1) for t in (2, 3)}  # chunks of days 16..31, rows/cols 32..63
    # corrupt every chunk file the window does not need: any read of them fails
    for store, var in [(cube, b) for b in BANDS] + [(tg, "bafrac")]:
        files = _chunk_files(store, var)
        assert need <= set(files)
        for key, f in files.items():
            if key not in need:
                f.write_bytes(b"not a zstd chunk")
    item = s.read(w)
    np.testing.assert_array_equal(item["y"][0], y[16:32, 32:64, 32:64])
    # sanity: the corruption is detected when a window does touch those chunks
    bad = next(s._sample(j) for j, r in enumerate(s.candidates)
               if (r["t0"], r["y0"], r["x0"]) == (0, 0, 0))
    with pytest.raises(Exception):  # noqa: B017 (whatever zarr's codec raises)
        s.read(bad)


def test_bad_settings_are_refused(pair):
    src = open_source(pair["cube"], pair["targets"])
    with pytest.raises(InputError, match="multiple of 16"):
        TrainingSampler([src], seq_len=20, patch=32)
    with pytest.raises(InputError, match="multiple of 32"):
        TrainingSampler([src], seq_len=16, patch=48)
    with pytest.raises(InputError, match="divide"):
        TrainingSampler([src], seq_len=16, patch=32, stride=12)
    with pytest.raises(InputError, match="no 64-day"):
        TrainingSampler([src], seq_len=64, patch=32)


def test_reference_rule_anchors_are_tile_days(pair):
    """rule="reference": every tile-day with target sum > 10 is an anchor; the window
    starts seq_len // 2 days before it and the day seq_len after it must exist."""
    src = open_source(pair["cube"], pair["targets"])
    s = TrainingSampler([src], seq_len=16, patch=32, stride=16, threshold=10, rule="reference",
                      seed=5)
    y = pair["y"]
    nt = y.shape[0]
    expected = {}
    for a in range(nt):
        if a - 8 < 0 or a + 16 > nt - 1:
            continue
        for y0 in range(0, 96 - 32 + 1, 16):
            for x0 in range(0, 96 - 32 + 1, 16):
                expected[(a - 8, y0, x0)] = float(y[a, y0:y0 + 32, x0:x0 + 32].sum())
    got = {(int(r["t0"]), int(r["y0"]), int(r["x0"])): r["burned"] for r in s.candidates}
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert got[k] == pytest.approx(v)
    burned = {k for k, v in expected.items() if v > 10}
    assert len(burned) > 4
    # draws: uniform among the anchors only (no uniform share, no jitter)
    drawn = [s.draw(k) for k in range(400)]
    keys = [(w.t0, w.y0, w.x0) for w in drawn]
    assert set(keys) <= burned and len(set(keys)) == len(burned)
    counts = np.bincount([sorted(burned).index(k) for k in keys])
    assert counts.min() > 0.4 * counts.mean()
    assert s.state_dict()["rule"] == "reference"
    # the burn of day 20 is 8 days into its window: the anchor day, not the window sum
    w = next(w for w in drawn if w.t0 == 12 and (w.y0, w.x0) == (0, 0))
    assert w.burned == pytest.approx(144.0)
    with pytest.raises(InputError, match="sampler rule"):
        TrainingSampler([src], seq_len=16, patch=32, rule="nope")


def test_reference_rule_respects_time_splits(pair):
    src = open_source(pair["cube"], pair["targets"])
    days = src.times
    train_kw, val_kw = time_split(days[30], days[47])
    kw = dict(seq_len=16, patch=32, stride=16, threshold=10, rule="reference")
    tr = TrainingSampler([src], **kw, **train_kw)
    assert (tr.candidates["t0"] + 16 - 1 < 30).all()
    with pytest.raises(InputError, match="no 16-day"):
        TrainingSampler([src], **kw, **val_kw)  # no anchor window fits inside the last 18 days
