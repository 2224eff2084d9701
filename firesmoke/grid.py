"""Region grids: the regular lat/lon grids that datacubes and products live on.

A region is a bounding box in EPSG:4326 plus a pixel size, stored as ``R_{name}.json``::

    {"name": "PI", "bbox": [left, bottom, right, top], "pixel_size": 0.01}

The grid rules follow the BA-Net reference exactly (see ``reference/banet.md``):

* ``width = len(np.arange(left, right, pixel_size))``, likewise ``height`` from
  ``bottom..top``;
* the affine transform is "from bounds" ``(left, bottom, right, top, width, height)``
  with the origin at the upper-left corner and rows running north to south;
* the reference's coordinate arrays are pixel upper-left corners; firesmoke keeps the
  same transform and publishes pixel *centres* (xarray/CF convention).

Inputs are bounded before anything the size of the grid is allocated: the pixel count is
at most :func:`max_region_pixels` (``$FIRESMOKE_MAX_REGION_PIXELS``, default one billion),
the pixel size must divide the bbox sides (up to rounding; the reference would silently
stretch the pixels), region JSON files may nest at most :data:`MAX_JSON_DEPTH` levels and
hold only ``name``, ``bbox`` and ``pixel_size``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine
from pyproj import CRS

from firesmoke.errors import InvalidRegionError

__all__ = ["DEFAULT_MAX_REGION_PIXELS", "MAX_JSON_DEPTH", "PUBLISHED_REGIONS", "Region", "max_region_pixels"]

log = logging.getLogger(__name__)

#: Names of the regions shipped with the package (the BA-Net study regions and more).
PUBLISHED_REGIONS: tuple[str, ...] = ("AK", "AU", "BR", "CA", "MZ", "PI", "PT")

_WGS84 = CRS.from_epsg(4326)

#: Largest region accepted, in pixels (height x width), unless ``FIRESMOKE_MAX_REGION_PIXELS``
#: says otherwise: a global grid at 0.01 deg (648 million pixels) fits; a pixel size typed
#: wrong (1e-9 deg) is refused before anything the size of the grid is allocated.
DEFAULT_MAX_REGION_PIXELS = 1_000_000_000
#: Deepest nesting of arrays/objects accepted in a region JSON file (a region needs 2).
MAX_JSON_DEPTH = 32
#: Largest region JSON file read, in bytes.
MAX_JSON_BYTES = 1 << 20
#: A region's sides must be whole multiples of its pixel size within this many pixels.
_DIVIDE_TOLERANCE = 1e-6
_KEYS = ("name", "bbox", "pixel_size")


def max_region_pixels() -> int:
    """The largest region accepted, in pixels: ``$FIRESMOKE_MAX_REGION_PIXELS`` or the default."""
    text = os.environ.get("FIRESMOKE_MAX_REGION_PIXELS")
    if not text:
        return DEFAULT_MAX_REGION_PIXELS
    try:
        value = int(text)
    except ValueError:
        raise InvalidRegionError(f"FIRESMOKE_MAX_REGION_PIXELS must be a positive integer, got {text!r}") from None
    if value <= 0:
        raise InvalidRegionError(f"FIRESMOKE_MAX_REGION_PIXELS must be a positive integer, got {text!r}")
    return value


def _arange_len(start: float, stop: float, step: float) -> int:
    """``len(np.arange(start, stop, step))`` without building the array (numpy's own formula)."""
    return max(0, math.ceil((stop - start) / step))


def _json_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` in JSON text (string contents ignored); no recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _as_float(value: Any, field: str, path: str | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidRegionError(f"expected a number, got {value!r}", path=path, field=field)
    out = float(value)
    if not math.isfinite(out):
        raise InvalidRegionError(f"expected a finite number, got {value!r}", path=path, field=field)
    return out


@dataclass(frozen=True)
class Region:
    """A named regular grid in EPSG:4326.

    Parameters
    ----------
    name
        Short name (used in file names, e.g. ``R_PI.json``).
    bbox
        ``(left, bottom, right, top)`` in degrees.
    pixel_size
        Pixel size in degrees (the same in x and y).

    Examples
    --------
    >>> r = Region.named("PI")
    >>> r.shape
    (800, 1500)
    >>> float(r.x[0]), float(r.y[0])
    (-9.995, 43.995)
    """

    name: str
    bbox: tuple[float, float, float, float]
    pixel_size: float

    def __post_init__(self) -> None:
        self._validate(path=None)

    # ------------------------------------------------------------------ validation
    def _validate(self, path: str | None) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidRegionError("name must be a non-empty string", path=path, field="name")
        if any(c in self.name for c in "/\\\0") or self.name in (".", ".."):
            raise InvalidRegionError(
                f"name {self.name!r} must not contain path separators", path=path, field="name"
            )
        if not isinstance(self.bbox, (tuple, list)) or len(self.bbox) != 4:
            raise InvalidRegionError(
                f"bbox must be [left, bottom, right, top], got {self.bbox!r}", path=path, field="bbox"
            )
        left, bottom, right, top = (_as_float(v, "bbox", path) for v in self.bbox)
        object.__setattr__(self, "bbox", (left, bottom, right, top))
        px = _as_float(self.pixel_size, "pixel_size", path)
        object.__setattr__(self, "pixel_size", px)
        if px <= 0:
            raise InvalidRegionError(f"must be > 0, got {px}", path=path, field="pixel_size")
        if left >= right:
            raise InvalidRegionError(
                f"left ({left}) must be smaller than right ({right})", path=path, field="bbox"
            )
        if bottom >= top:
            raise InvalidRegionError(
                f"bottom ({bottom}) must be smaller than top ({top})", path=path, field="bbox"
            )
        if bottom < -90 or top > 90:
            raise InvalidRegionError(
                f"latitudes must lie within [-90, 90], got bottom={bottom}, top={top}",
                path=path,
                field="bbox",
            )
        if left < -180 or right > 360 or right - left > 360:
            raise InvalidRegionError(
                f"longitudes out of range: left={left}, right={right}", path=path, field="bbox"
            )
        limit = max_region_pixels()
        nx, ny = (right - left) / px, (top - bottom) / px  # floats: no overflow, no allocation
        if not nx * ny <= limit:  # also refuses inf/nan from a denormal pixel size
            raise InvalidRegionError(
                f"region of about {ny:.4g} x {nx:.4g} = {nx * ny:.4g} pixels at pixel size {px} exceeds "
                f"the limit of {limit:,} pixels (set FIRESMOKE_MAX_REGION_PIXELS to raise it, or use a "
                "larger pixel size or a smaller bbox)",
                path=path,
                field="pixel_size",
            )
        for side, extent, n in (("width", right - left, nx), ("height", top - bottom, ny)):
            if abs(n - round(n)) > _DIVIDE_TOLERANCE:
                fit = math.floor(n) * px
                raise InvalidRegionError(
                    f"pixel size {px} does not divide the bbox {side} {extent:g} ({n:.6g} pixels); "
                    f"use a bbox whose sides are whole multiples of the pixel size (e.g. a {side} "
                    f"of {fit:.10g} or {fit + px:.10g})",
                    path=path,
                    field="pixel_size",
                )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: Any, path: str | os.PathLike[str] | None = None) -> Region:
        """Build a region from a mapping with keys ``name``, ``bbox``, ``pixel_size``."""
        p = os.fspath(path) if path is not None else None
        if not isinstance(data, dict):
            raise InvalidRegionError(
                f"expected a JSON object, got {type(data).__name__}", path=p
            )
        for key in _KEYS:
            if key not in data:
                raise InvalidRegionError("missing key", path=p, field=key)
        for key in data:
            if key not in _KEYS:
                hint = " (the CRS is always EPSG:4326)" if str(key).lower() == "crs" else ""
                raise InvalidRegionError(
                    f"unknown key; a region has only {', '.join(_KEYS)}{hint}", path=p, field=str(key)
                )
        bbox = data["bbox"]
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            raise InvalidRegionError(
                f"bbox must be a list [left, bottom, right, top], got {bbox!r}", path=p, field="bbox"
            )
        obj = cls.__new__(cls)
        object.__setattr__(obj, "name", data["name"])
        object.__setattr__(obj, "bbox", tuple(bbox))
        object.__setattr__(obj, "pixel_size", data["pixel_size"])
        obj._validate(path=p)
        return obj

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Region:
        """Read an ``R_{name}.json`` file.

        Raises
        ------
        InvalidRegionError
            When the file is missing, is not valid JSON, lacks a key or holds bad values;
            the message names the file and the field.
        """
        p = Path(path)
        try:
            with open(p, "rb") as fh:
                raw = fh.read(MAX_JSON_BYTES + 1)
            text = raw.decode("utf-8")
        except FileNotFoundError:
            raise InvalidRegionError("region file not found", path=p) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidRegionError(f"cannot read region file ({exc})", path=p) from exc
        if len(raw) > MAX_JSON_BYTES:
            raise InvalidRegionError(f"region file larger than {MAX_JSON_BYTES} bytes", path=p)
        depth = _json_depth(text)
        if depth > MAX_JSON_DEPTH:
            raise InvalidRegionError(f"JSON nested {depth} levels deep (at most {MAX_JSON_DEPTH})", path=p)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidRegionError(
                f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", path=p
            ) from exc
        return cls.from_dict(data, path=p)

    @classmethod
    def named(cls, name: str) -> Region:
        """Return one of the regions shipped with firesmoke (:data:`PUBLISHED_REGIONS`)."""
        if name not in PUBLISHED_REGIONS:
            raise InvalidRegionError(
                f"unknown region {name!r}; shipped regions are {', '.join(PUBLISHED_REGIONS)} "
                "(or pass the path of an R_<name>.json file)",
                field="name",
            )
        ref = resources.files("firesmoke") / "regions" / f"R_{name}.json"
        with resources.as_file(ref) as p:
            return cls.from_json(p)

    @classmethod
    def resolve(cls, spec: str | os.PathLike[str] | Region) -> Region:
        """Accept a :class:`Region`, a shipped region name or the path of a JSON file."""
        if isinstance(spec, Region):
            return spec
        s = os.fspath(spec)
        if s in PUBLISHED_REGIONS:
            return cls.named(s)
        if s.endswith(".json") or os.path.sep in s or Path(s).exists():
            return cls.from_json(s)
        return cls.named(s)  # raises the "unknown region" error

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bbox": list(self.bbox), "pixel_size": self.pixel_size}

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the region as JSON; a folder path gets ``R_{name}.json`` inside it."""
        p = Path(path)
        if p.is_dir():
            p = p / f"R_{self.name}.json"
        p.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return p

    # ------------------------------------------------------------------ grid geometry
    @property
    def width(self) -> int:
        left, _, right, _ = self.bbox
        return _arange_len(left, right, self.pixel_size)

    @property
    def height(self) -> int:
        _, bottom, _, top = self.bbox
        return _arange_len(bottom, top, self.pixel_size)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)``."""
        return self.bbox

    @property
    def crs(self) -> CRS:
        return _WGS84

    @property
    def transform(self) -> Affine:
        """Affine transform "from bounds": origin upper-left, rows north to south."""
        left, bottom, right, top = self.bbox
        h, w = self.shape
        return Affine((right - left) / w, 0.0, left, 0.0, -(top - bottom) / h, top)

    @property
    def x(self) -> np.ndarray:
        """Longitudes of pixel centres (float64, west to east)."""
        t = self.transform
        return t.c + (np.arange(self.width) + 0.5) * t.a

    @property
    def y(self) -> np.ndarray:
        """Latitudes of pixel centres (float64, north to south)."""
        t = self.transform
        return t.f + (np.arange(self.height) + 0.5) * t.e

    def rowcol(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices (floor) of points; outside points get indices outside the grid."""
        t = self.transform
        col = np.floor((np.asarray(lon, dtype=np.float64) - t.c) / t.a).astype(np.int64)
        row = np.floor((np.asarray(lat, dtype=np.float64) - t.f) / t.e).astype(np.int64)
        return row, col

    def coords_dataset(self, time: Sequence[Any] | np.ndarray | None = None) -> xr.Dataset:
        """An empty Dataset with ``y``/``x`` (and optionally ``time``) and the CRS attached.

        The CRS is written the rioxarray way (a ``spatial_ref`` coordinate with CF grid
        mapping attributes and ``GeoTransform``), so ``ds.rio.crs`` and
        ``ds.rio.transform()`` work on it.
        """
        import rioxarray  # noqa: F401  (registers the .rio accessor)

        coords: dict[str, Any] = {
            "y": ("y", self.y, {"units": "degrees_north", "standard_name": "latitude",
                                "long_name": "latitude of pixel centre", "axis": "Y"}),
            "x": ("x", self.x, {"units": "degrees_east", "standard_name": "longitude",
                                "long_name": "longitude of pixel centre", "axis": "X"}),
        }
        if time is not None:
            coords["time"] = ("time", np.asarray(time, dtype="datetime64[ns]"), {"axis": "T"})
        ds = xr.Dataset(coords=coords, attrs={"region": self.name, "region_json": json.dumps(self.to_dict())})
        ds = ds.rio.write_crs(self.crs).rio.write_transform(self.transform)
        return ds

    def check_same_grid(self, other: Region, what: str = "inputs") -> None:
        """Raise :class:`~firesmoke.errors.GridMismatchError` unless grids are identical."""
        from firesmoke.errors import GridMismatchError

        if self.shape != other.shape or not self.transform.almost_equals(other.transform, 1e-9):
            raise GridMismatchError(
                f"{what} are on different grids: {self.name} {self.shape} {tuple(self.transform)[:6]} "
                f"vs {other.name} {other.shape} {tuple(other.transform)[:6]}"
            )

    @classmethod
    def from_dataset(cls, ds: xr.Dataset | xr.DataArray) -> Region:
        """Recover the region of a Dataset made by :meth:`coords_dataset` (or a cube)."""
        text = ds.attrs.get("region_json")
        if text:
            return cls.from_dict(json.loads(text))
        x = np.asarray(ds["x"].values)
        y = np.asarray(ds["y"].values)
        if x.size < 2 or y.size < 2:
            raise InvalidRegionError("cannot infer a grid from fewer than 2 pixels per axis")
        px = round(float(x[1] - x[0]), 12)
        left, top = float(x[0] - px / 2), float(y[0] + px / 2)
        return cls.from_shape(str(ds.attrs.get("region", "unnamed")), left, top, px, y.size, x.size)

    @classmethod
    def from_shape(
        cls, name: str, left: float, top: float, pixel_size: float, height: int, width: int
    ) -> Region:
        """A region of exactly ``height x width`` pixels from its upper-left corner.

        With the ``np.arange`` rule, floating-point error can give one element more than
        ``(right - left) / pixel_size`` (e.g. ``arange(10, 10.64, 0.01)`` has 65 elements).
        This constructor moves the right/bottom edge inwards by a negligible amount
        (1e-9 pixel) whenever needed, so that the shape is exactly the one asked for.
        """
        right = left + width * pixel_size
        bottom = top - height * pixel_size
        if _arange_len(left, right, pixel_size) != width:
            right -= pixel_size * 1e-9
        if _arange_len(bottom, top, pixel_size) != height:
            bottom += pixel_size * 1e-9
        region = cls(name, (left, bottom, right, top), pixel_size)
        if region.shape != (height, width):  # pragma: no cover - defensive
            raise InvalidRegionError(
                f"cannot build a {height}x{width} grid at pixel size {pixel_size}", field="bbox"
            )
        return region

    def subset(self, name: str, row0: int, row1: int, col0: int, col1: int) -> Region:
        """A region made of rows ``row0:row1`` and columns ``col0:col1`` of this one."""
        if not (0 <= row0 < row1 <= self.height and 0 <= col0 < col1 <= self.width):
            raise InvalidRegionError(
                f"subset rows {row0}:{row1}, cols {col0}:{col1} outside grid {self.shape}"
            )
        t = self.transform
        return Region.from_shape(
            name, t.c + col0 * t.a, t.f + row0 * t.e, self.pixel_size, row1 - row0, col1 - col0
        )

    def __repr__(self) -> str:
        h, w = self.shape
        return f"Region({self.name!r}, bbox={list(self.bbox)}, pixel_size={self.pixel_size}, shape={h}x{w})"
