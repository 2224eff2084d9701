"""BA-Net training on Zarr datacubes: reference recipe, resumable, deterministic on CPU.

Recipe (reference/banet.md), every part a parameter of :func:`train_banet`:

* samples of ``seq_len`` days x ``patch`` px drawn from the cubes by
  :class:`~firesmoke.train.sampler.TrainingSampler` (burned-fraction sum above 10, plus 20 %
  uniform draws), read straight from the Zarr stores, NaN -> 0 and BA-Net normalisation;
* augmentation :class:`~firesmoke.train.augment_banet.BANetAugment` (FRP squares zeroed,
  one reflectance square filled, each with p = 0.5);
* loss ``100 * BCEWithLogits`` of the per-day logits against the soft ``bafrac`` targets,
  averaged over the observed target pixel-days (unobserved ones are masked out);
* one-cycle schedule (:class:`torch.optim.lr_scheduler.OneCycleLR`, max lr 1e-2, warm-up
  over the first 25 % of the steps, momentum/beta1 cycled 0.95 -> 0.85 -> 0.95) with
  **AdamW** (decoupled weight decay 1e-2, betas 0.95/0.99). The reference trained with
  fastai's one-cycle policy, whose default optimiser is Adam with decoupled ("true")
  weight decay, i.e. AdamW; the schedule constants here are fastai's defaults;
* gradient-norm clipping at 1; batch size 1; 8 epochs x 2000 sequences = 16000 steps.

Engineering:

* mixed precision on CUDA only (bf16 autocast where supported, else fp16 with a
  :class:`torch.amp.GradScaler`); CPU runs in float32;
* every random draw of step ``s`` (samples, augmentations, dropout) derives from
  ``(seed, s)``, the model is initialised from ``seed``: on CPU the same seed gives the
  same weights, and ``resume=True`` continues from the last checkpoint (model,
  optimiser, scheduler, grad scaler, sampler state, step) to exactly the weights of an
  uninterrupted run;
* periodic validation on fixed samples of held-out cubes (split by region) or of a
  held-out period (split by time) with :func:`firesmoke.metrics.sequence_scores`;
* ``metrics.csv`` / ``metrics.json`` in ``out`` (training loss, lr, validation scores,
  configuration, timing), ``checkpoint.pt``, and the final weights ``<name>.pt`` written
  with :func:`firesmoke.models.weights.save_weights` (bands, normalisation, tile size,
  sequence length, training data, metrics in the metadata).

The command line (``firesmoke train banet``) calls :func:`train_banet_stores` with the
stores and the options given.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from firesmoke._version import __version__
from firesmoke.cube.build import burned_fraction_cube, open_cube
from firesmoke.errors import InputError
from firesmoke.grid import Region
from firesmoke.metrics import sequence_scores
from firesmoke.models.banet import BANet
from firesmoke.models.normalization import BANET
from firesmoke.train.augment_banet import BANetAugment, ReferenceAugment
from firesmoke.train.banet_steps import (
    banet_loss,
    check_sizes,
    make_samplers,
    optimisation,
    resume_state,
    save_final,
    train_step,
)
from firesmoke.train.common import (
    MetricLog,
    TrainResult,
    save_checkpoint,
    seed_everything,
    set_threads,
)
from firesmoke.train.common import progress as _progress
from firesmoke.train.sampler import (
    BANetSamples,
    CubeSource,
    Sample,
    TrainingSampler,
    write_targets,
)

__all__ = ["RECIPES", "banet_loss", "train_banet", "train_banet_stores"]

logger = logging.getLogger(__name__)

#: Training recipes of :func:`train_banet`; the first is the default.
RECIPES = ("firesmoke", "reference")

CHECKPOINT = "checkpoint.pt"


def _amp_setup(device: str, amp: bool) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
    if not (amp and device.startswith("cuda")):
        return None, None
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, None
    return torch.float16, torch.amp.GradScaler("cuda")


def _batch_to(batch: Mapping[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


class _Validator:
    """Fixed validation samples, read once, scored with the reference metrics."""

    def __init__(self, sampler: TrainingSampler | None, n: int) -> None:
        self.samples: list[Sample] = sampler.samples(n) if sampler is not None else []
        self.items = [sampler.read(w) for w in self.samples] if sampler is not None else []

    def __bool__(self) -> bool:
        return bool(self.items)

    def __call__(self, model: nn.Module, device: str, amp_dtype: torch.dtype | None,
                 pos_weight: float) -> dict[str, float]:
        was_training = model.training
        model.eval()
        probs, targets, masks, losses = [], [], [], []
        with torch.inference_mode():
            for it in self.items:
                x = torch.from_numpy(it["x"])[None].to(device)
                y = torch.from_numpy(it["y"])[None].to(device)
                m = torch.from_numpy(it["mask"])[None].to(device)
                with torch.autocast("cuda", dtype=amp_dtype or torch.bfloat16,
                                    enabled=amp_dtype is not None):
                    logits = model(x)
                losses.append(float(banet_loss(logits, y, m, pos_weight=pos_weight)))
                probs.append(torch.sigmoid(logits.float())[0, 0].cpu().numpy())
                targets.append(it["y"][0])
                masks.append(it["mask"][0])
        model.train(was_training)
        p = np.stack(probs)
        t = np.stack(targets)
        scores = sequence_scores(p * np.stack(masks), t)
        keep = ("dice", "date_mae", "date_within_2", "pixel_day_accuracy", "commission",
                "omission", "n_dated")
        out = {k: float(scores[k]) for k in keep}
        out["loss"] = float(np.mean(losses))
        out["samples"] = len(self.items)
        return out


# --------------------------------------------------------------------------- training
def train_banet(
    cubes_and_targets: Sequence[CubeSource | tuple[Any, Any]],
    out: str | os.PathLike[str],
    *,
    steps: int = 16000,
    batch_size: int = 1,
    lr_max: float = 1e-2,
    weight_decay: float = 1e-2,
    clip: float = 1.0,
    pct_start: float = 0.25,
    seq_len: int = 64,
    patch: int = 128,
    stride: int | None = None,
    t_stride: int = 8,
    threshold: float = 10.0,
    random_share: float = 0.2,
    jitter: bool = False,
    augment: bool = True,
    flips: bool = False,
    pos_weight: float = 1.0,
    seed: int = 0,
    device: str | None = None,
    amp: bool = True,
    checkpoint_every: int = 500,
    resume: bool = False,
    stop_at: int | None = None,
    val: Sequence[CubeSource | tuple[Any, Any]] | tuple[Any, Any] | None = None,
    val_every: int = 500,
    val_samples: int = 32,
    log_every: int = 10,
    num_workers: int = 0,
    threads: int | None = None,
    name: str = "banet",
    half: bool = False,
    training_data: str | None = None,
    epoch_size: int = 2000,
    progress: bool = True,
    recipe: str = "firesmoke",
) -> TrainResult:
    """Train BA-Net on datacubes and their burned-fraction targets.

    Parameters
    ----------
    cubes_and_targets
        :class:`~firesmoke.train.sampler.CubeSource` objects or ``(cube, targets)`` pairs
        (Zarr store paths or Datasets; see :func:`~firesmoke.train.sampler.open_source`).
    out
        Output folder: logs, checkpoint, final weights ``<name>.pt``.
    steps
        Optimiser steps (the one-cycle length); reference 16000 (8 x 2000, batch 1).
    batch_size, lr_max, weight_decay, clip, pct_start
        Recipe (reference 1, 1e-2, 1e-2, 1.0; one-cycle warm-up share 0.25).
    seq_len, patch
        Sample length in days (multiple of 16) and side in pixels (multiple of 32); reference 64
        and 128. Smaller samples train much faster on CPU; the network is convolutional,
        so weights trained on small samples run on 64-day x 128 px tiles.
    stride, t_stride, threshold, random_share, jitter
        Sampler settings (:class:`~firesmoke.train.sampler.TrainingSampler`).
    augment, flips
        Reference augmentations; ``flips`` adds random flips / rotations (not reference).
    pos_weight
        Weight of burned pixel-days in the loss (1 = reference).
    seed
        Seed of initialisation, draws, augmentation and dropout.
    device
        ``"cuda"``, ``"cpu"`` or ``None`` (CUDA when available).
    amp
        Mixed precision on CUDA (ignored on CPU).
    checkpoint_every
        Write ``checkpoint.pt`` every this many steps (and at the end).
    resume
        Continue from ``out/checkpoint.pt`` when it exists (same configuration required).
    stop_at
        Stop after this step (checkpoint written), e.g. to fit a job's time limit; a
        later call with ``resume=True`` finishes the run.
    val
        Held-out data: other cubes (split by region), or a ``(start, end)`` period of the
        training cubes (split by time: training samples never touch it, validation
        samples lie inside it), or ``None``.
    val_every, val_samples
        Validation period (steps) and number of fixed validation samples.
    log_every
        Training-loss logging period (steps).
    num_workers
        DataLoader worker processes (0: read windows in the training process).
    threads
        CPU threads for PyTorch (``None``: unchanged).
    name
        Stem of the weights file.
    half
        Save the final weights as float16.
    training_data
        Description stored in the weights' metadata (default: the cube names).
    epoch_size
        Sequences per "epoch" (reporting only; reference 2000).
    progress
        Show a tqdm progress bar.
    recipe
        ``"firesmoke"`` (default): windows by burned-fraction sum plus a uniform share,
        whole-window augmentations (:class:`BANetAugment`). ``"reference"``: the
        reference software's sampler (anchor tile-days with target sum > ``threshold``,
        sequence from ``seq_len // 2`` days before; ``TrainingSampler(rule="reference")``)
        and its per-day augmentations (:class:`ReferenceAugment`: lighting, cutout,
        cutout2; no flips).

    Returns
    -------
    TrainResult
        ``weights`` and ``sha256`` of the saved weights, ``metrics`` (final validation),
        ``history`` (logged rows), ``steps``, ``epochs``, ``splits`` and the model.
    """
    if recipe not in RECIPES:
        raise InputError(f"unknown recipe {recipe!r}; choose from {RECIPES}", field="recipe")
    if recipe == "reference" and flips:
        raise InputError("the reference recipe has no flips or rotations", field="flips")
    check_sizes(steps, batch_size, seq_len, patch)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    set_threads(threads)
    dev = "cuda" if device is None and torch.cuda.is_available() else (device or "cpu")
    skw = dict(seq_len=seq_len, patch=patch, stride=stride, t_stride=t_stride,
               threshold=threshold, random_share=random_share,
               rule="reference" if recipe == "reference" else "firesmoke")
    sampler, val_sampler, splits = make_samplers(cubes_and_targets, val, skw, jitter, seed)
    amp_dtype, scaler = _amp_setup(dev, amp)
    config = {
        "recipe": recipe, "steps": steps, "batch_size": batch_size, "lr_max": lr_max,
        "weight_decay": weight_decay, "clip": clip, "pct_start": pct_start,
        "seq_len": seq_len, "patch": patch, "stride": sampler.stride, "t_stride": t_stride,
        "threshold": threshold, "random_share": sampler.random_share, "jitter": sampler.jitter,
        "augment": augment, "flips": flips, "pos_weight": pos_weight, "seed": seed,
        "device": dev, "amp": amp,
        "mixed_precision": str(amp_dtype).removeprefix("torch.") if amp_dtype else "off",
        "optimizer": "AdamW (decoupled weight decay)",
        "betas": [0.95, 0.99], "schedule": "OneCycleLR", "loss": "100 * BCEWithLogits (masked)",
        "candidates": len(sampler), "burned_candidates": len(sampler.burned_ids),
        "splits": splits,
    }

    # -- model, optimiser, schedule (initialisation depends on the seed only)
    seed_everything(seed)
    model = BANet(in_ch=len(BANET.bands), n_classes=1, sequence_len=seq_len).to(dev)
    opt, sched = optimisation(model, steps, lr_max, weight_decay, pct_start)
    log = MetricLog(out, "metrics", resume=resume)
    ckpt = out / CHECKPOINT
    start, elapsed0 = resume_state(ckpt, resume, model, opt, sched, scaler, config, log)
    log.update(config=config, package_version=__version__)
    end = steps if stop_at is None else min(int(stop_at), steps)

    dataset = BANetSamples(sampler, length=max(end - start, 0) * batch_size,
                           augment=_augmenter(recipe, augment, flips),
                           offset=start * batch_size)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
        pin_memory=dev.startswith("cuda"), persistent_workers=False)
    validator = _Validator(val_sampler, val_samples)

    def checkpoint(step: int) -> None:
        save_checkpoint(ckpt, model, opt, sched, step, (step * batch_size) // epoch_size, extra={
            "config": config, "sampler": {**sampler.state_dict(), "next_draw": step * batch_size},
            "scaler": scaler.state_dict() if scaler is not None else None,
            "elapsed_s": elapsed0 + time.perf_counter() - t0})

    model.train()
    t0 = time.perf_counter()
    step = start
    run_loss, run_n = 0.0, 0
    last_val: dict[str, float] = {}
    bar = _progress(total=steps, initial=start, desc="BA-Net", enabled=progress)
    try:
        for batch in loader:
            value, lr, gnorm = train_step(model, _batch_to(batch, dev), opt, sched, scaler,
                                           amp_dtype, clip, pos_weight, seed, step)
            step += 1
            if not math.isfinite(value):
                raise FloatingPointError(f"BA-Net training diverged at step {step} (loss {value})")
            run_loss += value
            run_n += 1
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}")
            if step % log_every == 0 or step == end:
                log.log(step=step, split="train", loss=run_loss / run_n, lr=lr, grad_norm=gnorm,
                        elapsed_s=elapsed0 + time.perf_counter() - t0)
                run_loss, run_n = 0.0, 0
            if validator and (step % val_every == 0 or step == steps):
                last_val = validator(model, dev, amp_dtype, pos_weight)
                log.log(step=step, split="val", **last_val,
                        elapsed_s=elapsed0 + time.perf_counter() - t0)
                logger.info("step %d: validation %s", step,
                            {k: round(v, 4) for k, v in last_val.items()})
            if step % checkpoint_every == 0 or step == end:
                checkpoint(step)
    finally:
        bar.close()
    if step == start and start < end:  # nothing ran (empty loader): keep state consistent
        checkpoint(step)
    elapsed = elapsed0 + time.perf_counter() - t0
    epochs = (step * batch_size) // epoch_size
    model.eval()
    if step < steps:
        logger.info("stopped at step %d of %d; resume=True continues", step, steps)
        return TrainResult(out, None, None, {"validation": last_val}, log.rows, step, epochs,
                           splits, model.cpu())
    if validator and not last_val:
        last_val = validator(model, dev, amp_dtype, pos_weight)
    metrics = {"validation": last_val, "validation_windows": len(validator.items)}
    weights, sha = save_final(model, out, name, half, seq_len, patch, training_data, splits,
                               config, metrics, elapsed, steps, log)
    return TrainResult(out, weights, sha, metrics, log.rows, step, epochs, splits, model)


def _augmenter(recipe: str, augment: bool, flips: bool) -> Any:
    if not augment:
        return _FlipsOnly() if flips else None
    return ReferenceAugment() if recipe == "reference" else BANetAugment(flips=flips)


class _FlipsOnly:
    """Random flips / rotations without the reference augmentations."""

    def __call__(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return BANetAugment(p_frp=0.0, p_fill=0.0, flips=True)(x, y, mask, rng)


# --------------------------------------------------------------------------- CLI entry
def _is_zarr_store(path: Path) -> bool:
    return path.is_dir() and ((path / "zarr.json").is_file() or (path / ".zgroup").is_file())


def _prepare_targets(cube: Any, targets: Any, out: Path, i: int,
                     denominator: str = "observed") -> Any:
    """A target store for ``cube``: the given store, or one built from MCD64A1/VNP64A1 sources."""
    if isinstance(targets, str | os.PathLike) and _is_zarr_store(Path(targets)):
        return targets
    if not isinstance(targets, str | os.PathLike | list | tuple):
        return targets
    ds = open_cube(cube) if isinstance(cube, str | os.PathLike) else cube
    region = Region.from_dataset(ds)
    suffix = "" if denominator == "observed" else f"_{denominator}"
    store = out / "targets" / f"targets_{i}{suffix}.zarr"
    if not _is_zarr_store(store):
        logger.info("building burned-fraction targets from %s into %s", targets, store)
        frac = burned_fraction_cube(region, targets, None, None, like=ds, denominator=denominator)
        for item in frac.attrs.get("skipped_inputs", []):
            logger.warning("targets %s: skipped %s", store.name, item)
        write_targets(frac, store, like=ds)
    return store


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str | os.PathLike) else list(value)


def train_banet_stores(
    cube: Any,
    targets: Any,
    out: str | os.PathLike[str],
    *,
    val_cube: Any = None,
    val_targets: Any = None,
    val_period: str | tuple[Any, Any] | None = None,
    targets_denominator: str = "observed",
    **train_kwargs: Any,
) -> TrainResult:
    """Train BA-Net from stores on disk (what ``firesmoke train banet`` calls).

    Parameters
    ----------
    cube
        One or a list of Zarr cube stores.
    targets
        As many target stores, or MCD64A1 files/folders from which target stores are
        built in ``out/targets/``.
    out
        Output folder.
    val_cube, val_targets
        Held-out cubes and their targets (split by region).
    val_period
        ``"YYYY-MM-DD..YYYY-MM-DD"`` or a pair (split by time); not with ``val_cube``.
    targets_denominator
        Denominator of targets built from MCD64A1 files: ``"observed"`` (default) or
        ``"all"`` (the reference's; see :func:`firesmoke.io.burned_area.mcd64.daily_burned_fraction`).
    **train_kwargs
        Keyword arguments of :func:`train_banet` (``steps``, ``recipe``, ...).
    """
    out = Path(out)
    cubes = _as_list(cube)
    tgts = _as_list(targets)
    if len(tgts) != len(cubes):
        raise InputError(f"{len(cubes)} cube(s) but {len(tgts)} target source(s)",
                         field="targets")
    pairs = [(c, _prepare_targets(c, t, out, i, targets_denominator))
             for i, (c, t) in enumerate(zip(cubes, tgts, strict=True))]
    val: Any = None
    if val_period is not None:
        val = tuple(val_period.split("..")) if isinstance(val_period, str) else tuple(val_period)
        if len(val) != 2:
            raise InputError("val_period must be START..END", field="val_period")
    if val_cube is not None:
        if val_targets is None:
            raise InputError("val_cube needs val_targets", field="val_targets")
        if val is not None:
            raise InputError("give either val_cube or val_period, not both", field="val_cube")
        val = [(c, _prepare_targets(c, t, out, 1000 + i, targets_denominator))
               for i, (c, t) in enumerate(zip(_as_list(val_cube), _as_list(val_targets),
                                              strict=True))]
    unknown = sorted(set(train_kwargs) - set(train_banet.__kwdefaults__ or {}) - {"val"})
    if unknown:
        raise InputError(f"unknown option(s) for train banet: {unknown}", field=unknown[0])
    return train_banet(pairs, out, val=val, **train_kwargs)
