"""The steps of :func:`firesmoke.train.banet.train_banet`, one function each.

Argument checks, samplers of a region or time split, optimiser and one-cycle schedule,
resuming from a checkpoint, one optimiser step, and writing the final weights.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from firesmoke.errors import InputError
from firesmoke.models.normalization import BANET
from firesmoke.models.weights import save_weights
from firesmoke.train.common import MetricLog, load_checkpoint, step_rng
from firesmoke.train.sampler import CubeSource, TrainingSampler, open_source

__all__ = [
    "RESUME_KEYS",
    "banet_loss",
    "check_sizes",
    "make_samplers",
    "optimisation",
    "resume_state",
    "save_final",
    "train_step",
]

logger = logging.getLogger("firesmoke.train.banet")

# configuration entries that must match for a resume to continue the same run
RESUME_KEYS = ("recipe", "steps", "batch_size", "seq_len", "patch", "seed", "lr_max",
               "weight_decay", "pct_start", "stride", "t_stride", "threshold", "random_share")


# --------------------------------------------------------------------------- steps
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


def check_sizes(steps: int, batch_size: int, seq_len: int, patch: int) -> None:
    if steps < 2:
        raise InputError("steps must be >= 2 (one-cycle schedule)", field="steps")
    if batch_size < 1:
        raise InputError("batch_size must be >= 1", field="batch_size")
    if batch_size * (seq_len // 16) * (patch // 32) ** 2 < 2:
        raise InputError(
            "batch norm needs more than one value per channel at BA-Net's deepest level "
            f"(batch x seq_len/16 x (patch/32)^2 = {batch_size * (seq_len // 16) * (patch // 32) ** 2}"
            "); use a larger batch, sequence or patch", field="batch_size")


def make_samplers(
    cubes_and_targets: Any, val: Any, skw: dict[str, Any], jitter: bool, seed: int
) -> tuple[TrainingSampler, TrainingSampler | None, dict[str, list[str]]]:
    """Training and validation samplers of a region or time split, and the split names."""
    train_sources = _sources(cubes_and_targets, "cubes_and_targets")
    if _is_period(val):
        sampler = TrainingSampler(train_sources, **skw, exclude=val, jitter=jitter, seed=seed)
        val_sampler = TrainingSampler(train_sources, **skw, period=val, seed=seed + 1)
        val_names = [f"{s.name}[{val[0]}..{val[1]}]" for s in train_sources]
    else:
        val_sources = _sources(val, "val")
        sampler = TrainingSampler(train_sources, **skw, jitter=jitter, seed=seed)
        val_sampler = TrainingSampler(val_sources, **skw, seed=seed + 1) if val_sources else None
        val_names = [s.name for s in val_sources]
    return sampler, val_sampler, {"train": [s.name for s in train_sources], "val": val_names}


def optimisation(model: nn.Module, steps: int, lr_max: float, weight_decay: float,
                  pct_start: float) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW and the one-cycle schedule (fastai's defaults)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr_max / 25.0, betas=(0.95, 0.99),
                            weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr_max, total_steps=steps, anneal_strategy="cos",
        # very short runs: keep both phases at least one step long
        pct_start=min(max(pct_start, 1.5 / steps), 1.0 - 0.5 / steps),
        cycle_momentum=True, base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
        final_div_factor=1e5)
    return opt, sched


def resume_state(ckpt: Path, resume: bool, model: nn.Module, opt: Any, sched: Any, scaler: Any,
            config: dict[str, Any], log: MetricLog) -> tuple[int, float]:
    """Load the checkpoint when resuming: ``(first step, elapsed seconds so far)``."""
    if not resume:
        return 0, 0.0
    if not ckpt.is_file():
        logger.info("no checkpoint in %s; starting from scratch", ckpt.parent)
        return 0, 0.0
    state = load_checkpoint(ckpt, model, opt, sched)
    old = state["extra"].get("config", {})
    diff = {k: (old.get(k, "firesmoke" if k == "recipe" else None), config[k])
            for k in RESUME_KEYS
            if old.get(k, "firesmoke" if k == "recipe" else None) != config[k]}
    if diff:
        raise InputError(
            f"cannot resume: the checkpoint was made with other settings {diff}", path=ckpt)
    if scaler is not None and state["extra"].get("scaler"):
        scaler.load_state_dict(state["extra"]["scaler"])
    start = state["step"]
    log.truncate(start)
    logger.info("resumed from %s at step %d", ckpt, start)
    return start, float(state["extra"].get("elapsed_s", 0.0))


def train_step(model: nn.Module, b: Mapping[str, torch.Tensor], opt: Any, sched: Any,
                scaler: Any, amp_dtype: torch.dtype | None, clip: float, pos_weight: float,
                seed: int, step: int) -> tuple[float, float, float | None]:
    """One optimiser step: ``(loss, learning rate used, gradient norm)``."""
    # dropout draws of this step depend on (seed, step) only
    torch.manual_seed(int(step_rng(seed, step, 2).integers(2**62)))
    with torch.autocast("cuda", dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
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
    return float(loss.detach()), lr, float(gnorm) if gnorm is not None else None


def save_final(model: nn.Module, out: Path, name: str, half: bool, seq_len: int, patch: int,
                training_data: str | None, splits: dict[str, list[str]], config: dict[str, Any],
                metrics: dict[str, Any], elapsed: float, steps: int,
                log: MetricLog) -> tuple[Path, str]:
    """Write ``<name>.pt`` with its metadata; returns the path and sha256."""
    timing = {"train_s": elapsed, "s_per_step": elapsed / max(steps, 1)}
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
    return weights, sha
