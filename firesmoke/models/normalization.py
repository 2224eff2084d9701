"""Input bands and normalisation constants of the models.

The constants travel with the weights (see :mod:`firesmoke.models.weights`), as in
torchgeo: a pipeline reads the band list and mean/std from the weights' metadata rather
than from code, so weights trained on other bands or statistics are used correctly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from firesmoke.errors import InputError

__all__ = [
    "BANET",
    "NORMALIZATIONS",
    "S2_FILE_BANDS",
    "SMOKE_S2",
    "Normalization",
    "default_normalization",
]


@dataclass(frozen=True)
class Normalization:
    """Channel order and per-channel z-score of a model's input.

    Attributes
    ----------
    name
        Short identifier (``"banet"``, ``"smoke_s2"``).
    bands
        Input channel names, in tensor order.
    mean, std
        Per-channel constants: ``x_norm = (x - mean) / std``.
    nan_fill
        Value that replaces NaN *before* normalisation (BA-Net: 0, so a missing day is
        all zeros in physical units), or ``None`` to leave NaN alone.
    units
        Units of the raw input (documentation only).
    """

    name: str
    bands: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    nan_fill: float | None = None
    units: str = ""

    def __post_init__(self) -> None:
        if not (len(self.bands) == len(self.mean) == len(self.std)):
            raise InputError(
                f"normalisation {self.name!r}: {len(self.bands)} bands, "
                f"{len(self.mean)} means, {len(self.std)} stds"
            )
        if any(s <= 0 for s in self.std):
            raise InputError(f"normalisation {self.name!r}: std must be > 0")

    @property
    def n_channels(self) -> int:
        return len(self.bands)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, floats, strings) for weights metadata / JSON."""
        d = asdict(self)
        d["bands"] = list(self.bands)
        d["mean"] = [float(v) for v in self.mean]
        d["std"] = [float(v) for v in self.std]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        return cls(
            name=str(d.get("name", "")),
            bands=tuple(str(b) for b in d["bands"]),
            mean=tuple(float(v) for v in d["mean"]),
            std=tuple(float(v) for v in d["std"]),
            nan_fill=None if d.get("nan_fill") is None else float(d["nan_fill"]),
            units=str(d.get("units", "")),
        )

    def apply(self, x: torch.Tensor, channel_dim: int = 1, inplace: bool = False) -> torch.Tensor:
        """Return ``(nan_to_fill(x) - mean) / std`` along ``channel_dim``.

        A new tensor unless ``inplace`` (then ``x``, a floating tensor, is overwritten).
        The inference engine (:class:`firesmoke.inference.model.TileModel`) and the smoke chip
        classifier call it.
        """
        if x.shape[channel_dim] != self.n_channels:
            raise InputError(
                f"normalisation {self.name!r} expects {self.n_channels} channels "
                f"({', '.join(self.bands)}) on dim {channel_dim}, got {x.shape[channel_dim]}"
            )
        shape = [1] * x.ndim
        shape[channel_dim] = -1
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
        if self.nan_fill is not None:
            x = torch.nan_to_num(x, nan=self.nan_fill, out=x) if inplace else torch.nan_to_num(
                x, nan=self.nan_fill)
            return x.sub_(mean).div_(std)
        if inplace:
            return x.sub_(mean).div_(std)
        return (x - mean).div_(std)


BANET = Normalization(
    name="banet",
    bands=("red", "nir", "mir", "frp"),
    mean=(0.2349, 0.3548, 0.1128, 0.0016),
    std=(0.1879, 0.1660, 0.0547, 0.0776),
    nan_fill=0.0,
    units="reflectance (red: VIIRS M5, nir: M7, mir: 3.7 um from M12/M15); frp: log1p(MW)",
)
"""BA-Net input: Red, NIR, MIR reflectance and log1p(FRP); NaN -> 0 first."""

S2_FILE_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)  # fmt: skip
"""Band order of the 13-band Sentinel-2 GeoTIFFs of the smoke plume data set."""

SMOKE_S2 = Normalization(
    name="smoke_s2",
    bands=tuple(b for b in S2_FILE_BANDS if b != "B10"),
    mean=(
        809.2,
        900.5,
        1061.4,
        1091.7,
        1384.5,
        1917.8,
        2105.2,
        2186.3,
        2224.8,
        2346.8,
        1901.2,
        1460.42,
    ),
    std=(441.8, 624.7, 640.8, 718.1, 669.1, 767.5, 843.3, 947.9, 882.4, 813.7, 716.9, 674.8),
    nan_fill=None,
    units="Sentinel-2 L2A reflectance x 1e4",
)
"""Smoke models' input: the 12 Sentinel-2 bands without B10 (cirrus)."""

NORMALIZATIONS: dict[str, Normalization] = {n.name: n for n in (BANET, SMOKE_S2)}

_BY_ARCHITECTURE = {"banet": BANET, "smoke_resnet50": SMOKE_S2, "smoke_unet": SMOKE_S2}


def default_normalization(architecture: str) -> Normalization | None:
    """The published normalisation of an architecture name, or ``None`` if unknown."""
    return _BY_ARCHITECTURE.get(architecture)
