"""A campaign on a real multi-process Dask cluster, started as a user starts one.

``dask scheduler`` and two ``dask worker`` processes are started with the installed
``dask`` command (the workers with :func:`firesmoke.inference.runtime.worker_environment`
in their environment), then ``firesmoke campaign run spec.toml --scheduler tcp://...``
runs in its own process with the shipped ``banet_synthetic`` weights. Once a unit is in
the ledger, one worker (its nanny and its worker process: a lost node) is SIGKILLed. The
store must then hold exactly the values of a run of the same spec on a local cluster.
Every process is killed by the fixtures, whatever happens in the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from _campaign_helpers import END, MONTH, START, make_cube

from firesmoke.campaign.plan import plan_campaign
from firesmoke.campaign.run import run_campaign
from firesmoke.grid import Region
from firesmoke.inference.runtime import worker_environment
from firesmoke.store import Ledger

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DASK = BIN / "dask"
SHAPE = (64, 384)  # three 64 x 128 px blocks, 64 px BA-Net tiles: 6 tiles of 64 days
pytestmark = pytest.mark.skipif(not DASK.exists(), reason=f"no `dask` command beside {sys.executable}")


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, **worker_environment(), "PYTHONPATH": path,
            "OMP_NUM_THREADS": "1", "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}


class Processes:
    """Processes started in their own sessions; :meth:`close` kills each group."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")
        proc = subprocess.Popen(args, env=_env(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=self.logs)
        log.close()
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the nanny and its worker process
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def close(self) -> None:
        for name in list(self.procs):
            self.kill(name)


@pytest.fixture
def processes(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    ps = Processes(logs)
    yield ps
    ps.close()


def _wait(what: str, ok, timeout: float, ps: Processes, name: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = ok()
        if got:
            return got
        assert ps.procs[name].poll() is None, f"{name} exited:\n{ps.log(name)}"
        time.sleep(0.1)
    raise AssertionError(f"{what} not in {timeout} s:\n{ps.log(name)}")


def _marker(store: Path, unit: str) -> dict:
    return json.loads((Path(store) / ".firesmoke" / "ledger" / unit).read_text())


def _spec_toml(path: Path, out: Path, cube: Path, region: Region) -> Path:
    w, s, e, n = region.bbox
    path.write_text(f"""
name = "cluster"
output = "{out}"
block_size = 128
weights = ["banet_synthetic"]

[[regions]]
name = "{region.name}"
bbox = [{w!r}, {s!r}, {e!r}, {n!r}]
pixel_size = {region.pixel_size!r}
cube = "{cube}"

[[periods]]
start = {MONTH}-01
end = {MONTH}-31

[products.burned]
mode = "monthly"
tile = 64
step = 64
device = "cpu"
batch_size = 2

[cluster]
n_workers = 1
threads_per_worker = 2
processes = false
torch_threads = 1
""")
    return path


def test_cli_campaign_on_scheduler_and_workers_survives_a_killed_worker(processes, tmp_path):
    cube = make_cube(tmp_path / "cube.zarr", shape=SHAPE, start=START, end=END)  # the window
    region = Region.from_dataset(xr.open_zarr(cube))
    spec = _spec_toml(tmp_path / "spec.toml", tmp_path / "out", cube, region)
    units = [u.id for u in plan_campaign(spec).units]
    assert len(units) == 3
    store = plan_campaign(spec).stores[("burned-monthly", region.name)]

    sched_file = tmp_path / "scheduler.json"
    processes.start("scheduler", [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(sched_file),
                                  "--idle-timeout", "600"])  # gone even if pytest is killed
    address = _wait("scheduler file", lambda: sched_file.exists() and json.loads(
        sched_file.read_text() or "{}").get("address"), 60, processes, "scheduler")
    assert address.startswith("tcp://127.0.0.1:")
    for i in range(2):
        processes.start(f"worker{i}", [str(DASK), "worker", address, "--nworkers", "1",
                                       "--nthreads", "1", "--no-dashboard", "--name", f"w{i}",
                                       "--death-timeout", "60",
                                       "--local-directory", str(tmp_path / f"w{i}")])
    cli = processes.start("campaign", [str(BIN / "firesmoke"), "campaign", "run", str(spec),
                                       "--scheduler", address, "-q"])
    # once a unit is in the ledger, kill the worker that wrote it: it has just taken the
    # third unit (two workers, three units), so a node is lost in the middle of a unit
    ledger = Ledger(store)
    first = _wait("a finished unit", ledger.finished, 240, processes, "campaign")
    pids = {name: p.pid for name, p in processes.procs.items() if name.startswith("worker")}
    victim = next(name for name, pid in pids.items()
                  if pid == os.getpgid(_marker(store, sorted(first)[0])["pid"]))
    processes.kill(victim)
    killed_with = set(ledger.finished())
    assert cli.wait(timeout=240) == 0, processes.log("campaign")
    assert sorted(ledger.finished()) == sorted(units)
    after = [u for u in units if u not in killed_with]
    assert after, "every unit was finished before the kill"
    survivor = next(pid for name, pid in pids.items() if name != victim)
    assert all(_marker(store, u)["pid"] != pids[victim] for u in after)
    assert {os.getpgid(_marker(store, u)["pid"]) for u in after} == {survivor}

    # the same spec on a local (in-process) cluster
    local_out = tmp_path / "local"
    local = _spec_toml(tmp_path / "local.toml", local_out, cube, region)
    rep = run_campaign(local, progress=False)
    assert rep.ok and sorted(rep.done) == sorted(units)
    a, b = xr.open_zarr(store), xr.open_zarr(rep.stores[0])
    assert sorted(a.data_vars) == sorted(b.data_vars) == ["burn_date", "confidence", "valid_days"]
    for name in a.variables:
        assert np.array_equal(a[name].values, b[name].values, equal_nan=True), name
    assert np.isfinite(a["confidence"].values).any()


def test_scheduler_option_replaces_the_local_cluster(tmp_path):
    from firesmoke.campaign.spec import load_spec, with_scheduler
    from firesmoke.errors import InputError

    spec = load_spec({"name": "s", "output": str(tmp_path), "block_size": 128,
                      "regions": [{"name": "b", "bbox": [0, 0, 1.28, 1.28], "pixel_size": 0.01,
                                   "cube": str(tmp_path / "c.zarr")}],
                      "periods": [{"start": "2020-08-01", "end": "2020-08-31"}],
                      "products": {"burned": {"mode": "monthly"}},
                      "cluster": {"n_workers": 3, "torch_threads": 1, "units_per_task": 4}})
    got = with_scheduler(spec, " tcp://10.0.0.5:8786 ").cluster
    assert (got.address, got.torch_threads, got.units_per_task) == ("tcp://10.0.0.5:8786", 1, 4)
    assert got.n_workers is None
    with pytest.raises(InputError, match=r"cluster\.address"):
        with_scheduler(spec, "  ")
