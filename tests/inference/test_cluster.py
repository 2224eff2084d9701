"""One cluster helper: CPU LocalCluster, one worker per GPU pinned with CUDA_VISIBLE_DEVICES."""

from __future__ import annotations

import os

import pytest

from firesmoke.errors import InputError
from firesmoke.inference.cluster import dask_client, default_torch_threads

pytest.importorskip("distributed")


def _env() -> str | None:
    return os.environ.get("CUDA_VISIBLE_DEVICES")


def test_one_worker_per_gpu_pinned(monkeypatch):
    pytest.importorskip("torch")
    try:
        import dask_cuda  # noqa: F401
        pytest.skip("dask_cuda installed: LocalCUDACluster pins the workers itself")
    except ImportError:
        pass
    # the GPUs this process may use are those of CUDA_VISIBLE_DEVICES (no GPU needed to
    # check the pinning: the workers only read the variable)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    with dask_client(gpus=2, memory_limit="1GiB") as client:
        seen = client.run(_env)
        assert sorted(seen.values()) == ["5", "7"]
        info = client.scheduler_info()["workers"].values()
        assert all(w["resources"] == {"GPU": 1} for w in info)
        assert all(w["nthreads"] == 2 for w in info)


def test_more_gpus_than_visible_is_an_input_error(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(InputError, match="GPU"):
        with dask_client(gpus=2):
            pass


def test_cpu_cluster_and_bad_scheduler():
    with dask_client(n_workers=1, threads_per_worker=1, gpus=0, memory_limit="1GiB") as client:
        assert len(client.scheduler_info()["workers"]) == 1
    with pytest.raises(InputError, match="scheduler"):
        with dask_client(address="tcp://127.0.0.1:1", timeout="1s"):
            pass
    assert default_torch_threads(1, 1) == max(1, os.cpu_count() or 1)



class _SlowModel:
    """A plain callable model that takes a while per tile (work the workers can share)."""

    def __init__(self, delay: float = 0.3) -> None:
        self.delay = delay

    def __call__(self, batch):
        import time

        time.sleep(self.delay * len(batch))
        return batch[:, :1] * 0.5 + batch[:, 1:2]


def test_a_one_chunk_month_keeps_both_workers_busy():
    """256 px in one chunk on 2 workers: the tiles are shared among tasks that run on both
    workers, and the mosaic is the one of a single task."""
    import dask.array as da
    import numpy as np
    from distributed import get_task_stream

    from firesmoke.inference.cluster import task_target
    from firesmoke.inference.model import predict_array

    rng = np.random.default_rng(0)
    x = da.from_array(rng.random((4, 2, 256, 256), dtype=np.float32), chunks=(4, 2, 256, 256))
    model = _SlowModel()
    with dask_client(n_workers=2, threads_per_worker=1, memory_limit="1GiB") as client:
        assert task_target() == 4  # 2 per worker thread
        # the reference: one task, same arithmetic without the wait (nothing to share)
        one = predict_array(x, _SlowModel(delay=0.0), out_channels=1, device="cpu", tasks=None)
        split = predict_array(x, model, out_channels=1, device="cpu")  # tasks="auto"
        assert len([k for k in split.__dask_graph__() if "engine-tiles" in str(k)]) == 4
        assert len([k for k in one.__dask_graph__() if "engine-tiles" in str(k)]) == 1
        ref = client.compute(one).result()
        # the tasks all read the one input chunk, held by one worker: dask places them by
        # data locality and occupancy, and work stealing moves some to the other worker;
        # placement is the scheduler's choice, so a run may keep them together: up to 3 runs
        used = []
        for _ in range(3):
            with get_task_stream(client) as stream:
                got = client.compute(split).result()
            np.testing.assert_array_equal(got, ref)
            used.append({t["worker"] for t in stream.data if "engine-tiles" in str(t["key"])})
            if len(used[-1]) == 2:
                break
    assert len(used[-1]) == 2, used


def _torch_forward() -> float:
    import torch

    with torch.inference_mode():
        return float(torch.nn.Conv3d(4, 2, 3)(torch.ones(2, 4, 8, 16, 16)).sum())


def test_client_closes_without_killing_workers(caplog):
    """Workers that ran torch get the time to exit (no "still alive ... killing")."""
    import logging

    caplog.set_level(logging.INFO, logger="distributed")
    with dask_client(n_workers=2, threads_per_worker=1, memory_limit="1GiB") as client:
        workers = list(client.scheduler_info()["workers"])
        futures = [client.submit(_torch_forward, workers=[w], pure=False) for w in workers]
        assert len(client.gather(futures)) == 2
    assert not [r for r in caplog.records if "still alive" in r.getMessage()]
    assert [r for r in caplog.records if "Nanny at" in r.getMessage() and "closed" in r.getMessage()]


def test_task_target_without_a_client_and_from_the_environment(monkeypatch):
    from firesmoke.inference.cluster import task_target

    monkeypatch.delenv("FIRESMOKE_INFERENCE_TASKS", raising=False)
    assert task_target() == 1  # no client: one task per chunk
    monkeypatch.setenv("FIRESMOKE_INFERENCE_TASKS", "12")
    assert task_target() == 12
    monkeypatch.setenv("FIRESMOKE_INFERENCE_TASKS", "many")
    with pytest.raises(InputError, match="FIRESMOKE_INFERENCE_TASKS"):
        task_target()
