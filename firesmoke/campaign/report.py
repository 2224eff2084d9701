"""The report of a campaign run (what was done, skipped, empty or failed)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firesmoke.store import Location
from firesmoke.store.location import write_small

__all__ = ["Report"]


@dataclass
class Report:
    """What a campaign run did. ``ok`` is true when no unit failed."""

    name: str
    output: str
    n_units: int = 0
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped_inputs: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stores: list[str] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    started: str = ""
    elapsed_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per step: ``plan``, ``stores`` (cubes, templates), ``ledger`` (listing the
    finished units), ``submit`` (workers given the contexts, first window submitted),
    ``units`` (until the last unit), ``finish`` (consolidation, exports)."""
    path: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed

    def timed(self, step: str, since: float) -> float:
        """Record ``perf_counter() - since`` as ``timings[step]``; return ``perf_counter()``."""
        import time

        now = time.perf_counter()
        self.timings[step] = round(now - since, 4)
        return now

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ok"] = self.ok
        return d

    def summary(self) -> str:
        lines = [f"campaign {self.name}: {len(self.done)} unit(s) done, {len(self.skipped)} already "
                 f"done, {len(self.empty)} empty, {len(self.failed)} failed of {self.n_units} "
                 f"in {self.elapsed_s:.1f} s"]
        lines += [f"  failed {f['unit']}: {f['reason']}" for f in self.failed]
        lines += [f"  skipped input {s['path']}: {s['reason']}" for s in self.skipped_inputs]
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  store {s}" for s in self.stores] + [f"  export {e}" for e in self.exports]
        if self.path:
            lines.append(f"  report {self.path}")
        return "\n".join(lines)

    def write(self, path: str | os.PathLike[str]) -> Any:
        self.path = os.fspath(path)
        # local: exclusive temporary file renamed into place, never through a link
        written = write_small(path, json.dumps(self.to_dict(), indent=2, default=str))
        return Path(written) if Location.of(written).local else written
