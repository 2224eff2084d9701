"""BA-Net training on Zarr datacubes: reference recipe, resumable, deterministic on CPU.

Recipe (reference/banet.md), every part a parameter of :func:`train_banet`:

* windows of ``seq_len`` days x ``patch`` px drawn from the cubes by
  :class:`~firesmoke.train.sampler.WindowSampler` (burned-fraction sum above 10, plus 20 %
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
* every random draw of step ``s`` (windows, augmentations, dropout) derives from
  ``(seed, s)``, the model is initialised from ``seed``: on CPU the same seed gives the
  same weights, and ``resume=True`` continues from the last checkpoint (model,
  optimiser, scheduler, grad scaler, sampler state, step) to exactly the weights of an
  uninterrupted run;
* periodic validation on fixed windows of held-out cubes (split by region) or of a
  held-out period (split by time) with :func:`firesmoke.metrics.sequence_scores`;
* ``metrics.csv`` / ``metrics.json`` in ``out`` (training loss, lr, validation scores,
  configuration, timing), ``checkpoint.pt``, and the final weights ``<name>.pt`` written
  with :func:`firesmoke.models.weights.save_weights` (bands, normalisation, tile size,
  sequence length, training data, metrics in the metadata).

The command line (``firesmoke train banet``) calls :func:`train_banet_cli` with a dict of
its options.
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
from firesmoke.errors import InputError
from firesmoke.metrics import sequence_scores
from firesmoke.models.banet import BANet
from firesmoke.models.normalization import BANET
from firesmoke.models.weights import save_weights
from firesmoke.train.augment_banet import BANetAugment
from firesmoke.train.common import (
    MetricLog,
    TrainResult,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    set_threads,
    step_rng,
)
from firesmoke.train.common import progress as _progress
from firesmoke.train.sampler import (
    BANetWindows,
    CubeSource,
    Window,
    WindowSampler,
    open_source,
    write_targets,
)

__all__ = ["banet_loss", "train_banet", "train_banet_cli"]

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
# configuration entries that must match for a resume to continue the same run
_RESUME_KEYS = ("steps", "batch_size", "seq_len", "patch", "seed", "lr_max", "weight_decay",
                "pct_start", "stride", "t_stride", "threshold", "random_share")


def banet_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    scale: float = 100.0,
    pos_weight: float = 1.0,
) -> torch.Tensor:
    """``scale * BCEWithLogits`` of per-day logits vs soft targets, over observed pixel-days.

    Parameters
    ----------
    logits, target
        ``(B, 1, T, H, W)``; targets in [0, 1].
    mask
        1 where the target is observed (same shape); ``None``: everything.
    scale
        Loss multiplier (100 in the reference).
    pos_weight
        Weight of the positive term (1 in the reference).
    """
    pw = None if pos_weight == 1.0 else torch.tensor(pos_weight, dtype=logits.dtype,
                                                      device=logits.device)
    loss = nn.functional.binary_cross_entropy_with_logits(
        logits.float(), target.float(), reduction="none", pos_weight=pw)
    if mask is None:
        return scale * loss.mean()
    m = mask.float()
    return scale * (loss * m).sum() / m.sum().clamp_min(1.0)


# --------------------------------------------------------------------------- helpers
def _sources(items: Any, what: str) -> list[CubeSource]:
    if items is None:
        return []
    out = []
    for it in items:
        if isinstance(it, CubeSource):
            out.append(it)
        else:
            try:
                cube, targets = it
            except (TypeError, ValueError) as exc:
                raise InputError(f"{what}: expected (cube, targets) pairs", field=what) from exc
            out.append(open_source(cube, targets))
    return out


def _is_period(val: Any) -> bool:
    if val is None or isinstance(val, str | os.PathLike):
        return False
    try:
        a, b = val
    except (TypeError, ValueError):
        return False
    return not isinstance(a, CubeSource | tuple | list) and not isinstance(b, CubeSource | tuple | list)


def _amp_setup(device: str, amp: bool) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
    if not (amp and device.startswith("cuda")):
        return None, None
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, None
    return torch.float16, torch.amp.GradScaler("cuda")


def _batch_to(batch: Mapping[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


class _Validator:
    """Fixed validation windows, read once, scored with the reference metrics."""

    def __init__(self, sampler: WindowSampler | None, n: int) -> None:
        self.windows: list[Window] = sampler.windows(n) if sampler is not None else []
        self.items = [sampler.read(w) for w in self.windows] if sampler is not None else []

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
        out["windows"] = len(self.items)
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
    val_windows: int = 32,
    log_every: int = 10,
    num_workers: int = 0,
    threads: int | None = None,
    name: str = "banet",
    half: bool = False,
    training_data: str | None = None,
    epoch_size: int = 2000,
    progress: bool = True,
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
        Window size in days (multiple of 16) and pixels (multiple of 32); reference 64
        and 128. Smaller windows train much faster on CPU; the network is convolutional,
        so weights trained on small windows run on 64-day x 128 px tiles.
    stride, t_stride, threshold, random_share, jitter
        Sampler settings (:class:`~firesmoke.train.sampler.WindowSampler`).
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
        training cubes (split by time: training windows never touch it, validation
        windows lie inside it), or ``None``.
    val_every, val_windows
        Validation period (steps) and number of fixed validation windows.
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

    Returns
    -------
    TrainResult
        ``weights`` and ``sha256`` of the saved weights, ``metrics`` (final validation),
        ``history`` (logged rows), ``steps``, ``epochs``, ``splits`` and the model.
    """
    if steps < 2:
        raise InputError("steps must be >= 2 (one-cycle schedule)", field="steps")
    if batch_size < 1:
        raise InputError("batch_size must be >= 1", field="batch_size")
    if batch_size * (seq_len // 16) * (patch // 32) ** 2 < 2:
        raise InputError(
            "batch norm needs more than one value per channel at BA-Net's deepest level "
            f"(batch x seq_len/16 x (patch/32)^2 = {batch_size * (seq_len // 16) * (patch // 32) ** 2}"
            "); use a larger batch, sequence or patch", field="batch_size")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    set_threads(threads)
    dev = "cuda" if device is None and torch.cuda.is_available() else (device or "cpu")
    train_sources = _sources(cubes_and_targets, "cubes_and_targets")
    skw = dict(seq_len=seq_len, patch=patch, stride=stride, t_stride=t_stride,
               threshold=threshold, random_share=random_share)
    if _is_period(val):
        sampler = WindowSampler(train_sources, **skw, exclude=val, jitter=jitter, seed=seed)
        val_sampler = WindowSampler(train_sources, **skw, period=val, seed=seed + 1)
        val_names = [f"{s.name}[{val[0]}..{val[1]}]" for s in train_sources]
    else:
        val_sources = _sources(val, "val")
        sampler = WindowSampler(train_sources, **skw, jitter=jitter, seed=seed)
        val_sampler = WindowSampler(val_sources, **skw, seed=seed + 1) if val_sources else None
        val_names = [s.name for s in val_sources]
    splits = {"train": [s.name for s in train_sources], "val": val_names}
    amp_dtype, scaler = _amp_setup(dev, amp)
    config = {
        "steps": steps, "batch_size": batch_size, "lr_max": lr_max,
        "weight_decay": weight_decay, "clip": clip, "pct_start": pct_start,
        "seq_len": seq_len, "patch": patch, "stride": sampler.stride, "t_stride": t_stride,
        "threshold": threshold, "random_share": random_share, "jitter": jitter,
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
    opt = torch.optim.AdamW(model.parameters(), lr=lr_max / 25.0, betas=(0.95, 0.99),
                            weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr_max, total_steps=steps, anneal_strategy="cos",
        # very short runs: keep both phases at least one step long
        pct_start=min(max(pct_start, 1.5 / steps), 1.0 - 0.5 / steps),
        cycle_momentum=True, base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
        final_div_factor=1e5)
    log = MetricLog(out, "metrics", resume=resume)
    ckpt = out / CHECKPOINT
    start = 0
    elapsed0 = 0.0
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt, model, opt, sched)
        old = state["extra"].get("config", {})
        diff = {k: (old.get(k), config[k]) for k in _RESUME_KEYS if old.get(k) != config[k]}
        if diff:
            raise InputError(
                f"cannot resume: the checkpoint was made with other settings {diff}", path=ckpt)
        if scaler is not None and state["extra"].get("scaler"):
            scaler.load_state_dict(state["extra"]["scaler"])
        start = state["step"]
        elapsed0 = float(state["extra"].get("elapsed_s", 0.0))
        log.truncate(start)
        logger.info("resumed from %s at step %d", ckpt, start)
    elif resume:
        logger.info("no checkpoint in %s; starting from scratch", out)
    log.update(config=config, package_version=__version__)
    end = steps if stop_at is None else min(int(stop_at), steps)

    augmenter = BANetAugment(flips=flips) if augment else (
        _FlipsOnly() if flips else None)
    dataset = BANetWindows(sampler, length=max(end - start, 0) * batch_size,
                           augment=augmenter, offset=start * batch_size)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
        pin_memory=dev.startswith("cuda"), persistent_workers=False)
    validator = _Validator(val_sampler, val_windows)

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
            b = _batch_to(batch, dev)
            # dropout draws of this step depend on (seed, step) only
            torch.manual_seed(int(step_rng(seed, step, 2).integers(2**62)))
            with torch.autocast("cuda", dtype=amp_dtype or torch.bfloat16,
                                enabled=amp_dtype is not None):
                logits = model(b["x"])
            loss = banet_loss(logits, b["y"], b["mask"], pos_weight=pos_weight)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
            else:
                loss.backward()
            gnorm = nn.utils.clip_grad_norm_(model.parameters(), clip) if clip else None
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            lr = opt.param_groups[0]["lr"]
            sched.step()
            step += 1
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"BA-Net training diverged at step {step} (loss {value})")
            run_loss += value
            run_n += 1
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}")
            if step % log_every == 0 or step == end:
                log.log(step=step, split="train", loss=run_loss / run_n, lr=lr,
                        grad_norm=float(gnorm) if gnorm is not None else None,
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
    timing = {"train_s": elapsed, "s_per_step": elapsed / max(steps, 1)}
    metrics = {"validation": last_val, "validation_windows": len(validator.items)}
    meta = {
        "bands": list(BANET.bands),
        "normalization": BANET.to_dict(),
        "tile_size": 128,
        "sequence_length": seq_len,
        "training_patch": patch,
        "training_data": training_data or "cubes: " + ", ".join(splits["train"]),
        "metrics": metrics,
        "training": {k: v for k, v in config.items() if k not in ("splits",)} | {
            "splits": splits, **timing},
    }
    weights = out / f"{name}.pt"
    sha = save_weights(model.cpu(), weights, meta, half=half)
    log.update(final=metrics, timing=timing, weights=str(weights), sha256=sha)
    logger.info("BA-Net trained: %d steps in %.1f min, weights %s", steps, elapsed / 60, weights)
    return TrainResult(out, weights, sha, metrics, log.rows, step, epochs, splits, model)


class _FlipsOnly:
    """Random flips / rotations without the reference augmentations."""

    def __call__(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return BANetAugment(p_frp=0.0, p_fill=0.0, flips=True)(x, y, mask, rng)


# --------------------------------------------------------------------------- CLI entry
def _is_zarr_store(path: Path) -> bool:
    return path.is_dir() and ((path / "zarr.json").is_file() or (path / ".zgroup").is_file())


def _prepare_targets(cube: Any, targets: Any, out: Path, i: int) -> Any:
    """A target store for ``cube``: the given store, or one built from MCD64A1 sources."""
    if isinstance(targets, str | os.PathLike) and _is_zarr_store(Path(targets)):
        return targets
    if not isinstance(targets, str | os.PathLike | list | tuple):
        return targets
    from firesmoke.cube import burned_fraction_cube, open_cube
    from firesmoke.grid import Region

    ds = open_cube(cube) if isinstance(cube, str | os.PathLike) else cube
    region = Region.from_dataset(ds)
    store = out / "targets" / f"targets_{i}.zarr"
    if not _is_zarr_store(store):
        logger.info("building burned-fraction targets from %s into %s", targets, store)
        frac = burned_fraction_cube(region, targets, None, None, like=ds)
        write_targets(frac, store, like=ds)
    return store


def train_banet_cli(args: Mapping[str, Any]) -> TrainResult:
    """Entry point for ``firesmoke train banet``: options as a dict.

    Keys: ``cube`` (one or a list of Zarr cube stores), ``targets`` (as many target
    stores, or MCD64A1 files/folders from which target stores are built in
    ``out/targets/``), ``out``; optional ``val_cube`` / ``val_targets`` (split by region)
    or ``val_period`` (``"YYYY-MM-DD..YYYY-MM-DD"`` or a pair; split by time), and any
    keyword argument of :func:`train_banet` (``steps``, ``batch_size``, ``seq_len``,
    ``patch``, ``lr_max``, ``seed``, ``device``, ``resume``, ...). ``None`` values are
    ignored (argparse defaults).
    """
    a = {k.replace("-", "_"): v for k, v in args.items() if v is not None}
    try:
        out = Path(a.pop("out"))
        cubes = a.pop("cube")
        targets = a.pop("targets")
    except KeyError as exc:
        raise InputError(f"missing option {exc.args[0]!r}", field=str(exc.args[0])) from exc
    cubes = [cubes] if isinstance(cubes, str | os.PathLike) else list(cubes)
    targets = [targets] if isinstance(targets, str | os.PathLike) else list(targets)
    if len(targets) != len(cubes):
        raise InputError(f"{len(cubes)} cube(s) but {len(targets)} target source(s)",
                         field="targets")
    pairs = [(c, _prepare_targets(c, t, out, i))
             for i, (c, t) in enumerate(zip(cubes, targets, strict=True))]
    val: Any = None
    if "val_period" in a:
        vp = a.pop("val_period")
        val = tuple(vp.split("..")) if isinstance(vp, str) else tuple(vp)
        if len(val) != 2:
            raise InputError("val_period must be START..END", field="val_period")
    if "val_cube" in a:
        vc = a.pop("val_cube")
        vt = a.pop("val_targets", None)
        if vt is None:
            raise InputError("val_cube needs val_targets", field="val_targets")
        vc = [vc] if isinstance(vc, str | os.PathLike) else list(vc)
        vt = [vt] if isinstance(vt, str | os.PathLike) else list(vt)
        if val is not None:
            raise InputError("give either val_cube or val_period, not both", field="val_cube")
        val = [(c, _prepare_targets(c, t, out, 1000 + i))
               for i, (c, t) in enumerate(zip(vc, vt, strict=True))]
    known = set(train_banet.__kwdefaults__ or {})
    unknown = sorted(set(a) - known)
    if unknown:
        raise InputError(f"unknown option(s) for train banet: {unknown}", field=unknown[0])
    return train_banet(pairs, out, val=val, **a)
