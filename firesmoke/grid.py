"""Region grids: the regular lat/lon grids that datacubes and products live on.

A region is a bounding box in EPSG:4326 plus a pixel size, stored as ``R_{name}.json``::

    {"name": "PI", "bbox": [left, bottom, right, top], "pixel_size": 0.01}

The grid is exact: every number is computed from integer pixel indices and the exact
decimal values of the origin and the pixel size (the shortest decimal text of each float,
``0.01`` is 1/100), and rounded to a float once, at the end:

* ``width = (right - left) / pixel_size`` and ``height = (top - bottom) / pixel_size``
  (whole numbers: the pixel size must divide the bbox sides);
* the affine transform is ``(pixel_size, 0, left, 0, -pixel_size, top)``: origin at the
  upper-left corner, rows running north to south, the pixel size exactly as given;
* coordinates are pixel *centres* (xarray/CF convention): ``x[i] = left + (i + 1/2) *
  pixel_size``, computed exactly and correctly rounded, so a :meth:`Region.subset` is
  bit-identical to its parent's slice and bboxes carry no float noise (``38.44``).

The reference (BA-Net, ``reference/banet.md``) sized its grids with
``len(np.arange(left, right, pixel_size))`` and took coordinates from ``np.arange``
(pixel upper-left corners); :attr:`Region.reference_shape` and
:meth:`Region.reference_coords` give that rule where compatibility needs it. For the
published regions both rules give the same shapes.

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
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine
from pyproj import CRS

from firesmoke.errors import GridMismatchError, InvalidRegionError

__all__ = [
    "DEFAULT_MAX_REGION_PIXELS",
    "MAX_JSON_DEPTH",
    "PUBLISHED_REGIONS",
    "Region",
    "check_axes",
    "check_georeferenced",
    "dataset_crs",
    "exact",
    "exact_centres",
    "exact_edge",
    "grid_mapping_name",
    "grid_transform",
    "max_region_pixels",
]

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


def exact(value: float) -> Fraction:
    """The exact decimal a float stands for: its shortest round-tripping text as a fraction
    (``exact(0.01) == Fraction(1, 100)``, not the binary value 0.01000000000000000020...)."""
    return Fraction(repr(float(value)))


def exact_centres(origin: float, step: float, start: int, stop: int) -> np.ndarray:
    """``origin + (i + 1/2) * step`` for ``i`` in ``start..stop-1``, each the float nearest
    to the exact decimal value (so any slice of an axis equals the axis of the slice).

    Integer numerators over one common denominator, divided once in float64 (an IEEE
    division of two exactly representable numbers is correctly rounded); exact fractions
    one by one where the numbers exceed 2**53 (pixel sizes with many decimals).
    """
    o, s = exact(origin), exact(step)
    den = math.lcm(o.denominator, 2 * s.denominator)
    a, b = o.numerator * (den // o.denominator), s.numerator * (den // (2 * s.denominator))
    i = np.arange(start, stop, dtype=np.int64)
    big = max(abs(a + b * (2 * start + 1)), abs(a + b * (2 * stop - 1)))
    if den < 2**53 and big < 2**53:
        return (a + b * (2 * i + 1)).astype(np.float64) / np.float64(den)
    return np.array([float(o + (int(k) * 2 + 1) * s / 2) for k in i], np.float64)


def exact_edge(origin: float, step: float, n: int) -> float:
    """``origin + n * step``, computed exactly and rounded once (a bbox side)."""
    return float(exact(origin) + n * exact(step))


def _snap(value: float, tol: float) -> float:
    """The shortest decimal (at most 12 places) within ``tol`` of ``value``."""
    for d in range(13):
        r = round(float(value), d)
        if abs(r - value) <= tol:
            return r
    return float(value)


def check_axes(ds: xr.Dataset | xr.DataArray, what: str = "dataset") -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of a gridded dataset after checking they make a regular north-up grid.

    Raises
    ------
    InvalidRegionError
        Naming the axis: missing, fewer than 2 values, not strictly monotonic, ``y`` not
        north to south, or irregular spacing (more than 1e-6 pixel off a regular grid).
    """
    out = []
    for dim in ("x", "y"):
        if dim not in ds.coords or ds[dim].ndim != 1:
            raise InvalidRegionError(f"{what} has no 1-D {dim!r} coordinate (dims {tuple(ds.dims)})",
                                     field=dim)
        v = np.asarray(ds[dim].values, dtype=np.float64)
        if v.size < 2:
            raise InvalidRegionError(f"{what} has {v.size} {dim} value(s); a grid needs 2 or more",
                                     field=dim)
        d = np.diff(v)
        sign = 1 if dim == "x" else -1
        if not np.all(np.isfinite(v)) or not (np.all(d * sign > 0)):
            order = "west to east (increasing)" if dim == "x" else "north to south (decreasing)"
            raise InvalidRegionError(
                f"{what}: {dim} coordinates must be finite and run strictly {order}; sort it "
                f"(e.g. ds.sortby({dim!r}, ascending={dim == 'x'}))", field=dim)
        step = (v[-1] - v[0]) / (v.size - 1)
        dev = np.max(np.abs(v - (v[0] + np.arange(v.size) * step)))
        if dev > 1e-6 * abs(step):
            raise InvalidRegionError(
                f"{what}: {dim} coordinates are irregular (up to {dev / abs(step):.3g} pixel off "
                "a regular grid); regrid onto a region first", field=dim)
        out.append(v)
    return out[0], out[1]


def grid_transform(ds: xr.Dataset | xr.DataArray) -> Affine:
    """The affine transform of a dataset's pixel-centre ``x``/``y`` (:func:`check_axes`),
    with the pixel sizes and the origin snapped to the shortest decimals that reproduce
    the coordinates (1e-9 of a pixel for the size, 1e-6 for the origin): ``0.01``, not
    the ``0.010000000000000021`` that differences of float coordinates give."""
    x, y = check_axes(ds)
    sx = (x[-1] - x[0]) / (x.size - 1)
    sy = (y[-1] - y[0]) / (y.size - 1)
    px, py = _snap(sx, 1e-9 * abs(sx)), _snap(sy, 1e-9 * abs(sy))
    left = _snap(x[0] - px / 2, 1e-6 * abs(px))
    top = _snap(y[0] - py / 2, 1e-6 * abs(py))
    return Affine(px, 0.0, left, 0.0, py, top)


def grid_mapping_name(ds: xr.Dataset | xr.DataArray) -> str | None:
    """The name of the CF grid-mapping variable of a dataset (``spatial_ref`` as rioxarray
    writes it, or whatever the variables' ``grid_mapping`` names), or None."""
    arrays = list(ds.data_vars.values()) if isinstance(ds, xr.Dataset) else [ds]
    names = set(ds.coords) | (set(ds.variables) if isinstance(ds, xr.Dataset) else set())
    for v in arrays:
        name = v.attrs.get("grid_mapping") or v.encoding.get("grid_mapping")
        if name and name in names:
            return str(name)
    return "spatial_ref" if "spatial_ref" in names else None


def dataset_crs(ds: xr.Dataset | xr.DataArray) -> CRS | None:
    """The CRS of a dataset's CF grid mapping (``crs_wkt``/``spatial_ref`` text or CF grid
    mapping attributes), read with pyproj (no rioxarray needed), or None without one.

    Raises
    ------
    InvalidRegionError
        A grid mapping that does not describe a CRS.
    """
    name = grid_mapping_name(ds)
    if name is None:
        return None
    attrs = ds[name].attrs
    try:
        text = attrs.get("crs_wkt") or attrs.get("spatial_ref")
        return CRS.from_wkt(text) if text else CRS.from_cf(attrs)
    except Exception as exc:  # pyproj raises CRSError and others for bad text
        raise InvalidRegionError(f"grid mapping {name!r} holds no readable CRS ({exc})",
                                 field=name) from exc


def check_georeferenced(ds: xr.Dataset | xr.DataArray, what: str = "dataset") -> CRS:
    """The CRS of a gridded dataset, after checking it is usable as a product grid.

    Raises one :class:`InvalidRegionError` (an :class:`~firesmoke.errors.InputError`) when
    the axes are not a regular north-up grid (:func:`check_axes`) or the dataset has no
    CRS (no CF grid mapping such as rioxarray's ``spatial_ref``): no raw third-party
    exception.
    """
    check_axes(ds, what)
    crs = dataset_crs(ds)
    if crs is None:
        raise InvalidRegionError(
            f"{what} has no CRS (no 'spatial_ref' grid mapping); attach one, e.g. "
            "ds.rio.write_crs('EPSG:4326') (rioxarray), before writing the cube",
            field="spatial_ref")
    return crs


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
        """Pixels west to east: ``(right - left) / pixel_size``, exactly."""
        left, _, right, _ = self.bbox
        return round((exact(right) - exact(left)) / exact(self.pixel_size))

    @property
    def height(self) -> int:
        """Pixels north to south: ``(top - bottom) / pixel_size``, exactly."""
        _, bottom, _, top = self.bbox
        return round((exact(top) - exact(bottom)) / exact(self.pixel_size))

    @property
    def reference_shape(self) -> tuple[int, int]:
        """``(height, width)`` by the reference's rule, ``len(np.arange(lo, hi, pixel_size))``
        (one more pixel than :attr:`shape` where float error says so)."""
        left, bottom, right, top = self.bbox
        return (_arange_len(bottom, top, self.pixel_size), _arange_len(left, right, self.pixel_size))

    def reference_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """``(y, x)`` as the reference computed them: ``np.arange`` from the top-left corner
        (pixel upper-left corners, float noise included)."""
        left, bottom, right, top = self.bbox
        return (np.arange(top, bottom, -self.pixel_size), np.arange(left, right, self.pixel_size))

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
        """Affine transform: origin upper-left, rows north to south, the exact pixel size."""
        left, _, _, top = self.bbox
        px = self.pixel_size
        return Affine(px, 0.0, left, 0.0, -px, top)

    @property
    def x(self) -> np.ndarray:
        """Longitudes of pixel centres (float64, west to east; exact, see the module doc)."""
        return exact_centres(self.bbox[0], self.pixel_size, 0, self.width)

    @property
    def y(self) -> np.ndarray:
        """Latitudes of pixel centres (float64, north to south; exact)."""
        return exact_centres(self.bbox[3], -self.pixel_size, 0, self.height)

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
        if self.shape != other.shape or not self.transform.almost_equals(other.transform, 1e-9):
            raise GridMismatchError(
                f"{what} are on different grids: {self.name} {self.shape} {tuple(self.transform)[:6]} "
                f"vs {other.name} {other.shape} {tuple(other.transform)[:6]}"
            )

    @classmethod
    def from_dataset(cls, ds: xr.Dataset | xr.DataArray) -> Region:
        """Recover the region of a Dataset made by :meth:`coords_dataset` (or a cube).

        Without the ``region_json`` attribute the grid is read from the ``x``/``y``
        coordinates: they must be regularly spaced pixel centres, ``x`` west to east and
        ``y`` north to south, with one pixel size; otherwise an
        :class:`~firesmoke.errors.InvalidRegionError` says which axis is wrong. Origin and
        pixel size are snapped to the shortest decimals that reproduce the coordinates
        (within 1e-6 pixel).
        """
        text = ds.attrs.get("region_json")
        if text:
            return cls.from_dict(json.loads(text))
        name = str(ds.attrs.get("region", "unnamed"))
        t = grid_transform(ds)
        if abs(-t.e - t.a) > 1e-6 * t.a:
            raise InvalidRegionError(
                f"x and y pixel sizes differ ({t.a:g} and {-t.e:g}); a region has square pixels",
                field="y")
        return cls.from_shape(name, t.c, t.f, t.a, ds.sizes["y"], ds.sizes["x"])

    @classmethod
    def from_shape(
        cls, name: str, left: float, top: float, pixel_size: float, height: int, width: int
    ) -> Region:
        """A region of exactly ``height x width`` pixels from its upper-left corner (the
        right and bottom edges computed exactly, see the module doc)."""
        right = exact_edge(left, pixel_size, width)
        bottom = exact_edge(top, -pixel_size, height)
        region = cls(name, (left, bottom, right, top), pixel_size)
        if region.shape != (height, width):  # pragma: no cover - defensive
            raise InvalidRegionError(
                f"cannot build a {height}x{width} grid at pixel size {pixel_size}", field="bbox"
            )
        return region

    def subset(self, name: str, row0: int, row1: int, col0: int, col1: int) -> Region:
        """A region made of rows ``row0:row1`` and columns ``col0:col1`` of this one; its
        coordinates equal the parent's slices bit for bit."""
        if not (0 <= row0 < row1 <= self.height and 0 <= col0 < col1 <= self.width):
            raise InvalidRegionError(
                f"subset rows {row0}:{row1}, cols {col0}:{col1} outside grid {self.shape}"
            )
        left, _, _, top = self.bbox
        px = self.pixel_size
        return Region.from_shape(name, exact_edge(left, px, col0), exact_edge(top, -px, row0),
                                 px, row1 - row0, col1 - col0)

    def window_of(self, other: Region) -> tuple[slice, slice]:
        """``(rows, cols)`` of ``other`` inside this grid when ``other`` is an aligned
        sub-grid of it (same pixel size, edges on this grid's pixel edges, inside it);
        otherwise a :class:`~firesmoke.errors.GridMismatchError`."""
        px = exact(self.pixel_size)
        c0 = (exact(other.bbox[0]) - exact(self.bbox[0])) / px
        r0 = (exact(self.bbox[3]) - exact(other.bbox[3])) / px
        h, w = other.shape
        if (exact(other.pixel_size) != px or c0.denominator != 1 or r0.denominator != 1
                or c0 < 0 or r0 < 0 or r0 + h > self.height or c0 + w > self.width):
            raise GridMismatchError(f"{other!r} is not an aligned sub-grid of {self!r}")
        return slice(int(r0), int(r0) + h), slice(int(c0), int(c0) + w)

    def __repr__(self) -> str:
        h, w = self.shape
        return f"Region({self.name!r}, bbox={list(self.bbox)}, pixel_size={self.pixel_size}, shape={h}x{w})"
