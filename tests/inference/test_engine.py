"""The device block pipeline (firesmoke.inference.engine): equal to the numpy engine, each tile once."""

from __future__ import annotations

import functools
import itertools
import threading

import dask
import dask.array as da
import numpy as np
import pytest
import torch

from firesmoke.burned.rules import BurnedRangeStats, BurnedWindow, combine_range
from firesmoke.errors import InputError
from firesmoke.inference.engine import run_block, task_grid
from firesmoke.inference.model import (
    TileModel,
    clear_model_cache,
    predict_array,
    predict_numpy,
    resolve_device,
)
from firesmoke.inference.tiling import TilePlan, accumulate_tiles
from firesmoke.models.normalization import BANET, Normalization


def _net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Tanh(),
                               torch.nn.Conv2d(4, 2, 3, padding=1)).eval()


NORM = Normalization("t", ("a", "b", "c"), (0.1, 0.2, 0.3), (1.0, 2.0, 0.5), nan_fill=0.0)


def _model(seeds=(0,)) -> TileModel:
    return TileModel(builders=tuple(functools.partial(_net, s) for s in seeds),
                     key=f"engine-test-{seeds}", normalization=NORM)


def _numpy_engine(arr, model, tile, step, blend):
    """Today's (previous) engine: numpy tiles, host normalisation, float64 blending."""
    plan = TilePlan(*arr.shape[-2:], tile=tile, step=step)

    def fn(batch):
        x = np.nan_to_num(batch, nan=0.0)
        x = (x - np.asarray(NORM.mean, np.float32)[:, None, None]) / np.asarray(
            NORM.std, np.float32)[:, None, None]
        with torch.inference_mode():
            outs = [torch.sigmoid(m(torch.from_numpy(x.astype(np.float32)))) for m in
                    model.modules("cpu")]
        return torch.stack(outs).mean(0).numpy()

    return accumulate_tiles(arr, fn, plan, batch_size=3, blend=blend)


@pytest.fixture(autouse=True)
def _fresh():
    clear_model_cache()
    yield
    clear_model_cache()


@pytest.fixture(scope="module")
def arr():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 203, 261)).astype(np.float32)
    a[:, 10:30, 40:90] = np.nan  # no data
    return a


@pytest.mark.parametrize("blend", ["mean", "centre"])
@pytest.mark.parametrize("chunks", [(203, 261), (64, 64), (100, 90), (150, 40)])
def test_device_pipeline_equals_numpy_engine(arr, blend, chunks):
    model = _model((0, 1))
    ref = _numpy_engine(arr, model, 48, 36, blend)
    got = predict_array(da.from_array(arr, chunks=(3, *chunks)), model, out_channels=2, tile=48,
                        step=36, blend=blend, batch_size=4, device="cpu")
    got = got.compute(scheduler="threads")
    np.testing.assert_allclose(got, ref, atol=1e-5)
    whole = predict_numpy(arr, model, tile=48, step=36, blend=blend, device="cpu")
    np.testing.assert_allclose(whole, ref, atol=1e-5)


def test_one_and_two_workers_give_the_same_mosaic(arr):
    distributed = pytest.importorskip("distributed")
    model = _model()
    x = da.from_array(arr, chunks=(3, 70, 70))
    lazy = predict_array(x, model, out_channels=2, tile=48, step=36, blend="centre",
                         device="cpu")
    ref = _numpy_engine(arr, model, 48, 36, "centre")
    outs = []
    # one cluster, one worker process, then a second one added (a second cluster of two
    # would only start the scheduler and the first worker again)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        for n in (1, 2):
            cluster.scale(n)
            client.wait_for_workers(n)
            assert len(client.scheduler_info()["workers"]) == n
            outs.append(client.compute(lazy).result())
    np.testing.assert_allclose(outs[0], ref, atol=1e-5)
    np.testing.assert_array_equal(outs[0], outs[1])


class _Counting:
    """A plain callable model that counts the tiles it is given."""

    def __init__(self) -> None:
        self.n = 0
        self.lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self.lock:
            self.n += len(batch)
        return batch[:, :1] * 0.5


@pytest.mark.parametrize("chunk", [256, 512])
def test_each_plan_tile_runs_once(chunk):
    a = np.random.default_rng(1).random((2, 1024, 1024), dtype=np.float32)
    plan = TilePlan(1024, 1024, tile=128, step=100)
    counter = _Counting()
    out = predict_array(da.from_array(a, chunks=(2, chunk, chunk)), counter, tile=128, step=100,
                        batch_size=16, device="cpu")
    with dask.config.set(scheduler="threads"):
        got = out.compute()
    assert counter.n <= 1.1 * len(plan)
    assert counter.n == len(plan)  # exactly once
    np.testing.assert_allclose(got[0], a[0] * 0.5, rtol=1e-6)


@pytest.mark.parametrize("blend", ["mean", "centre"])
@pytest.mark.parametrize(("chunks", "tasks"), [((203, 261), 2), ((203, 261), 9), ((203, 261), 99),
                                               ((100, 90), 12), ((150, 40), 7)])
def test_tiles_shared_among_tasks_give_the_same_mosaic(arr, blend, chunks, tasks):
    """A chunk's tiles split among several tasks: same mosaic bit for bit, same chunks,
    every tile of the plan still run exactly once."""
    x = da.from_array(arr, chunks=(3, *chunks))
    counts, outs, chunked = [], [], []
    for t in (None, tasks):
        counter = _Counting()
        out = predict_array(x, counter, tile=48, step=36, blend=blend, batch_size=4,
                            device="cpu", tasks=t)
        chunked.append(out.chunks)
        outs.append(out.compute(scheduler="threads"))
        counts.append(counter.n)
    assert chunked[0] == chunked[1]
    assert counts[0] == counts[1] == len(TilePlan(203, 261, tile=48, step=36))
    np.testing.assert_array_equal(outs[1], outs[0])
    model = _model((0, 1))
    ref = predict_array(x, model, out_channels=2, tile=48, step=36, blend=blend,
                        device="cpu", tasks=None).compute(scheduler="threads")
    got = predict_array(x, model, out_channels=2, tile=48, step=36, blend=blend,
                        device="cpu", tasks=tasks).compute(scheduler="threads")
    np.testing.assert_array_equal(got, ref)


def test_task_grid_splits_at_tile_origins():
    plan = TilePlan(256, 256, tile=128, step=100)  # origins 0, 100, 200
    assert task_grid(plan, (256,), (256,), None) == ((256,), (256,))
    assert task_grid(plan, (256,), (256,), 2) == ((256,), (200, 56))
    assert task_grid(plan, (256,), (256,), 4) == ((200, 56), (200, 56))
    assert task_grid(plan, (256,), (256,), 8) == ((100, 100, 56), (100, 100, 56))
    assert task_grid(plan, (256,), (256,), 1000) == ((100, 100, 56), (100, 100, 56))
    # a refinement of the data chunks; with step 32 a task needs 3 origins (tile 128)
    fine = TilePlan(512, 512, tile=128, step=32)
    ych, _ = task_grid(fine, (256, 256), (512,), 8)
    ends = np.cumsum(ych).tolist()
    assert ends[-1] == 512
    assert 256 in ends
    rows = fine.rows
    bounds = [0, *ends]
    assert all(((rows >= a) & (rows < b)).sum() >= 3 for a, b in itertools.pairwise(bounds))


def test_bad_tasks_is_an_input_error(arr):
    with pytest.raises(InputError, match="tasks"):
        predict_array(da.from_array(arr), _Counting(), tile=48, step=36, tasks=0)


def test_burned_reductions_equal_numpy():
    rng = np.random.default_rng(2)
    p = rng.random((1, 5, 6, 7), dtype=np.float32) * 0.4
    doy = (100, 101, 102, 103, 104)
    out = BurnedWindow(doy, 0.5)(torch.from_numpy(p)).numpy()
    conf = np.minimum(p[0].sum(0), 1)
    np.testing.assert_allclose(out[0], conf, rtol=1e-6)
    date = np.where(conf < 0.5, 0, np.asarray(doy)[p[0].argmax(0)])
    np.testing.assert_array_equal(out[1], date)
    s1 = BurnedRangeStats(doy)(torch.from_numpy(p)).numpy()
    s2 = BurnedRangeStats((200, 201, 202, 203, 204))(torch.from_numpy(p[:, ::-1].copy())).numpy()
    comb = combine_range([s1, s2], 0.05)
    np.testing.assert_allclose(comb[0], np.minimum(2 * p[0].sum(0), 1), rtol=1e-6)
    # ties between windows go to the first blend
    np.testing.assert_array_equal(comb[1], np.where(comb[0] >= 0.05, s1[2], 0))


def test_run_block_equals_the_whole_pass(arr):
    model = _model()
    plan = TilePlan(*arr.shape[-2:], tile=48, step=36)
    whole = predict_numpy(arr, model, tile=48, step=36, device="cpu")
    # a block with the halo its tiles need
    core = (72, 150, 100, 200)
    origins = plan.origins(*core)
    ya, xa = origins.min(axis=0)
    yb, xb = np.minimum(origins.max(axis=0) + 48, arr.shape[-2:])
    blk = run_block(arr[:, ya:yb, xa:xb], model, plan, offset=(ya, xa), core=core, device="cpu")
    np.testing.assert_allclose(blk, whole[:, 72:150, 100:200], atol=1e-6)


@pytest.mark.parametrize("plan_order", [False, True])
@pytest.mark.parametrize("chunks", [(203, 261), (64, 64), (150, 40)])
def test_channels_given_separately_equal_the_stack(arr, chunks, plan_order):
    model = _model()
    ref = _numpy_engine(arr, model, 48, 36, "mean")
    bands = [da.from_array(arr[c], chunks=chunks) for c in range(3)]
    got = predict_array(bands, model, out_channels=2, tile=48, step=36, batch_size=4,
                        device="cpu", plan_order=plan_order)
    assert got.shape == (2, *arr.shape[-2:])
    np.testing.assert_allclose(got.compute(scheduler="threads"), ref, atol=1e-5)
    # run_block takes a tuple of channels too
    plan = TilePlan(*arr.shape[-2:], tile=48, step=36)
    (ya, xa), (yb, xb) = plan.origins(72, 150, 100, 200).min(axis=0), (200, 250)
    blk = run_block(tuple(arr[c, ya:yb, xa:xb] for c in range(3)), model, plan,
                    offset=(ya, xa), core=(72, 150, 100, 200), device="cpu")
    np.testing.assert_allclose(blk, ref[:, 72:150, 100:200], atol=1e-5)


def test_channels_of_different_shapes_are_refused(arr):
    with pytest.raises(ValueError, match="channels differ"):
        predict_array([da.from_array(arr[0]), da.from_array(arr[1, :100])], _model(),
                      out_channels=2, tile=48, step=36, device="cpu").compute()


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "tpu", "cpu0", 3])
def test_bad_device_is_an_input_error(bad):
    with pytest.raises(InputError, match="device"):
        resolve_device(bad)
    with pytest.raises(InputError):
        predict_array(np.zeros((3, 40, 40), np.float32), _model(), out_channels=2, tile=32,
                      step=32, device=bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_an_input_error():
    with pytest.raises(InputError, match="no CUDA"):
        resolve_device("cuda")
    assert resolve_device("cuda", check_available=False) == "cuda"
    assert resolve_device(None) == resolve_device("auto") == "cpu"


def test_tile_model_holds_a_normalization():
    m = TileModel(builders=(), key="k", mean=(1.0, 2.0), std=(2.0, 4.0))
    assert isinstance(m.normalization, Normalization) and m.normalization.mean == (1.0, 2.0)
    x = np.array([[[[3.0]], [[np.nan]]]], np.float32)  # (1, 2, 1, 1)
    np.testing.assert_allclose(m.normalise(x)[0, :, 0, 0], [1.0, -0.5])
    b = TileModel(builders=(), key="b", normalization=BANET.to_dict())
    assert b.normalization == BANET


_NO_IO = '''
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("rasterio", "pyhdf", "zarr", "netCDF4", "rioxarray", "numba"):
            raise ImportError(f"blocked {name}")
sys.meta_path.insert(0, Block())
import numpy as np, pandas as pd, xarray as xr
from pyproj import CRS
from firesmoke.burned.predict import predict_burned
import firesmoke.inference.model, firesmoke.inference.tiling, firesmoke.inference.engine
days = pd.date_range("2020-06-15", "2020-09-30")
cube = xr.Dataset({b: (("time", "y", "x"), np.zeros((len(days), 40, 50), np.float32))
                   for b in ("red", "nir", "mir", "frp")},
                  coords={"time": days, "y": 1 - 0.01 * np.arange(40), "x": 0.01 * np.arange(50),
                          "spatial_ref": ((), 0, {"crs_wkt": CRS.from_epsg(4326).to_wkt()})})
f = lambda b: np.full((b.shape[0], 1, *b.shape[2:]), 0.02, np.float32)
out = predict_burned(cube, f, "2020-08-01", tile=32, step=24).compute()
assert abs(float(out.confidence.max()) - 0.62) < 1e-5
print("ok")
'''


def test_burned_and_engine_import_without_io_libraries():
    import os
    import subprocess
    import sys

    import firesmoke

    root = os.path.dirname(os.path.dirname(os.path.abspath(firesmoke.__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    res = subprocess.run([sys.executable, "-c", _NO_IO], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


def test_campaign_rejects_a_bad_device_before_running(tmp_path):
    from firesmoke.campaign.run import run_campaign

    spec = {"name": "t", "output": str(tmp_path / "out"), "weights": ["banet_synthetic"],
            "regions": [{"name": "A", "bbox": [-8.0, 40.0, -7.9, 40.1], "pixel_size": 0.01,
                         "cube": str(tmp_path / "missing.zarr")}],
            "periods": [{"start": "2020-08-01", "end": "2020-08-31"}],
            "products": {"burned": {"mode": "monthly", "device": "gpu0"}}}
    with pytest.raises(InputError, match="device"):
        run_campaign(spec, progress=False)
