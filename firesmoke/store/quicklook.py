"""Quicklook PNGs (matplotlib): side-by-side maps with colour bars."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from firesmoke.paths import atomic_write_bytes, makedirs_inside

__all__ = ["quicklook_png"]


def quicklook_png(
    panels: Iterable[tuple[str, xr.DataArray | np.ndarray, Mapping[str, Any]]],
    path: str | os.PathLike[str],
    title: str = "",
    root: str | os.PathLike[str] | None = None,
) -> Path:
    """Save side-by-side maps with colour bars: ``(label, data, imshow kwargs)`` panels.

    The PNG is written atomically inside ``root`` (default: its own folder), never
    through a symbolic link.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    panels = list(panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False)
    for ax, (label, data, kw) in zip(axes[0], panels, strict=True):
        kw = dict(kw)
        extent = kw.pop("extent", None)
        if extent is None and isinstance(data, xr.DataArray) and "x" in data.coords and "y" in data.coords:
            x, y = data["x"].values, data["y"].values
            if x.size > 1 and y.size > 1:
                dx, dy = x[1] - x[0], y[1] - y[0]
                extent = (x[0] - dx / 2, x[-1] + dx / 2, y[-1] + dy / 2, y[0] - dy / 2)
        arr = np.asarray(data)
        colorbar = kw.pop("colorbar", arr.ndim == 2)
        cbar_label = kw.pop("cbar_label", "")
        im = ax.imshow(arr, extent=extent, interpolation="nearest", **kw)
        ax.set_title(label, fontsize=10)
        if extent is not None:
            ax.set_xlabel("longitude")
            ax.set_ylabel("latitude")
        if colorbar:
            fig.colorbar(im, ax=ax, shrink=0.8, label=cbar_label)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    p = Path(os.path.abspath(path))
    top = Path(os.path.abspath(root)) if root is not None else p.parent
    makedirs_inside(top, p.parent)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(p, buf.getvalue(), root=top)
