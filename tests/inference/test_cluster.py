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
