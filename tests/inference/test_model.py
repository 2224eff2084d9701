"""Generic inference engine: chunk independence, reference tiling, model cache."""

from __future__ import annotations

import functools
import typing

import dask.array as da
import numpy as np
import pytest
import torch

from firesmoke.inference.model import (
    TileModel,
    clear_model_cache,
    default_batch_size,
    keep_days,
    predict_array,
    predict_numpy,
)
from firesmoke.inference.tiling import TilePlan


def _tiny_net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 1, 3, padding=1)
    )


def tiny_model(seeds=(0,)) -> TileModel:
    return TileModel(
        builders=tuple(functools.partial(_tiny_net, s) for s in seeds),
        key=f"tiny-{seeds}",
        mean=(0.1, 0.2, 0.3),
        std=(1.0, 2.0, 0.5),
    )


def reference_loop(arr, model, tile, step):
    """Reference-style inference: zero-padded whole region, one tile at a time, mean blend."""
    plan = TilePlan(*arr.shape[-2:], tile=tile, step=step)
    ph, pw = plan.padded_shape
    padded = np.zeros((arr.shape[0], ph, pw), np.float32)
    padded[:, : arr.shape[1], : arr.shape[2]] = arr
    acc = np.zeros((1, ph, pw))
    cnt = np.zeros((ph, pw))
    for r in plan.rows:
        for c in plan.cols:
            acc[:, r : r + tile, c : c + tile] += model(padded[None, :, r : r + tile, c : c + tile])[0]
            cnt[r : r + tile, c : c + tile] += 1
    return (acc / cnt)[:, : arr.shape[1], : arr.shape[2]]


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_model_cache()
    yield
    clear_model_cache()


def test_chunkings_give_the_same_mosaic():
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(3, 150, 170)).astype(np.float32)
    arr[:, 40:50, 60:70] = np.nan  # NaN -> 0 before normalisation
    model = tiny_model()
    a = predict_array(da.from_array(arr, chunks=(3, 64, 64)), model, tile=32, step=24).compute()
    b = predict_array(da.from_array(arr, chunks=(3, 150, 90)), model, tile=32, step=24).compute()
    whole = predict_numpy(arr, model, tile=32, step=24)
    assert a.shape == (1, 150, 170) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a, whole, atol=1e-5)
    assert np.isfinite(a).all() and (a >= 0).all() and (a <= 1).all()


def test_reference_compatible_mode_equals_one_tile_at_a_time():
    rng = np.random.default_rng(1)
    arr = rng.normal(size=(3, 230, 260)).astype(np.float32)
    model = tiny_model()
    out = predict_array(da.from_array(arr, chunks=(3, 128, 128)), model, tile=128, step=100,
                        batch_size=4).compute()
    ref = reference_loop(arr, model, 128, 100)
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_ensemble_is_mean_of_members():
    rng = np.random.default_rng(2)
    arr = rng.normal(size=(3, 40, 40)).astype(np.float32)
    both = predict_numpy(arr, tiny_model((0, 1)), tile=40, step=40)
    m0 = predict_numpy(arr, tiny_model((0,)), tile=40, step=40)
    m1 = predict_numpy(arr, tiny_model((1,)), tile=40, step=40)
    np.testing.assert_allclose(both, (m0 + m1) / 2, atol=1e-6)


def test_models_built_once_per_process():
    calls = []

    def build():
        calls.append(1)
        return _tiny_net(0)

    model = TileModel(builders=(build,), key="counted")
    arr = np.zeros((3, 100, 100), np.float32)
    predict_array(da.from_array(arr, chunks=(3, 50, 50)), model, tile=32, step=32).compute(
        scheduler="threads"
    )
    assert len(calls) == 1


def test_time_axis_passes_through():
    # a (C, T, H, W) input with a model that keeps T: the engine must not mix time steps
    arr = np.random.default_rng(3).random((2, 4, 60, 60)).astype(np.float32)

    def model(batch):  # (n, 2, 4, t, t) -> (n, 1, 4, t, t)
        return batch[:, :1] * 2 + batch[:, 1:2]

    out = predict_array(da.from_array(arr, chunks=(2, 4, 30, 30)), model, tile=32, step=16).compute()
    np.testing.assert_allclose(out[0], arr[0] * 2 + arr[1], rtol=1e-6)


def test_bad_out_lead():
    with pytest.raises(ValueError, match="leading dims"):
        predict_array(np.zeros((2, 4, 8, 8)), lambda b: b, out_lead=(1,))


class _DayNet(torch.nn.Module):
    """(n, 1, T, h, w) -> same, each day scaled by its index + 1; counts ``days=`` calls."""

    supports_days = True
    calls: typing.ClassVar[list] = []

    def forward(self, x, days=None):
        t = x.shape[2]
        y = x * torch.arange(1, t + 1, dtype=x.dtype).view(1, 1, t, 1, 1)
        type(self).calls.append(days)
        return y if days is None else y[:, :, days[0] : days[1]]


class _PlainDayNet(torch.nn.Module):
    def forward(self, x):
        t = x.shape[2]
        return x * torch.arange(1, t + 1, dtype=x.dtype).view(1, 1, t, 1, 1)


def test_keep_days_passes_days_to_modules_that_support_them():
    arr = np.random.default_rng(4).random((1, 8, 40, 40)).astype(np.float32)
    full = predict_numpy(arr, TileModel(builders=(_DayNet,), key="dn", activation=None),
                         tile=32, step=16)
    _DayNet.calls.clear()
    kept = predict_numpy(arr, TileModel(builders=(_DayNet,), key="dn", activation=None)
                         .keep_days(slice(2, 6)), tile=32, step=16)
    assert kept.shape == (1, 4, 40, 40)
    np.testing.assert_allclose(kept, full[:, 2:6], rtol=1e-6)
    assert _DayNet.calls and set(_DayNet.calls) == {(2, 6)}
    # a module without the argument is sliced after its forward pass: same result
    plain = TileModel(builders=(_PlainDayNet,), key="pdn", activation=None).keep_days((2, 6))
    np.testing.assert_allclose(predict_numpy(arr, plain, tile=32, step=16), kept, rtol=1e-6)
    # a plain callable through keep_days()
    sliced = keep_days(lambda b: b * 2, slice(1, 3))
    np.testing.assert_allclose(predict_numpy(arr, sliced, tile=32, step=16), arr[:, 1:3] * 2,
                               rtol=1e-6)


def test_keep_days_bad_values():
    m = tiny_model()
    for bad in (slice(3, 1), slice(None, 4), slice(0, 8, 2), (-1, 2)):
        with pytest.raises(ValueError, match="days"):
            m.keep_days(bad)
    over = TileModel(builders=(_PlainDayNet,), key="pdn", activation=None).keep_days((2, 9))
    with pytest.raises(ValueError, match="output_days"):
        predict_numpy(np.zeros((1, 8, 32, 32), np.float32), over, tile=32, step=32)


def test_default_batch_size():
    assert default_batch_size("cpu") == 1
    assert default_batch_size("cuda:0") == 4
