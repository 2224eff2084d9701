"""Sentinel-2 band names of a GeoTIFF: read from the file, aliases, which bands are where.

Multi-band Sentinel-2 GeoTIFFs name their bands in different ways: GDAL band
descriptions (``B04``, ``B8``, ``b8a``, ``B04_10m``, ``red``...), or a per-band metadata
tag (``BANDNAME``, ``band_name``, ``name``...). :func:`canonical_band` maps every usual
spelling to the canonical name of :data:`~firesmoke.io.sentinel2.chips.BANDS`:

* ``B`` + band number with or without the leading zero, any case: ``B8`` = ``b08`` =
  ``B08``; ``B8A`` = ``b8a`` = ``B08A``; a resolution or other suffix after ``_``, ``-``
  or a space is ignored (``B04_10m``);
* the STAC common names (Earth Search asset keys): ``coastal``, ``blue``, ``green``,
  ``red``, ``rededge1..3``, ``nir``, ``nir08``, ``nir09``, ``cirrus``, ``swir16``,
  ``swir22``.

The true-colour composite (``TCI``, ``TCI_R``...: 8-bit display values, not reflectance)
and anything else are not Sentinel-2 bands here.

:func:`band_positions` finds the bands a model needs in a file and, when some are
missing, raises one :class:`~firesmoke.errors.MissingLayerError` that lists the bands
found and the bands missing at once. A file whose bands carry no name is read in the
smoke data set's order (:data:`~firesmoke.io.sentinel2.chips.BANDS`) when it has exactly
its 13 bands.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from firesmoke.errors import MissingLayerError

__all__ = ["NAME_TAGS", "band_positions", "canonical_band", "file_band_names"]

#: Canonical band names, in the order of the smoke data set's 13-band files.
_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10",
          "B11", "B12")
_COMMON = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05",
    "rededge2": "B06", "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09",
    "cirrus": "B10", "swir16": "B11", "swir22": "B12",
}
_NUMBERED = re.compile(r"^B0?(\d{1,2})(A?)(?:[_\-\s.].*)?$", re.IGNORECASE)
#: Per-band metadata tags that may hold a band's name (first found wins).
NAME_TAGS = ("BANDNAME", "BAND_NAME", "band_name", "bandname", "name", "NAME", "band", "BAND",
             "long_name")


def canonical_band(name: Any) -> str | None:
    """The canonical Sentinel-2 band name of a spelling (``"b8"`` -> ``"B08"``), or None."""
    if not isinstance(name, str):
        return None
    text = name.strip()
    if not text:
        return None
    if text.lower() in _COMMON:
        return _COMMON[text.lower()]
    m = _NUMBERED.match(text)
    if m is None:
        return None
    number, a = int(m[1]), m[2].upper()
    cand = f"B{number}A" if a else f"B{number:02d}"
    return cand if cand in _BANDS else None


def file_band_names(src: Any) -> tuple[str | None, ...]:
    """The name of each band of an open rasterio dataset: its description, else a name
    tag of the band (:data:`NAME_TAGS`); None for a band without either."""
    out: list[str | None] = []
    descriptions = tuple(src.descriptions or ())
    for i in range(1, src.count + 1):
        name = descriptions[i - 1] if i - 1 < len(descriptions) else None
        if not name:
            tags = src.tags(i)
            name = next((tags[k] for k in NAME_TAGS if tags.get(k)), None)
        out.append(name or None)
    return tuple(out)


def band_positions(names: Sequence[str | None], wanted: Sequence[str],
                   path: str | os.PathLike[str] | None = None) -> list[int]:
    """0-based positions of the ``wanted`` (canonical) bands among a file's band ``names``.

    Named bands are matched through :func:`canonical_band` (aliases, any case). A file
    whose bands have no names at all and that has the 13 bands of the smoke data set is
    taken in that order.

    Raises
    ------
    MissingLayerError
        Some wanted bands are not in the file: the message lists the bands found (as
        the file names them, with the canonical name where one is recognised) and every
        missing band, so that one error says what to fix.
    """
    wanted = tuple(wanted)
    canon = [canonical_band(n) for n in names]
    if not any(names) and len(names) == len(_BANDS):
        return [_BANDS.index(b) for b in wanted]
    pos: dict[str, int] = {}
    for i, c in enumerate(canon):
        if c is not None and c not in pos:
            pos[c] = i
    missing = [b for b in wanted if b not in pos]
    if missing:
        if not any(names):
            found = f"{len(names)} bands without names (no band descriptions or name tags)"
        else:
            found = "bands found: " + ", ".join(
                (f"{n}" if c is None or c == n else f"{n} (= {c})") if n else f"#{i + 1} unnamed"
                for i, (n, c) in enumerate(zip(names, canon, strict=True)))
        raise MissingLayerError(
            f"Sentinel-2 bands missing: {', '.join(missing)} (the model uses "
            f"{', '.join(wanted)}); {found}",
            path=path, field="bands")
    return [pos[b] for b in wanted]
