"""Campaign planning: a spec -> the work units (region x product x period x block)."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firesmoke.burned.periods import Window
from firesmoke.campaign.spec import BurnedProduct, CampaignSpec, load_spec
from firesmoke.errors import InputError
from firesmoke.paths import safe_join

__all__ = ["Plan", "Slot", "WorkUnit", "plan_campaign"]


# --------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class Slot:
    """One output period of a product: its label, kept days and model windows."""

    index: int
    label: str
    start: dt.date
    end: dt.date
    windows: tuple[Window, ...]

    @property
    def file_label(self) -> str:
        return self.label.replace("..", "_to_")


@dataclass(frozen=True)
class WorkUnit:
    """One block of one period of one product of one region."""

    id: str
    region: str
    product: str
    period: str
    period_index: int
    rows: tuple[int, int]
    cols: tuple[int, int]


@dataclass
class Plan:
    """What a campaign will compute, before any data is read."""

    spec: CampaignSpec
    units: tuple[WorkUnit, ...]
    slots: dict[str, tuple[Slot, ...]]
    stores: dict[tuple[str, str], Path]
    cubes: dict[str, Path]
    days: dict[str, tuple[dt.date, dt.date]]

    def __len__(self) -> int:
        return len(self.units)

    def units_of(self, product: str, region: str) -> list[WorkUnit]:
        return [u for u in self.units if u.product == product and u.region == region]

    def summary(self) -> str:
        lines = [f"campaign {self.spec.name}: {len(self.units)} work units -> {self.spec.output}"]
        for e in self.spec.regions:
            r = e.region
            d0, d1 = self.days[r.name]
            lines.append(f"  {r.name} {r.shape[0]}x{r.shape[1]} px, cube {self.cubes[r.name]} "
                         f"({d0}..{d1})")
        for p in self.spec.products:
            labels = ", ".join(s.label for s in self.slots[p.name])
            lines.append(f"  {p.name} ({p.mode}): {labels}")
        return "\n".join(lines)


def _slots(product: BurnedProduct, spec: CampaignSpec) -> tuple[Slot, ...]:
    found: dict[str, tuple[dt.date, dt.date, tuple[Window, ...]]] = {}
    rules = product.rules
    for p in spec.periods:
        if product.mode == "range":  # same label as predict_burned's range product
            ws = tuple(rules.windows("range", p.start, p.end))
            found[f"{p.start}..{p.end}"] = (p.start, p.end, ws)
            continue
        # monthly: the months overlapping the period; NRT: the run date is its last day
        start = p.end if product.mode == "nrt" else p.start
        for w in rules.windows(product.mode, start, p.end):
            found[w.label] = (w.keep_start, w.keep_end, (w,))
    ordered = sorted(found.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[0]))
    for (a, (s, _, _)), (b, (t, _, _)) in itertools.pairwise(ordered):
        if s == t:  # the store's `period` coordinate is the first day: it must be unique
            raise InputError(
                f"product {product.name!r}: periods {a} and {b} start on the same day; a "
                "product's periods are indexed by their first day (ds.sel(period=...)), so "
                "give them different starts or put them in separate campaigns",
                field="periods")
    return tuple(Slot(i, lab, s, e, ws) for i, (lab, (s, e, ws)) in enumerate(ordered))


def _blocks(n: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def plan_campaign(spec: CampaignSpec | str | os.PathLike[str] | Mapping[str, Any]) -> Plan:
    """Cut a campaign into work units (no data is read).

    Units are ordered region, product, period, block row, block column; their ids are
    stable across runs of the same spec (they name the ledger markers used for resume).
    """
    spec = load_spec(spec)
    slots = {p.name: _slots(p, spec) for p in spec.products}
    units, stores, cubes, days = [], {}, {}, {}
    bs = spec.block_size
    for entry in spec.regions:
        r = entry.region
        name = r.name
        cubes[name] = entry.cube or safe_join(spec.output, "cubes", f"{name}.zarr")
        windows = [w for p in spec.products for s in slots[p.name] for w in s.windows]
        days[name] = (min(w.start for w in windows), max(w.end for w in windows))
        H, W = r.shape
        for p in spec.products:
            stores[(p.name, name)] = safe_join(spec.output, f"{p.name}_{name}.zarr")
            for s in slots[p.name]:
                for r0, r1 in _blocks(H, bs):
                    for c0, c1 in _blocks(W, bs):
                        uid = f"{name}.{p.name}.{s.file_label}.y{r0:06d}.x{c0:06d}"
                        units.append(WorkUnit(uid, name, p.name, s.label, s.index, (r0, r1), (c0, c1)))
    return Plan(spec, tuple(units), slots, stores, cubes, days)
