"""Shared training utilities: seeding, metric logs, checkpoints, progress bars, schedules.

* :func:`seed_everything` seeds Python, NumPy's legacy global state and PyTorch; the
  training loops additionally derive every random draw (epoch order, augmentation) from
  ``(seed, epoch, step)`` with :func:`step_rng`, so a run resumed from a checkpoint makes
  exactly the draws an uninterrupted run would have made.
* :class:`MetricLog` appends rows to ``<name>.csv`` and ``<name>.json`` (both rewritten
  atomically); on resume it drops rows logged after the checkpoint.
* :func:`save_checkpoint` / :func:`load_checkpoint`: model, optimiser, scheduler and
  counters in one file written atomically, read back with ``weights_only=True``.
* :func:`progress` wraps :mod:`tqdm` behind a ``progress`` flag.
* :func:`make_optimizer` / :func:`make_scheduler`: SGD or AdamW; step decay, cosine with
  warm-up or reduce-on-plateau.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from firesmoke.errors import InputError, WeightsError

__all__ = [
    "MetricLog",
    "TrainResult",
    "load_checkpoint",
    "make_optimizer",
    "make_scheduler",
    "progress",
    "save_checkpoint",
    "seed_everything",
    "set_threads",
    "step_rng",
    "write_json",
]

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- seeding
def seed_everything(seed: int) -> None:
    """Seed ``random``, NumPy's global state and PyTorch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (legacy global state, for third-party code)
    torch.manual_seed(seed)


def step_rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator for ``(seed, *keys)``, e.g. ``(seed, epoch, step)``.

    Derived with :class:`numpy.random.SeedSequence`, so generators for different keys
    are statistically independent and a resumed run can recreate any of them.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), *(int(k) for k in keys)]))


class set_threads:  # lower case: used like a function
    """Set PyTorch's intra-op CPU threads to ``n`` now (``None``: unchanged).

    Used as a context manager (``with set_threads(1): ...``) the previous number is
    restored on exit; called plainly the setting stays.
    """

    def __init__(self, n: int | None) -> None:
        self.n = n
        self.previous = torch.get_num_threads()
        if n is not None:
            torch.set_num_threads(int(n))

    def __enter__(self) -> set_threads:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.n is not None:
            torch.set_num_threads(self.previous)


# ----------------------------------------------------------------------------- results
@dataclass
class TrainResult:
    """What a training run produced.

    Attributes
    ----------
    out
        Output folder (weights, logs, checkpoint).
    weights
        Final weights file (:func:`firesmoke.models.weights.save_weights` format).
    sha256
        State-dict checksum of the saved weights.
    metrics
        Test-split scores (``standard``, ``legacy_definitions``, ``legacy_protocol``)
        and the final validation scores.
    history
        Logged rows (train and validation), as in ``metrics.csv``.
    steps, epochs
        Optimiser steps and epochs done (counting those before a resume).
    splits
        Site ids of the ``train``, ``val`` and ``test`` splits.
    model
        The trained module (eval mode, on CPU).
    """

    out: Path
    weights: Path | None
    sha256: str | None
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    steps: int
    epochs: int
    splits: dict[str, list[str]] = field(default_factory=dict)
    model: nn.Module | None = None


# ----------------------------------------------------------------------------- logs
def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return os.fspath(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf
    return value


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (NaN/inf become ``null``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(_plain(obj), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
    return p


class MetricLog:
    """Rows of metrics kept in memory and mirrored to ``<out>/<name>.csv`` and ``.json``.

    Each :meth:`log` rewrites both files atomically (the logs are small), so they are
    always complete and readable during training. The CSV header is the union of the
    keys seen so far, in first-seen order.

    Parameters
    ----------
    out
        Folder of the two files.
    name
        File stem (``metrics`` gives ``metrics.csv`` and ``metrics.json``).
    resume
        Load existing rows instead of starting empty.
    """

    def __init__(self, out: str | os.PathLike[str], name: str = "metrics", resume: bool = False):
        self.out = Path(out)
        self.csv_path = self.out / f"{name}.csv"
        self.json_path = self.out / f"{name}.json"
        self.rows: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}
        if resume and self.json_path.is_file():
            try:
                doc = json.loads(self.json_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InputError(f"cannot read the metric log: {exc}", path=self.json_path) from exc
            self.rows = list(doc.get("history", []))
            self.extra = {k: v for k, v in doc.items() if k != "history"}

    def truncate(self, step: int) -> None:
        """Drop rows logged after ``step`` (they belong to work a resume will redo)."""
        self.rows = [r for r in self.rows if int(r.get("step", 0)) <= step]
        self._write()

    def log(self, **row: Any) -> dict[str, Any]:
        """Append a row and rewrite the files; returns the row as stored."""
        row = _plain(row)
        self.rows.append(row)
        self._write()
        return row

    def update(self, **extra: Any) -> None:
        """Store extra top-level entries (config, test scores) in the JSON file."""
        self.extra.update(_plain(extra))
        self._write()

    def _write(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.json_path, {**self.extra, "history": self.rows})
        keys: list[str] = []
        for r in self.rows:
            keys.extend(k for k in r if k not in keys)
        tmp = self.csv_path.with_name(f".{self.csv_path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=keys, restval="")
                w.writeheader()
                for r in self.rows:
                    w.writerow({k: ("" if v is None else v) for k, v in r.items()})
            os.replace(tmp, self.csv_path)
        finally:
            tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- checkpoints
def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    step: int,
    epoch: int,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write model, optimiser and scheduler state plus counters atomically.

    ``extra`` must hold plain data (numbers, strings, lists, dicts, tensors) so that the
    file loads with ``torch.load(..., weights_only=True)``.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": "firesmoke-checkpoint",
        "step": int(step),
        "epoch": int(epoch),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "torch_rng": torch.get_rng_state(),
        "extra": _plain(dict(extra or {})),
    }
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
    logger.debug("checkpoint at step %d written to %s", step, p)
    return p


def load_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
) -> dict[str, Any]:
    """Restore a checkpoint written by :func:`save_checkpoint` into the given objects.

    Returns
    -------
    dict
        ``step``, ``epoch`` and ``extra`` of the checkpoint.

    Raises
    ------
    WeightsError
        Missing, corrupt or incompatible checkpoint (the message names the file).
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError("checkpoint not found", path=p)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files
        raise WeightsError(f"cannot read checkpoint: {exc}".split("\n")[0], path=p) from exc
    if not isinstance(state, dict) or state.get("format") != "firesmoke-checkpoint":
        raise WeightsError("not a firesmoke training checkpoint", path=p)
    try:
        model.load_state_dict(state["model"], strict=True)
        if optimizer is not None:
            optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise WeightsError(
            f"checkpoint does not fit this model/optimiser: {exc}".split("\n")[0], path=p
        ) from exc
    torch.set_rng_state(state["torch_rng"])
    return {"step": int(state["step"]), "epoch": int(state["epoch"]), "extra": state["extra"]}


# ----------------------------------------------------------------------------- progress
def progress(
    iterable: Iterable[Any] | None = None,
    enabled: bool = True,
    total: int | None = None,
    desc: str | None = None,
    initial: int = 0,
) -> Any:
    """A :class:`tqdm.tqdm` bar, or a silent one when ``enabled`` is False."""
    from tqdm.auto import tqdm

    return tqdm(
        iterable, total=total, desc=desc, initial=initial, disable=not enabled, leave=False,
        dynamic_ncols=True,
    )


# ----------------------------------------------------------------------------- optimisation
def make_optimizer(
    name: str,
    params: Iterable[nn.Parameter] | Sequence[dict[str, Any]],
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """``"sgd"`` (with momentum) or ``"adamw"``."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise InputError(f"unknown optimiser {name!r}; use 'sgd' or 'adamw'", field="optimizer")


def make_scheduler(
    name: str | None,
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int = 1,
    warmup_steps: int = 0,
    step_size: int = 11,
    gamma: float = 0.5,
    patience: int = 10,
    min_lr_ratio: float = 0.0,
    min_lr: float = 0.0,
) -> Any:
    """A learning-rate schedule.

    Parameters
    ----------
    name
        ``"step"``: multiply by ``gamma`` every ``step_size`` epochs (call ``.step()`` once
        per epoch); ``"cosine"``: linear warm-up over ``warmup_steps`` then cosine decay to
        ``min_lr_ratio`` x lr at ``total_steps`` (call once per optimiser step);
        ``"plateau"``: multiply by ``gamma`` when the validation loss has not improved for
        ``patience`` validations (call ``.step(val_loss)``); ``"epoch-plateau"``: the same
        scheduler stepped with the epoch number (the smoke reference's usage: the rate
        halves every ``patience + 1`` epochs); both never go below ``min_lr``;
        ``None``: constant.
    """
    if name is None or name == "constant":
        return None
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if name in ("plateau", "epoch-plateau"):
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=gamma, patience=patience, min_lr=min_lr
        )
    if name == "cosine":
        total = max(int(total_steps), 1)
        warm = max(int(warmup_steps), 0)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            t = min((step - warm) / max(total - warm, 1), 1.0)
            return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    raise InputError(
        f"unknown schedule {name!r}; use 'step', 'cosine', 'plateau' or None", field="schedule"
    )
