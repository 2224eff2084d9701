"""Find VIIRS granules in a folder tree: name matching, grouping, pairing, skip report.

File names are matched against the declarative table of product definitions
(:data:`firesmoke.io.viirs.names.PRODUCTS`): each definition is a regular expression with named fields (product
short name, satellite, date, time, collection, production stamp, layer) and the role the
file plays in a granule. Files are then grouped into granules:

- gridded ``NPP_VMAES_L1`` granules are made of one HDF4 file per layer; a granule is
  complete when every required layer is present (:data:`~firesmoke.io.viirs.bands.DEFAULT_VMAES_LAYERS`
  unless ``layers=`` says otherwise);
- swath L1B granules pair an observation file (``VNP02MOD``/``VJ102MOD``/``VJ202MOD``)
  with its geolocation file (``VNP03MOD``/``VJ103MOD``/``VJ203MOD``) of the same
  satellite, start time and collection.

Everything that is not used is reported in :attr:`GranuleIndex.skipped` as
:class:`~firesmoke.errors.SkippedInput` with the reason (unknown name, incomplete granule
and its missing layers, observation file without geolocation, duplicate of a newer
production, file of the other kind), and a warning is logged. Hidden files and folders
(names starting with ``.``) are not inputs and are ignored; files of complete granules
outside ``start``/``end`` are left out on purpose (logged at debug level).
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from firesmoke.errors import InputError, SkippedInput
from firesmoke.io.viirs.bands import (
    DEFAULT_VMAES_LAYERS,
    VMAES_LAYER_TO_VARIABLE,
    normalize_platform,
    parse_granule_time,
)
from firesmoke.io.viirs.gridded import open_vmaes_granule
from firesmoke.io.viirs.names import KINDS, PRODUCTS, ProductDefinition, match_file
from firesmoke.io.viirs.swath import open_l1b_swath

__all__ = [
    "PRODUCTS",
    "Granule",
    "GranuleIndex",
    "ProductDefinition",
    "find_granules",
    "match_file",
]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Granule:
    """One granule: the files that make it and what they are.

    Attributes
    ----------
    product
        Product short name of the main file (``"NPP_VMAES_L1"``, ``"VNP02MOD"``, ...).
    kind
        ``"vmaes"`` or ``"l1b"``.
    platform
        ``"S-NPP"``, ``"NOAA-20"`` or ``"NOAA-21"``.
    start
        Start of acquisition from the file name (naive datetime, UTC).
    granule_id
        ``AYYYYDDD.HHMM``.
    collection
        Collection number, e.g. ``"001"``.
    paths
        Layer name -> file (gridded) or ``"observation"``/``"geolocation"`` -> file (L1B).
    production
        Production stamp(s) of the files (``YYYYDDDHHMMSS``), by layer/role.
    """

    product: str
    kind: str
    platform: str
    start: datetime
    granule_id: str
    collection: str
    paths: Mapping[str, Path]
    production: Mapping[str, str] = field(default_factory=dict)
    nrt: bool = False

    @property
    def day(self) -> date:
        """UTC day of the granule start."""
        return self.start.date()

    @property
    def files(self) -> list[Path]:
        return list(self.paths.values())

    def open(self, **kwargs: Any) -> Any:
        """Open with the matching reader (:func:`~firesmoke.io.viirs.open_vmaes_granule` or
        :func:`~firesmoke.io.viirs.open_l1b_swath`); keyword arguments are passed on."""
        if self.kind == "vmaes":
            return open_vmaes_granule(list(self.paths.values()), **kwargs)
        return open_l1b_swath(self.paths["observation"], self.paths["geolocation"], **kwargs)

    def __str__(self) -> str:  # pragma: no cover - trivial
        return f"{self.product} {self.platform} {self.granule_id} ({len(self.paths)} files)"


@dataclass
class GranuleIndex:
    """The granules found in a folder tree, sorted by start time, plus what was skipped."""

    granules: list[Granule]
    skipped: list[SkippedInput]
    root: Path | None = None

    def __len__(self) -> int:
        return len(self.granules)

    def __iter__(self) -> Iterator[Granule]:
        return iter(self.granules)

    def __getitem__(self, index: int) -> Granule:
        return self.granules[index]

    @property
    def days(self) -> list[date]:
        """Sorted UTC days with at least one granule."""
        return sorted({g.day for g in self.granules})

    def by_day(self) -> dict[date, list[Granule]]:
        """UTC day -> granules starting that day (sorted by start time)."""
        out: dict[date, list[Granule]] = defaultdict(list)
        for g in self.granules:
            out[g.day].append(g)
        return dict(sorted(out.items()))

    def by_overpass(self, max_gap: timedelta = timedelta(minutes=7)) -> list[list[Granule]]:
        """Group consecutive granules of one platform and kind into overpasses.

        Two granules belong to the same overpass when the second starts at most
        ``max_gap`` after the first (NASA granules are 6 minutes long).
        """
        groups: list[list[Granule]] = []
        keyed: dict[tuple[str, str], list[Granule]] = defaultdict(list)
        for g in self.granules:
            keyed[(g.kind, g.platform)].append(g)
        for items in keyed.values():
            items.sort(key=lambda g: g.start)
            current: list[Granule] = []
            for g in items:
                if current and g.start - current[-1].start > max_gap:
                    groups.append(current)
                    current = []
                current.append(g)
            if current:
                groups.append(current)
        groups.sort(key=lambda grp: (grp[0].start, grp[0].platform))
        return groups

    def select(self, *, kind: str | None = None, platform: str | None = None) -> GranuleIndex:
        """A new index restricted to one kind and/or platform (``skipped`` is kept)."""
        plat = normalize_platform(platform) if platform is not None else None
        keep = [
            g
            for g in self.granules
            if (kind is None or g.kind == kind) and (plat is None or g.platform == plat)
        ]
        return GranuleIndex(keep, list(self.skipped), self.root)

    def summary(self) -> str:
        kinds = defaultdict(int)
        for g in self.granules:
            kinds[g.product] += 1
        parts = [f"{n} {k}" for k, n in sorted(kinds.items())] or ["no granules"]
        return (
            f"{', '.join(parts)} over {len(self.days)} day(s); {len(self.skipped)} file(s) skipped"
        )


# --------------------------------------------------------------------------- time window
def _as_bound(value: Any, is_end: bool) -> datetime | None:
    """A naive-UTC datetime bound; a date (or ``YYYY-MM-DD``) as end covers the whole day."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                value = date.fromisoformat(text)
            else:
                value = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InputError(
                f"cannot parse time bound {text!r} (use ISO 8601)", field="start/end"
            ) from exc
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value
    if isinstance(value, date):
        base = datetime(value.year, value.month, value.day)
        return base + timedelta(days=1) - timedelta(microseconds=1) if is_end else base
    try:  # numpy / pandas timestamps
        import pandas as pd

        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        return ts.to_pydatetime()
    except Exception as exc:
        raise InputError(f"cannot interpret time bound {value!r}", field="start/end") from exc


# --------------------------------------------------------------------------- scanning
@dataclass
class _Match:
    path: Path
    definition: ProductDefinition
    fields: dict[str, str]
    start: datetime

    @property
    def production(self) -> str:
        return self.fields.get("production", "")


def _iter_files(root: Path, recursive: bool) -> Iterable[Path]:
    if recursive:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith("."):
                    yield Path(dirpath) / name
    else:
        for p in sorted(root.iterdir()):
            if p.is_file() and not p.name.startswith("."):
                yield p


def _normalize_layers(layers: Sequence[str] | None) -> tuple[str, ...]:
    if layers is None:
        return DEFAULT_VMAES_LAYERS
    var_to_layer = {v: k for k, v in VMAES_LAYER_TO_VARIABLE.items()}
    out = []
    for name in layers:
        if name in VMAES_LAYER_TO_VARIABLE:
            out.append(name)
        elif name in var_to_layer:
            out.append(var_to_layer[name])
        else:
            raise InputError(
                f"unknown layer {name!r}; known: {', '.join(VMAES_LAYER_TO_VARIABLE)} "
                f"(or variables {', '.join(var_to_layer)})",
                field="layers",
            )
    return tuple(out)


def find_granules(
    folder: str | os.PathLike[str],
    start: Any = None,
    end: Any = None,
    kind: str = "auto",
    *,
    layers: Sequence[str] | None = None,
    recursive: bool = True,
) -> GranuleIndex:
    """Find the VIIRS granules under ``folder``.

    Parameters
    ----------
    folder
        Root folder (searched recursively unless ``recursive=False``).
    start, end
        Optional bounds on the granule start time (inclusive). A ``date`` (or a
        ``"YYYY-MM-DD"`` string) as ``end`` includes that whole UTC day. Naive datetimes are
        UTC.
    kind
        ``"vmaes"`` (gridded ``NPP_VMAES_L1``), ``"l1b"`` (swath ``V??02MOD`` + ``V??03MOD``)
        or ``"auto"`` (both).
    layers
        Layers a gridded granule needs to be complete (layer or variable names); default
        the seven BA-Net layers.
    recursive
        Search sub-folders too.

    Returns
    -------
    GranuleIndex
        Complete granules sorted by start time, and every skipped file with its reason.

    Raises
    ------
    InputError
        If ``folder`` is not a folder or ``kind`` is unknown.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError("not a folder (or does not exist)", path=root)
    if kind not in ("auto", *KINDS):
        raise InputError(f"kind must be 'vmaes', 'l1b' or 'auto', got {kind!r}", field="kind")
    wanted = KINDS if kind == "auto" else (kind,)
    required_layers = _normalize_layers(layers)
    t0 = _as_bound(start, is_end=False)
    t1 = _as_bound(end, is_end=True)

    skipped: list[SkippedInput] = []
    matches: list[_Match] = []
    for path in _iter_files(root, recursive):
        hit = match_file(path)
        if hit is None:
            skipped.append(SkippedInput(str(path), "file name matches no known VIIRS product"))
            continue
        definition, fields = hit
        if definition.kind not in wanted:
            skipped.append(
                SkippedInput(str(path), f"{fields['short']} file ignored (kind={kind!r})")
            )
            continue
        try:
            t = parse_granule_time(fields["date"], fields["time"])
        except ValueError as exc:
            skipped.append(SkippedInput(str(path), f"invalid date/time in file name ({exc})"))
            continue
        matches.append(_Match(path, definition, fields, t))

    granules: list[Granule] = []
    granules += _group_vmaes(
        [m for m in matches if m.definition.kind == "vmaes"], required_layers, skipped
    )
    granules += _pair_l1b([m for m in matches if m.definition.kind == "l1b"], skipped)

    kept = []
    outside = 0
    for g in granules:
        if (t0 is not None and g.start < t0) or (t1 is not None and g.start > t1):
            outside += 1
            continue
        kept.append(g)
    if outside:
        log.debug("%d granule(s) under %s fall outside [%s, %s]", outside, root, t0, t1)
    kept.sort(key=lambda g: (g.start, g.platform, g.product))
    skipped.sort(key=lambda s: s.path)
    if skipped:
        preview = "; ".join(f"{Path(s.path).name}: {s.reason}" for s in skipped[:5])
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        log.warning("skipped %d file(s) under %s: %s%s", len(skipped), root, preview, more)
        for s in skipped:
            log.debug("skipped %s: %s", s.path, s.reason)
    return GranuleIndex(kept, skipped, root)


def _dedupe(items: list[_Match], what: str, skipped: list[SkippedInput]) -> _Match:
    """Keep the newest production (then the first path); report the others."""
    items = sorted(items, key=lambda m: (m.production, str(m.path)), reverse=True)
    best = items[0]
    for other in items[1:]:
        reason = (
            f"duplicate {what}: older production than {best.path.name}"
            if other.production != best.production
            else f"duplicate {what}: same file name as {best.path}"
        )
        skipped.append(SkippedInput(str(other.path), reason))
    return best


def _group_vmaes(
    matches: list[_Match], required: tuple[str, ...], skipped: list[SkippedInput]
) -> list[Granule]:
    groups: dict[tuple[str, str, str, str], dict[str, list[_Match]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for m in matches:
        f = m.fields
        groups[(f["short"], f["date"], f["time"], f["collection"])][f["layer"]].append(m)
    out = []
    for (short, d, t, coll), by_layer in sorted(groups.items()):
        gid = f"A{d}.{t}"
        chosen = {
            layer: _dedupe(items, f"{short} {gid} layer {layer}", skipped)
            for layer, items in by_layer.items()
        }
        missing = [layer for layer in required if layer not in chosen]
        if missing:
            for _layer, m in sorted(chosen.items()):
                skipped.append(
                    SkippedInput(
                        str(m.path),
                        f"incomplete granule {short} {gid}: missing layer(s) {', '.join(missing)}",
                        {"granule_id": gid, "missing": missing},
                    )
                )
            continue
        first = next(iter(chosen.values()))
        out.append(
            Granule(
                product=short,
                kind="vmaes",
                platform=first.definition.platforms.get(
                    first.fields["sat"], normalize_platform(first.fields["sat"])
                ),
                start=first.start,
                granule_id=gid,
                collection=coll,
                paths={layer: m.path for layer, m in sorted(chosen.items())},
                production={layer: m.production for layer, m in sorted(chosen.items())},
            )
        )
    return out


def _pair_l1b(matches: list[_Match], skipped: list[SkippedInput]) -> list[Granule]:
    groups: dict[tuple[str, str, str, str, bool], dict[str, list[_Match]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for m in matches:
        f = m.fields
        key = (f["sat"], f["date"], f["time"], f["collection"], "nrt" in f)
        groups[key][m.definition.role].append(m)
    out = []
    for (sat, d, t, coll, nrt), roles in sorted(groups.items()):
        gid = f"A{d}.{t}"
        chosen = {
            role: _dedupe(items, f"{role} file of {sat} {gid}", skipped)
            for role, items in roles.items()
        }
        if "observation" not in chosen or "geolocation" not in chosen:
            have, lack = (
                ("observation", "geolocation")
                if "observation" in chosen
                else ("geolocation", "observation")
            )
            m = chosen[have]
            want = f"{sat}{'03' if lack == 'geolocation' else '02'}MOD{'_NRT' if nrt else ''}"
            skipped.append(
                SkippedInput(
                    str(m.path),
                    f"{have} file without its {lack} file: no {want}.{gid}.{coll}.*.nc found",
                    {"granule_id": gid, "missing": [lack]},
                )
            )
            continue
        obs = chosen["observation"]
        out.append(
            Granule(
                product=obs.fields["short"] + ("_NRT" if nrt else ""),
                kind="l1b",
                platform=obs.definition.platforms.get(sat, sat),
                start=obs.start,
                granule_id=gid,
                collection=coll,
                paths={"observation": obs.path, "geolocation": chosen["geolocation"].path},
                production={role: m.production for role, m in chosen.items()},
                nrt=nrt,
            )
        )
    return out
