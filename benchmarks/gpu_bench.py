"""GPU benchmark of firesmoke's inference in one command.

Usage::

    PYTHONPATH=. python benchmarks/gpu_bench.py [--quick] [--json PATH] [--device DEV]

Prints a table as it goes (flushed line by line) and writes every figure as JSON (after
each section and at the end, so an interrupted run keeps what it measured):

* the machine: device name, torch / CUDA / cuDNN versions;
* **matmul peak**: a bf16 8192^3 matrix product (the ceiling the model is compared with);
* **BA-Net tile** (4 x 64 x 128 x 128): the plain module in fp32 at batch 1 (TF32 off,
  the reference arithmetic; and with PyTorch's default TF32 setting), and the fast path
  (:func:`firesmoke.models.banet_fast.prepare_for_inference`) in bf16 (autocast, as the
  engine runs it) at batches 8 / 16 / 32 / 64; ms per tile, TFLOP/s (FLOPs of a tile
  counted analytically from the layer shapes with forward hooks on the plain module:
  2 x MACs of every convolution, transposed convolution and the LSTM) and percent of the
  measured matmul peak;
* **region-month**: a synthetic 1024 x 1024 px cube (generated in memory by this script,
  deterministic, no data files), the 64-day window of August 2020, an ensemble of 3
  random-weight BA-Nets with non-trivial batch-norm statistics, tile 128 / step 100 /
  mean blending, for (1) the reference-style loop (one tile at a time, batch 1, fp32 with
  TF32 off, the plain module, the models in turn with their weights loaded for the call),
  (2) :func:`firesmoke.burned.predict_burned` on dask's default (threads) scheduler in
  bf16 (the default on CUDA) and in fp32 (reference-compatible, ``autocast=None``), and
  (3) the same bf16 call on a one-worker ``distributed.LocalCluster`` (one worker process
  holding the models, the cube generated inside the worker from the block location so
  no data crosses processes); for each the wall time, the speed-up over the reference
  loop, the GPU busy fraction, the peak GPU memory of this process and the maximum
  absolute difference of the confidence map against the reference loop;
* **U-Net scenes/s**: a synthetic 12-band 2048 x 2048 px scene through the engine's
  :func:`firesmoke.inference.predict_array` (what :func:`firesmoke.smoke.segment_scene`
  runs; the scene reader needs rasterio, which this benchmark does not) with the
  segment_scene tiling (256 / 224, centre window), bf16.

**GPU busy fraction** is sampled with NVML (``nvidia-ml-py``): the GPU utilisation
counter (percent of time in the last sample period during which a kernel ran) is read
every 20 ms in a thread during the run, and the mean of the samples is reported. Without
NVML the figure is ``null``.

``--quick`` runs the same code at tiny sizes (tile 32 px, a 48 px region, 2 models,
batches 1 / 2, a 256 px scene, a 1024^3 matmul) on any device, CPU included: a smoke test of the
script (``tests/test_gpu_bench.py``), not a measurement.

Requirements: Python >= 3.11 with torch, numpy, pandas, xarray and numba (and
``nvidia-ml-py`` for the busy fraction). The predict_burned rows need ``dask`` and the
LocalCluster row ``distributed``; without them those rows are skipped with a note. On a
bare CUDA machine without a package index, carry them as wheels, made on a machine with
pip access (pure-Python wheels, any platform)::

    pip download --no-deps -d wheels dask distributed partd locket tornado zict tblib \\
        toolz cloudpickle
    # on the GPU machine:
    pip install --no-index --no-deps --target /tmp/site wheels/*.whl
    PYTHONPATH=/tmp/site:. python benchmarks/gpu_bench.py --json gpu_bench.json

(``tornado`` is a binary wheel: download it with ``--only-binary=:all:
--python-version 3.12 --platform manylinux2014_x86_64`` for the target.) The run
finishes in about 2-3 minutes on an H200.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._banet_bench import random_banet, reference_loop

MONTH = ("2020-08-01", "2020-08-31")
N_MODELS = 3
BANDS = ("red", "nir", "mir", "frp")


# ============================================================================ helpers
class Report:
    """Figures by section, printed as rows and saved as JSON after every section."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {"sections": {}, "errors": {}, "notes": []}

    def row(self, label: str, value: Any, unit: str = "") -> None:
        if isinstance(value, float):
            value = f"{value:.4g}"
        print(f"  {label:<58} {value} {unit}".rstrip(), flush=True)

    def note(self, text: str) -> None:
        self.data["notes"].append(text)
        print(f"  note: {text}", flush=True)

    def save(self) -> None:
        if self.path:
            tmp = f"{self.path}.tmp"
            with open(tmp, "w") as f:
                json.dump(self.data, f, indent=2, default=str)
            os.replace(tmp, self.path)

    @contextlib.contextmanager
    def section(self, name: str, title: str):
        print(f"\n== {title}", flush=True)
        out: dict[str, Any] = {}
        self.data["sections"][name] = out
        try:
            yield out
        except Exception as exc:  # one failure must not lose the other sections
            msg = f"{type(exc).__name__}: {exc}"
            self.data["errors"][name] = msg
            print(f"  FAILED: {msg}", flush=True)
            traceback.print_exc(limit=6)
            sys.stdout.flush()
        finally:
            self.save()


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _timeit(fn, device: str, repeat: int, warmup: int = 1) -> float:
    """Median seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


class BusySampler:
    """Mean GPU utilisation (NVML) sampled every ``period`` s in a thread."""

    def __init__(self, device: str, period: float = 0.02) -> None:
        self.period = period
        self.samples: list[float] = []
        self.handle = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if not device.startswith("cuda"):
            return
        try:
            import pynvml
            import torch

            pynvml.nvmlInit()
            index = torch.cuda.current_device() if device == "cuda" else int(device.split(":")[1])
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._nvml = pynvml
        except Exception:  # no NVML: figure unavailable
            self.handle = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self._nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu / 100)
            except Exception:
                return
            time.sleep(self.period)

    def __enter__(self) -> BusySampler:
        if self.handle is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def fraction(self) -> float | None:
        return float(np.mean(self.samples)) if self.samples else None


def _peak_reset(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: str) -> float | None:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(device) / 2**30
    return None


def tile_flops(model, x) -> float:
    """FLOPs (2 x multiply-adds) of one forward of ``model`` on ``x``, from layer shapes."""
    import torch
    from torch import nn

    total = [0.0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv3d):
            k = mod.weight[0].numel()  # Cin/groups * kt * kh * kw
            total[0] += 2.0 * out.numel() * k
        elif isinstance(mod, nn.ConvTranspose3d):
            total[0] += 2.0 * inp[0].numel() * mod.weight[0].numel()
        elif isinstance(mod, nn.LSTM):
            seq = out[0]
            steps = seq.numel() / mod.hidden_size  # time steps x sequences
            total[0] += 2.0 * steps * 4 * mod.hidden_size * (mod.input_size + mod.hidden_size)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.Conv3d | nn.ConvTranspose3d | nn.LSTM)]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total[0] / x.shape[0]


# ============================================================================ sections
def section_env(rep: Report, device: str) -> None:
    import torch

    with rep.section("env", "machine") as s:
        s["python"] = platform.python_version()
        s["torch"] = torch.__version__
        s["cuda"] = torch.version.cuda
        s["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        s["device"] = device
        s["device_name"] = (torch.cuda.get_device_name(device) if device.startswith("cuda")
                            else platform.processor() or platform.machine())
        s["cpu_count"] = os.cpu_count()
        for mod in ("dask", "distributed", "pynvml"):
            s[f"has_{mod}"] = importlib.util.find_spec(mod) is not None
        for k, v in s.items():
            rep.row(k, v)


def section_matmul(rep: Report, device: str, quick: bool) -> float | None:
    import torch

    n = 1024 if quick else 8192
    with rep.section("matmul_peak", f"bf16 matmul {n}^3") as s:
        a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        sec = _timeit(lambda: a @ b, device, repeat=3 if quick else 10, warmup=1 if quick else 3)
        s["n"] = n
        s["seconds"] = sec
        s["tflops"] = 2.0 * n**3 / sec / 1e12
        rep.row("bf16 matmul peak", s["tflops"], "TFLOP/s")
        return s["tflops"]
    return None


def section_tile(rep: Report, device: str, quick: bool, peak: float | None) -> None:
    import torch

    from firesmoke.models.banet_fast import prepare_for_inference
    from firesmoke.models.precision import no_tf32

    t, hw = 64, (32 if quick else 128)
    batches = (1, 2) if quick else (8, 16, 32, 64)
    repeat = 1 if quick else 10
    with rep.section("banet_tile", f"BA-Net tile 4 x {t} x {hw} x {hw}") as s:
        model = random_banet(0).to(device)
        x1 = torch.randn(1, 4, t, hw, hw, device=device)
        flops = tile_flops(model, x1)
        s["tile"] = [4, t, hw, hw]
        s["gflop_per_tile"] = flops / 1e9
        rep.row("FLOPs per tile (2 x MACs, analytic)", flops / 1e9, "GFLOP")

        def rate(ms: float) -> tuple[float, float | None]:
            tf = flops / (ms / 1e3) / 1e12
            return tf, (100.0 * tf / peak if peak else None)

        def plain() -> None:
            with torch.inference_mode():
                model(x1)

        with no_tf32():
            ms = 1e3 * _timeit(plain, device, repeat)
        s["plain_fp32_b1_ms"] = ms
        rep.row("plain module fp32 (TF32 off), batch 1", ms, "ms/tile")
        if device.startswith("cuda"):
            ms = 1e3 * _timeit(plain, device, repeat)
            s["plain_fp32_tf32_default_b1_ms"] = ms
            s["tf32_default"] = [torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32]
            rep.row(f"plain module fp32 (TF32 default {s['tf32_default']}), batch 1", ms, "ms/tile")

        fast = prepare_for_inference(model)
        amp = device.startswith("cuda")
        s["fast_dtype"] = "bf16 (autocast)" if amp else "fp32"
        s["fast_ms"] = {}
        best = None
        for b in batches:
            try:
                xb = torch.randn(b, 4, t, hw, hw, device=device)

                def run(xb=xb, days=None) -> None:
                    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                        fast(xb, days=days)

                ms = 1e3 * _timeit(run, device, repeat) / b
                s["fast_ms"][str(b)] = ms
                tf, pct = rate(ms)
                rep.row(f"fast path {s['fast_dtype']}, batch {b}", ms,
                        f"ms/tile  {tf:.3g} TFLOP/s" + (f"  {pct:.3g}% of peak" if pct else ""))
                if best is None or ms < best[1]:
                    best = (b, ms)
                del xb
            except torch.OutOfMemoryError:
                s["fast_ms"][str(b)] = None
                rep.row(f"fast path, batch {b}", "out of memory")
                torch.cuda.empty_cache()
        if best is not None:
            b, ms = best
            tf, pct = rate(ms)
            s.update(best_batch=b, best_ms=ms, best_tflops=tf, best_pct_of_peak=pct)
            rep.row("fast path best", f"{ms:.4g} ms/tile at batch {b}",
                    f"{tf:.3g} TFLOP/s" + (f" ({pct:.3g}% of the matmul peak)" if pct else ""))
            xb = torch.randn(b, 4, t, hw, hw, device=device)

            def monthly() -> None:
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                    fast(xb, days=(16, 47))

            ms = 1e3 * _timeit(monthly, device, repeat) / b
            s["best_batch_monthly_days_ms"] = ms
            rep.row(f"fast path, batch {b}, monthly days (16, 47) only", ms, "ms/tile")
            del xb
        # the fast path in fp32 agrees with the plain module (TF32 off)
        xa = torch.randn(2, 4, t, hw, hw, device=device)
        with no_tf32(), torch.inference_mode():
            want = model(xa)
        got = fast(xa)
        s["fast_fp32_max_abs_diff"] = float((got - want).abs().max())
        rep.row("fast fp32 vs plain fp32, max |diff| of logits", s["fast_fp32_max_abs_diff"])
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            got = fast(xa)
        s["fast_bf16_max_abs_diff_prob"] = float(
            (torch.sigmoid(got.float()) - torch.sigmoid(want)).abs().max())
        rep.row("fast bf16 vs plain fp32, max |diff| of probabilities",
                s["fast_bf16_max_abs_diff_prob"])
        s["peak_gib"] = _peak_gib(device)


# ---------------------------------------------------------------------- region-month
def _block_values(var: int, y0: int, y1: int, x0: int, x1: int, nt: int, seed: int = 11):
    """Deterministic synthetic reflectances / FRP of one block (a function of its place)."""
    rng = np.random.default_rng([seed, var, y0, x0])
    shape = (nt, y1 - y0, x1 - x0)
    if var == 3:  # FRP: mostly zero, a few fires
        v = np.where(rng.random(shape) < 0.002, rng.uniform(1, 50, shape), 0.0)
    else:
        v = rng.uniform(0.02, 0.5, shape)
    v = v.astype(np.float32)
    v[rng.random(shape) < 0.05] = np.nan  # clouds / gaps
    return v


def _cube(size: int, days, chunk: int, lazy: bool):
    import xarray as xr

    coords = {"time": days, "y": 41.6 - 0.01 * np.arange(size), "x": -7.6 + 0.01 * np.arange(size)}
    nt = len(days)
    data = {}
    for i, b in enumerate(BANDS):
        if lazy:
            import dask.array as da

            def gen(block_info=None, i=i):
                (_, _), (y0, y1), (x0, x1) = block_info[None]["array-location"]
                return _block_values(i, y0, y1, x0, x1, nt)

            arr = da.map_blocks(gen, dtype=np.float32,
                                chunks=((nt,), _chunks(size, chunk), _chunks(size, chunk)))
        else:
            arr = np.empty((nt, size, size), np.float32)
            for y0 in range(0, size, chunk):
                for x0 in range(0, size, chunk):
                    y1, x1 = min(y0 + chunk, size), min(x0 + chunk, size)
                    arr[:, y0:y1, x0:x1] = _block_values(i, y0, y1, x0, x1, nt)
        data[b] = (("time", "y", "x"), arr)
    return xr.Dataset(data, coords=coords)


def _chunks(size: int, chunk: int) -> tuple[int, ...]:
    return tuple(min(chunk, size - s) for s in range(0, size, chunk))


def section_region_month(rep: Report, device: str, quick: bool) -> None:

    from firesmoke.models.precision import no_tf32
    from firesmoke.models.weights import save_weights
    from firesmoke.windows import monthly_windows

    size, tile, step, chunk = (48, 32, 25, 32) if quick else (1024, 128, 100, 512)
    n_models = 2 if quick else N_MODELS
    (window,) = monthly_windows(*MONTH)
    work = Path(tempfile.mkdtemp(prefix="gpu_bench_"))
    has_dask = importlib.util.find_spec("dask") is not None
    has_distributed = importlib.util.find_spec("distributed") is not None
    res: dict[str, Any] = {}
    try:
        with rep.section("region_month_setup", f"region-month {size} px x {n_models} models") as s:
            paths = []
            for i in range(n_models):
                paths.append(str(work / f"banet{i}.pt"))
                save_weights(random_banet(i), paths[-1])
            t0 = time.perf_counter()
            cube = _cube(size, window.days, chunk, lazy=False)
            x = np.stack([cube[b].values for b in BANDS])
            s.update(size_px=size, tile=tile, step=step, chunk_px=chunk, models=n_models,
                     window=[str(window.start), str(window.end)], days=int(x.shape[1]),
                     cube_seconds=time.perf_counter() - t0)
            rep.row("cube generated", f"{x.shape} in {s['cube_seconds']:.1f} s")
        with rep.section("region_month_reference", "reference-style loop (b1, fp32, TF32 off)") as s:
            # the first tile of each model includes cuDNN set-up, as it would for a user
            _peak_reset(device)
            with no_tf32(), BusySampler(device) as busy:
                t0 = time.perf_counter()
                ref_conf, ref_date = reference_loop(x, paths, window, device, tile, step)
                _sync(device)
                sec = time.perf_counter() - t0
            res["reference"] = sec
            s.update(seconds=sec, gpu_busy=busy.fraction, peak_gib=_peak_gib(device))
            rep.row("reference-style loop", sec, "s")
            rep.row("  GPU busy (NVML mean)", busy.fraction)
        if not has_dask:
            rep.note("dask is not installed: predict_burned rows skipped (see the docstring "
                     "for carrying dask/distributed as wheels)")
            return

        def firesmoke_run(name: str, title: str, autocast: str | None, client=None) -> None:
            from firesmoke.burned import predict_burned
            from firesmoke.inference import TileModel
            from firesmoke.models.banet_fast import prepare_for_inference

            with rep.section(name, title) as s:
                model = TileModel.from_weights(paths, prepare=prepare_for_inference,
                                               autocast=autocast)
                lazy_cube = _cube(size, window.days, chunk, lazy=True)
                _peak_reset(device)
                secs = []
                for _ in range(1 if quick else 2):  # the first run builds the models
                    with BusySampler(device) as busy:
                        t0 = time.perf_counter()
                        ds = predict_burned(lazy_cube, model, *MONTH, mode="monthly", tile=tile,
                                            step=step, blend="mean", device=device)
                        ds = client.compute(ds).result() if client is not None else ds.compute()
                        secs.append(time.perf_counter() - t0)
                conf = ds["confidence"].values[0]
                date = ds["burn_date"].values[0]
                sec = secs[-1]
                s.update(seconds=sec, seconds_first_run=secs[0], speedup=res["reference"] / sec
                         if "reference" in res else None, gpu_busy=busy.fraction,
                         peak_gib=_peak_gib(device),
                         max_abs_diff_confidence=float(np.abs(conf - ref_conf).max()),
                         burn_date_agreement=float((date == ref_date).mean()))
                rep.row(title, sec, f"s (first run {secs[0]:.2f} s)")
                if s["speedup"]:
                    rep.row("  speed-up over the reference loop", s["speedup"], "x")
                rep.row("  GPU busy (NVML mean)", busy.fraction)
                rep.row("  peak GPU memory of this process", s["peak_gib"], "GiB")
                rep.row("  max |confidence - reference|", s["max_abs_diff_confidence"])
                rep.row("  burn-date agreement", s["burn_date_agreement"])

        import dask

        with dask.config.set(scheduler="threads"):
            firesmoke_run("region_month_threads_bf16", "predict_burned, threads scheduler, bf16",
                          "bf16")
            firesmoke_run("region_month_threads_fp32",
                          "predict_burned, threads scheduler, fp32 (reference-compatible)", None)
        if not has_distributed:
            rep.note("distributed is not installed: LocalCluster row skipped")
            return
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=1, processes=True, threads_per_worker=4 if not quick else 1,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            firesmoke_run("region_month_localcluster_bf16",
                          "predict_burned, one-worker LocalCluster, bf16", "bf16", client)
            rep.note("LocalCluster: peak GPU memory and busy fraction are of the whole GPU / "
                     "this process; the models live in the worker process")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def section_unet(rep: Report, device: str, quick: bool) -> None:
    import torch

    from firesmoke.inference import TileModel, predict_array, predict_numpy
    from firesmoke.models.unet import SmokeUNet

    size = 256 if quick else 2048
    with rep.section("unet_scene", f"U-Net, 12 x {size} x {size} px scene") as s:
        torch.manual_seed(0)
        unet = SmokeUNet(base=8 if quick else 64).eval()
        tm = TileModel(builders=(_Fixed(unet),), key="gpu_bench_unet", activation="sigmoid")
        rng = np.random.default_rng(3)
        z = rng.standard_normal((12, size, size)).astype(np.float32)
        kw = dict(tile=256 if not quick else 128, step=224 if not quick else 112,
                  window="centre", batch_size=16 if not quick else 2, device=device)
        if importlib.util.find_spec("dask") is not None:
            import dask.array as da

            def run() -> None:
                predict_array(da.from_array(z, chunks=(12, 1024, 1024)), tm, out_channels=1,
                              **kw).compute(scheduler="threads")
            s["engine"] = "predict_array (dask, threads)"
        else:
            def run() -> None:
                predict_numpy(z, tm, **kw)
            s["engine"] = "predict_numpy (no dask)"
        _peak_reset(device)
        sec = _timeit(run, device, repeat=1 if quick else 3)
        s.update(size_px=size, seconds_per_scene=sec, scenes_per_s=1.0 / sec,
                 peak_gib=_peak_gib(device), **{k: v for k, v in kw.items() if k != "device"})
        rep.row(f"U-Net scenes/s ({s['engine']})", s["scenes_per_s"], f"({sec:.3f} s/scene)")


class _Fixed:
    """A builder returning a given module (the benchmark's random U-Net)."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def __call__(self) -> Any:
        return self.module


# ============================================================================ main
def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test; any device)")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    ap.add_argument("--device", default=None, help="cuda / cuda:N / cpu (default: cuda if any)")
    ap.add_argument("--skip", nargs="*", default=[],
                    help="sections to skip: matmul tile region unet")
    args = ap.parse_args(argv)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        ap.error(f"device {device!r} asked for but CUDA is not available")
    if device == "cpu" and not args.quick:
        print("warning: the full benchmark on CPU takes very long; use --quick", flush=True)
    rep = Report(args.json)
    rep.data["quick"] = args.quick
    rep.data["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0 = time.perf_counter()
    section_env(rep, device)
    peak = None
    if "matmul" not in args.skip:
        peak = section_matmul(rep, device, args.quick)
    if "tile" not in args.skip:
        section_tile(rep, device, args.quick, peak)
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    if "region" not in args.skip:
        try:
            section_region_month(rep, device, args.quick)
        except Exception as exc:  # set-up failures outside a section
            rep.data["errors"]["region_month"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
    if "unet" not in args.skip:
        section_unet(rep, device, args.quick)
    rep.data["total_seconds"] = time.perf_counter() - t0
    print(f"\ntotal {rep.data['total_seconds']:.1f} s; errors: {list(rep.data['errors']) or 'none'}",
          flush=True)
    rep.save()
    return rep.data


if __name__ == "__main__":
    main()
