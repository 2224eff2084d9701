"""BA-Net training augmentations (reference/banet.md), on raw ``(C, T, H, W)`` windows.

The reference recipe has two augmentations, each applied with probability 0.5:

* **FRP dropout**: the FRP channel (active fires) is set to 0 (no fire) in 1-5 random
  squares of 5-50 px, on every day of the window, so that the model does not rely on
  active-fire detections alone (they are often missed under clouds or between
  overpasses);
* **reflectance fill**: Red, NIR and MIR of one random square are replaced by random
  constants (one per channel, uniform in ``fill_range``, on every day), mimicking
  unflagged clouds, saturation or bad retrievals (the reference applies no cloud mask).

The arrays are augmented in physical units after NaN -> 0 and before normalisation (a
zeroed FRP square means "no fire", as a missing detection would). Squares lie inside
the window; a square larger than the window is clipped to it.

:class:`ReferenceAugment` is the reference software's augmentation exactly as banet.md's
"Details confirmed from the reference code" lists it, applied to *each day's image
independently* (fastai transforms on single-day images): fastai's default lighting
change (brightness, then contrast, each with probability 0.75, max change 0.2: in logit
space ``(logit(clamp(x, 1e-7, 1 - 1e-7)) + logit(b)) * c`` with ``b`` uniform in
[0.4, 0.6] and ``c`` log-uniform in [0.8, 1.25], then the sigmoid; like fastai it acts on
all four channels, so it squashes log1p(FRP) and any value outside (0, 1) into (0, 1)),
then "cutout" (probability 0.5: FRP set to 0 in 1-5 squares of 5-50 px) and "cutout2"
(probability 0.5: Red, NIR and MIR of one 5-50 px square each take one random value in
[0, 1)); no flips or rotations.

Optionally (not in the reference, off by default) :class:`BANetAugment` also applies a
random flip / 90-degree rotation to inputs, targets and mask alike
(:func:`firesmoke.train.augment.random_flip_rot`), useful on small training sets.

Every random choice comes from the ``numpy.random.Generator`` passed in, so a seeded
generator reproduces the same augmentation; inputs are not modified in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firesmoke.errors import InputError
from firesmoke.train.augment import random_flip_rot

__all__ = [
    "FRP_CHANNEL",
    "REFLECTANCE_CHANNELS",
    "BANetAugment",
    "ReferenceAugment",
    "fastai_lighting",
    "fill_reflectance_square",
    "random_square",
    "zero_frp_squares",
]

REFLECTANCE_CHANNELS = (0, 1, 2)
"""Red, NIR, MIR in the BA-Net channel order."""
FRP_CHANNEL = 3
"""log1p(FRP) in the BA-Net channel order."""


def random_square(
    rng: np.random.Generator, shape: tuple[int, int], size_range: tuple[int, int] = (5, 50)
) -> tuple[int, int, int]:
    """A random square ``(row, col, side)`` inside an image of ``shape``.

    ``side`` is uniform in ``size_range`` (inclusive), clipped to the image; the corner is
    uniform among positions that keep the square inside.
    """
    h, w = shape
    lo, hi = size_range
    if lo < 1 or hi < lo:
        raise InputError(f"bad square size range {size_range}")
    side = min(int(rng.integers(lo, hi + 1)), h, w)
    r = int(rng.integers(0, h - side + 1))
    c = int(rng.integers(0, w - side + 1))
    return r, c, side


def zero_frp_squares(
    x: np.ndarray,
    rng: np.random.Generator,
    n_range: tuple[int, int] = (1, 5),
    size_range: tuple[int, int] = (5, 50),
    channel: int = FRP_CHANNEL,
) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Zero the FRP channel of ``x`` ``(C, T, H, W)`` in 1-5 random squares (all days).

    Returns the augmented copy and the squares ``(row, col, side)``.
    """
    out = x.copy()
    n = int(rng.integers(n_range[0], n_range[1] + 1))
    squares = [random_square(rng, x.shape[-2:], size_range) for _ in range(n)]
    for r, c, s in squares:
        out[channel, :, r : r + s, c : c + s] = 0.0
    return out, squares


def fill_reflectance_square(
    x: np.ndarray,
    rng: np.random.Generator,
    size_range: tuple[int, int] = (5, 50),
    fill_range: tuple[float, float] = (0.0, 1.0),
    channels: tuple[int, ...] = REFLECTANCE_CHANNELS,
) -> tuple[np.ndarray, tuple[int, int, int], np.ndarray]:
    """Fill Red/NIR/MIR of ``x`` ``(C, T, H, W)`` in one random square with random constants.

    One constant per channel, uniform in ``fill_range``, on every day. Returns the
    augmented copy, the square ``(row, col, side)`` and the constants.
    """
    out = x.copy()
    r, c, s = random_square(rng, x.shape[-2:], size_range)
    values = rng.uniform(fill_range[0], fill_range[1], size=len(channels)).astype(x.dtype)
    for ch, v in zip(channels, values, strict=True):
        out[ch, :, r : r + s, c : c + s] = v
    return out, (r, c, s), values


@dataclass(frozen=True)
class BANetAugment:
    """The reference augmentation as a callable ``aug(x, y, mask, rng) -> (x, y, mask)``.

    Parameters
    ----------
    p_frp
        Probability of the FRP dropout (reference 0.5).
    frp_squares
        Number of FRP squares, inclusive range (reference 1-5).
    square_size
        Side of the squares in px, inclusive range (reference 5-50).
    p_fill
        Probability of the reflectance fill (reference 0.5).
    fill_range
        Range of the fill constants (reflectance).
    flips
        Also apply a random flip / 90-degree rotation (not in the reference).
    """

    p_frp: float = 0.5
    frp_squares: tuple[int, int] = (1, 5)
    square_size: tuple[int, int] = (5, 50)
    p_fill: float = 0.5
    fill_range: tuple[float, float] = (0.0, 1.0)
    flips: bool = False

    def __call__(
        self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # draw both decisions first so that each augmentation's draws do not depend on
        # whether the other one happened
        do_frp, do_fill = rng.random(2) < (self.p_frp, self.p_fill)
        if do_frp:
            x, _ = zero_frp_squares(x, rng, self.frp_squares, self.square_size)
        if do_fill:
            x, _, _ = fill_reflectance_square(x, rng, self.square_size, self.fill_range)
        if self.flips:
            x, y, mask = (np.ascontiguousarray(a) for a in random_flip_rot(rng, x, y, mask))
        return x, y, mask


def fastai_lighting(
    image: np.ndarray,
    rng: np.random.Generator,
    max_lighting: float = 0.2,
    p: float = 0.75,
    eps: float = 1e-7,
) -> np.ndarray:
    """fastai's default lighting change of one image ``(C, H, W)`` (a new array).

    Brightness (probability ``p``): add ``logit(b)``, ``b`` uniform in
    ``0.5 * (1 -+ max_lighting)``; contrast (probability ``p``): multiply by ``c``,
    log-uniform in ``[1 - max_lighting, 1 / (1 - max_lighting)]``; both in logit space
    of the image clamped to ``[eps, 1 - eps]``. Unchanged when neither is drawn.
    """
    do_b, do_c = rng.random(2) < p
    b = rng.uniform(0.5 * (1 - max_lighting), 0.5 * (1 + max_lighting))
    lo, hi = np.log(1 - max_lighting), np.log(1 / (1 - max_lighting))
    c = float(np.exp(rng.uniform(lo, hi)))
    if not (do_b or do_c):
        return image.copy()
    x = np.clip(image.astype(np.float64), eps, 1 - eps)
    logit = np.log(x / (1 - x))
    if do_b:
        logit = logit + np.log(b / (1 - b))
    if do_c:
        logit = logit * c
    return (1.0 / (1.0 + np.exp(-logit))).astype(image.dtype)


@dataclass(frozen=True)
class ReferenceAugment:
    """The reference software's per-day augmentation, ``aug(x, y, mask, rng)``.

    Each day ``t`` of ``x`` ``(C, T, H, W)`` is augmented independently: lighting
    (:func:`fastai_lighting`), then cutout (FRP zeroed in 1-5 squares, probability
    ``p_cutout``), then cutout2 (one square of Red/NIR/MIR set to random values,
    probability ``p_cutout2``). Targets and mask are returned unchanged.
    """

    max_lighting: float = 0.2
    p_lighting: float = 0.75
    p_cutout: float = 0.5
    cutout_squares: tuple[int, int] = (1, 5)
    p_cutout2: float = 0.5
    square_size: tuple[int, int] = (5, 50)

    def __call__(
        self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = np.empty_like(x)
        for t in range(x.shape[1]):
            day = fastai_lighting(x[:, t], rng, self.max_lighting, self.p_lighting)
            do_cut, do_cut2 = rng.random(2) < (self.p_cutout, self.p_cutout2)
            if do_cut:
                day, _ = zero_frp_squares(day[:, None], rng, self.cutout_squares, self.square_size)
                day = day[:, 0]
            if do_cut2:
                day, _, _ = fill_reflectance_square(day[:, None], rng, self.square_size)
                day = day[:, 0]
            out[:, t] = day
        return out, y, mask
