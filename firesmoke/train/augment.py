"""Geometric augmentation of image/mask pairs: random crop, flips, 90-degree rotations.

The smoke models' reference training (reference/smoke.md) takes a random 90 x 90 crop of
each 120 x 120 chip (offsets 0-29), then random horizontal and vertical flips and a
random multiple-of-90-degree rotation, applied to the image and its mask alike. These
functions do exactly that on numpy arrays whose last two axes are ``(y, x)``; every
random choice is drawn from the ``numpy.random.Generator`` passed in, so a seeded
generator reproduces the same augmentations.

The functions return views where possible (flips and rotations are views; callers that
need contiguous memory copy once, e.g. with ``np.ascontiguousarray`` when batching).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firesmoke.errors import InputError

__all__ = [
    "CropFlipRotate",
    "apply_flip_rot",
    "crop",
    "draw_crop",
    "draw_flip_rot",
    "random_crop",
    "random_flip_rot",
]


def draw_crop(
    rng: np.random.Generator, shape: tuple[int, int], size: int, max_offset: int | None = None
) -> tuple[int, int]:
    """Random top-left ``(row, col)`` of a ``size`` x ``size`` crop of a ``shape`` image.

    Offsets are uniform integers in ``0 .. max_offset`` (inclusive); ``max_offset=None``
    uses ``min(h, w) - size - 1``, i.e. 0-29 for 90 px crops of 120 px chips as the
    reference (which never used the very last offset).
    """
    h, w = shape
    if size > h or size > w:
        raise InputError(f"crop size {size} is larger than the image {shape}")
    hi_r = h - size if max_offset is None else min(max_offset, h - size)
    hi_c = w - size if max_offset is None else min(max_offset, w - size)
    if max_offset is None:  # reference: offsets 0 .. (h - size - 1)
        hi_r, hi_c = max(hi_r - 1, 0), max(hi_c - 1, 0)
    return int(rng.integers(0, hi_r + 1)), int(rng.integers(0, hi_c + 1))


def crop(array: np.ndarray, row: int, col: int, size: int) -> np.ndarray:
    """``array[..., row:row + size, col:col + size]`` (a view)."""
    return array[..., row : row + size, col : col + size]


def draw_flip_rot(rng: np.random.Generator) -> tuple[bool, bool, int]:
    """Random ``(flip_x, flip_y, k)``: each flip with probability 1/2, ``k`` in 0..3."""
    fx, fy = rng.random(2) < 0.5
    return bool(fx), bool(fy), int(rng.integers(0, 4))


def apply_flip_rot(array: np.ndarray, flip_x: bool, flip_y: bool, k: int) -> np.ndarray:
    """Flip left-right (``flip_x``), up-down (``flip_y``), then rotate by ``k`` x 90 degrees.

    Acts on the last two axes, so ``(C, H, W)`` images and ``(H, W)`` masks transform
    alike. Returns a view.
    """
    out = array
    if flip_x:
        out = out[..., :, ::-1]
    if flip_y:
        out = out[..., ::-1, :]
    if k % 4:
        out = np.rot90(out, k=k % 4, axes=(-2, -1))
    return out


def random_crop(
    rng: np.random.Generator,
    *arrays: np.ndarray,
    size: int = 90,
    max_offset: int | None = None,
) -> tuple[np.ndarray, ...]:
    """The same random crop of every array (all must share their last two axes)."""
    shape = arrays[0].shape[-2:]
    if any(a.shape[-2:] != shape for a in arrays):
        raise InputError(f"arrays differ in size: {[a.shape for a in arrays]}")
    r, c = draw_crop(rng, shape, size, max_offset)
    return tuple(crop(a, r, c, size) for a in arrays)


def random_flip_rot(rng: np.random.Generator, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The same random flips and 90-degree rotation of every array."""
    fx, fy, k = draw_flip_rot(rng)
    return tuple(apply_flip_rot(a, fx, fy, k) for a in arrays)


@dataclass(frozen=True)
class CropFlipRotate:
    """The reference augmentation as a callable: ``aug(rng, image, mask) -> (image, mask)``.

    Parameters
    ----------
    size
        Crop size (90 in the reference); ``None`` skips cropping.
    max_offset
        Largest crop offset (default: reference rule, ``h - size - 1``).
    flip_rot
        Also apply random flips and a random multiple-of-90-degree rotation.
    """

    size: int | None = 90
    max_offset: int | None = None
    flip_rot: bool = True

    def __call__(self, rng: np.random.Generator, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        out = arrays
        if self.size is not None:
            out = random_crop(rng, *out, size=self.size, max_offset=self.max_offset)
        if self.flip_rot:
            out = random_flip_rot(rng, *out)
        return out
