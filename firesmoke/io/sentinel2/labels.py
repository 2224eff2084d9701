"""Label Studio polygon labels of smoke plumes -> boolean masks.

The industrial smoke plume dataset (reference/smoke.md) ships one Label Studio JSON
file per labelled image. Three layouts are accepted:

* **legacy** task (the published dataset)::

      {"data": {"image": "..."}, "completions": [{"result": [
          {"type": "polygonlabels", "value": {"points": [[x%, y%], ...]}}]}]}

* **current** task: the same with ``annotations`` instead of ``completions``;
* **export list**: a JSON list of such tasks (Label Studio's "JSON" export).

Points are in percent of the image width (x) and height (y). A mask is the union of all
polygons of all completions/annotations, rasterised with *all-touched* semantics (a
pixel is set when the polygon touches it at all) on the requested grid. Results that
carry no ``points`` and are not of a polygon type (choices, text areas) are ignored.

Image <-> label pairing used by firesmoke: ``labels/<image-stem>_features.json``
(:func:`label_file_name`), with a fall-back on the stem of ``data.image``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from affine import Affine
from rasterio import features

from firesmoke.errors import CorruptFileError, InputError, WrongProductError

__all__ = [
    "LABEL_SUFFIX",
    "label_file_name",
    "label_image_stem",
    "load_label_tasks",
    "polygons_to_mask",
    "read_label_polygons",
    "read_labels",
    "task_polygons",
]

logger = logging.getLogger(__name__)

#: Suffix appended to the image stem to name its label file.
LABEL_SUFFIX = "_features.json"
_POLYGON_TYPES = {"polygonlabels", "polygon"}
#: Coordinates beyond +-this many percent are rejected as implausible.
_MAX_PERCENT = 1e6


def label_file_name(image_path: str | os.PathLike[str]) -> str:
    """Name of the label file paired with an image: ``<image-stem>_features.json``."""
    return Path(image_path).stem + LABEL_SUFFIX


def label_image_stem(label_path: str | os.PathLike[str]) -> str:
    """Image stem a label file name refers to (inverse of :func:`label_file_name`)."""
    name = Path(label_path).name
    if name.endswith(LABEL_SUFFIX):
        return name[: -len(LABEL_SUFFIX)]
    return Path(name).stem


def load_label_tasks(json_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a Label Studio JSON file and return its tasks (one dict per image).

    Raises
    ------
    CorruptFileError
        The file cannot be read or is not valid JSON.
    WrongProductError
        The JSON is neither a task object nor a list of task objects.
    """
    try:
        text = Path(json_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"cannot read label file: {exc}", path=json_path) from exc
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CorruptFileError(f"not valid JSON: {exc}", path=json_path) from exc
    if isinstance(obj, dict):
        return [obj]
    if isinstance(obj, list) and obj and all(isinstance(t, dict) for t in obj):
        return obj
    raise WrongProductError(
        "not a Label Studio task (expected an object or a non-empty list of objects, "
        f"got {type(obj).__name__})",
        path=json_path,
    )


def _task_image(task: dict[str, Any]) -> str | None:
    data = task.get("data")
    if isinstance(data, dict) and isinstance(data.get("image"), str):
        return data["image"]
    return None


def _image_stem(image_ref: str) -> str:
    """Stem of a ``data.image`` reference: URL query dropped, upload hash prefix kept."""
    return PurePosixPath(image_ref.split("?", 1)[0]).stem


def _parse_points(points: Any, path: Any, where: str) -> np.ndarray:
    if not isinstance(points, list):
        raise InputError(f"{where}: 'points' must be a list", path=path, field="points")
    if len(points) < 3:
        raise InputError(
            f"{where}: a polygon needs at least 3 points, got {len(points)}",
            path=path,
            field="points",
        )
    out = np.empty((len(points), 2), dtype=np.float64)
    for i, pt in enumerate(points):
        ok = isinstance(pt, list | tuple) and len(pt) == 2
        ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in pt)
        if not ok:
            raise InputError(
                f"{where}: point {i} is not a pair of numbers: {pt!r:.60}",
                path=path,
                field="points",
            )
        x, y = float(pt[0]), float(pt[1])
        if not (math.isfinite(x) and math.isfinite(y)) or max(abs(x), abs(y)) > _MAX_PERCENT:
            raise InputError(
                f"{where}: point {i} has a non-finite or implausible coordinate ({x}, {y})",
                path=path,
                field="points",
            )
        out[i] = (x, y)
    return out


def task_polygons(
    task: dict[str, Any], path: str | os.PathLike[str] | None = None
) -> list[np.ndarray]:
    """All polygons of all completions/annotations of one task, in percent.

    Returns
    -------
    list of (n, 2) float64 arrays of ``(x%, y%)`` vertices.

    Raises
    ------
    InputError
        No ``completions``/``annotations`` list, or a malformed result/polygon.
    """
    groups = []
    for key in ("completions", "annotations"):
        if key in task:
            if not isinstance(task[key], list):
                raise InputError(f"'{key}' must be a list", path=path, field=key)
            groups.extend((key, i, c) for i, c in enumerate(task[key]))
    if "completions" not in task and "annotations" not in task:
        raise InputError(
            "no 'completions' (legacy) or 'annotations' (current) list in the task",
            path=path,
            field="completions",
        )
    polygons = []
    for key, i, completion in groups:
        where = f"{key}[{i}]"
        if not isinstance(completion, dict) or not isinstance(completion.get("result", []), list):
            raise InputError(f"{where} is not an object with a 'result' list", path=path, field=key)
        for j, result in enumerate(completion.get("result", [])):
            rwhere = f"{where}.result[{j}]"
            if not isinstance(result, dict):
                raise InputError(f"{rwhere} is not an object", path=path, field="result")
            value = result.get("value")
            rtype = result.get("type")
            has_points = isinstance(value, dict) and "points" in value
            if not has_points:
                if rtype in _POLYGON_TYPES:
                    raise InputError(
                        f"{rwhere} is a polygon without 'value.points'", path=path, field="value"
                    )
                logger.debug("%s: ignoring non-polygon result %s of type %r", path, rwhere, rtype)
                continue
            polygons.append(_parse_points(value["points"], path, rwhere))
    return polygons


def _select_task(tasks: list[dict[str, Any]], path: Any, image: str | None) -> dict[str, Any]:
    if image is not None:
        want = Path(image).stem
        hits = [
            t
            for t in tasks
            if (ref := _task_image(t)) is not None
            and (_image_stem(ref) == want or _image_stem(ref).endswith("-" + want))
        ]
        if not hits:
            raise InputError(f"no task for image {image!r}", path=path, field="data.image")
        return hits[0]
    if len(tasks) > 1:
        raise InputError(
            f"the export holds {len(tasks)} tasks; pass image= to choose one", path=path
        )
    return tasks[0]


def read_label_polygons(
    json_path: str | os.PathLike[str], *, image: str | None = None
) -> list[np.ndarray]:
    """Polygons (percent coordinates) of one labelled image; see :func:`read_labels`."""
    tasks = load_label_tasks(json_path)
    return task_polygons(_select_task(tasks, json_path, image), json_path)


def polygons_to_mask(polygons: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Rasterise percent-coordinate polygons all-touched on a ``shape`` grid.

    Pixel ``(row, col)`` covers ``[col, col+1] x [row, row+1]`` in pixel units, i.e.
    ``[100 col / W, 100 (col+1) / W]`` in percent of the width (same for rows).
    """
    h, w = int(shape[0]), int(shape[1])
    if h <= 0 or w <= 0:
        raise InputError(f"mask shape must be positive, got {shape}")
    mask = np.zeros((h, w), dtype=bool)
    if not polygons:
        return mask
    # Affine mapping pixel (col, row) -> percent coordinates (x%, y%).
    to_percent = Affine.scale(100.0 / w, 100.0 / h)
    geoms = []
    for poly in polygons:
        ring = [(float(x), float(y)) for x, y in poly]
        if ring[0] != ring[-1] or len(ring) < 4:  # closed ring of >= 4 positions (GeoJSON)
            ring.append(ring[0])
        geoms.append(({"type": "Polygon", "coordinates": [ring]}, 1))
    burned = features.rasterize(
        geoms, out_shape=(h, w), transform=to_percent, fill=0, all_touched=True, dtype="uint8"
    )
    mask |= burned.astype(bool)
    return mask


def read_labels(
    json_path: str | os.PathLike[str],
    shape: tuple[int, int] = (120, 120),
    *,
    image: str | None = None,
) -> np.ndarray:
    """Boolean smoke mask of one image from its Label Studio JSON file.

    Parameters
    ----------
    json_path
        Legacy task (``completions``), current task (``annotations``) or an export list.
    shape
        ``(rows, cols)`` of the mask. Percent coordinates refer to the size of the image
        that was labelled: pass the image's own shape for undersized chips and pad the
        mask like the image (:func:`firesmoke.io.sentinel2.chips.pad_to_size`). The reference
        code always scaled percentages to 120 x 120; ``shape=(120, 120)`` reproduces it.
    image
        For export lists holding several tasks: the image (name or stem) to select.

    Returns
    -------
    numpy.ndarray of bool, ``shape``; all False when there is no polygon.

    Raises
    ------
    InputError
        (or a subclass) naming the file for unreadable/malformed JSON or missing keys.
    """
    polygons = read_label_polygons(json_path, image=image)
    try:
        return polygons_to_mask(polygons, shape)
    except InputError:
        raise
    except Exception as exc:  # rasterio/GDAL refusing a geometry
        raise InputError(f"cannot rasterise the polygons: {exc}", path=json_path) from exc
