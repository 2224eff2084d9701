"""Helpers of ``gpu_bench.py``: the report, timing, GPU busy sampling, peak memory."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
import traceback
from typing import Any

import numpy as np


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


