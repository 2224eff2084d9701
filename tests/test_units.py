"""Every ``units`` attribute firesmoke writes is a valid UDUNITS-2 string (files say CF-1.8).

``cf_units`` needs a system library (libexpat) beside its wheel, so the check is an
allow-list of strings verified once with ``cf_units.Unit`` (2026-12-04); quantities with no
UDUNITS unit (log(1 + MW), day of year) carry no ``units`` but a ``long_name``/``comment``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from firesmoke.burned.predict import predict_burned
from firesmoke.cube.build import build_cube
from firesmoke.cube.frp import STAT_ATTRS
from firesmoke.grid import Region

UDUNITS_OK = {"1", "m", "MW", "degree", "degrees_north", "degrees_east", "days",
              "W m-2 sr-1 um-1", "days since 1970-01-01"}
"""Each accepted by ``cf_units.Unit`` (UDUNITS-2)."""

PACKAGE = Path(__file__).resolve().parents[1] / "firesmoke"
# synthetic/ writes imitations of NASA files with NASA's own attributes ("Julian day",
# "bit field"); models/normalization's ``units`` is free text of a model card
NOT_CF = ("synthetic", "normalization.py")


def _units_literals(path: Path) -> list[tuple[int, str]]:
    """String literals given as ``"units": "..."`` in a dict or ``units="..."`` in a call."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and k.value == "units" and isinstance(v, ast.Constant):
                    out.append((v.lineno, v.value))
        elif isinstance(node, ast.Call):
            out += [(kw.value.lineno, kw.value.value) for kw in node.keywords
                    if kw.arg == "units" and isinstance(kw.value, ast.Constant)]
    return out


def test_units_written_in_the_source_are_udunits():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if any(part in path.parts or path.name == part for part in NOT_CF):
            continue
        for line, text in _units_literals(path):
            found[f"{path.relative_to(PACKAGE)}:{line}"] = text
    assert len(found) > 10  # the scan sees them
    bad = {where: u for where, u in found.items() if u not in UDUNITS_OK}
    assert not bad, f"not UDUNITS: {bad}"


def _all_units(ds) -> dict[str, str]:
    return {str(k): v.attrs["units"] for k, v in ds.variables.items() if "units" in v.attrs}


def test_cube_units_and_the_frp_channel():
    region = Region.from_shape("U", 0.0, 1.0, 0.01, 8, 8)
    cube = build_cube(region, "2020-07-01", "2020-07-02", angles=True)
    units = _all_units(cube)
    assert set(units.values()) <= UDUNITS_OK and {"red", "nir", "mir", "x", "y"} <= set(units)
    frp = cube["frp"].attrs
    assert "units" not in frp and frp["firesmoke_transform"] == "log1p" and frp["frp_units"] == "MW"
    assert frp["long_name"].startswith("log(1 + ")
    for stat in STAT_ATTRS.values():
        assert stat.get("units", "1") in UDUNITS_OK


@pytest.mark.parametrize("mode", ["monthly", "range"])
def test_product_units(mode):
    days = pd.date_range("2020-06-01", "2020-09-30")
    region = Region.from_shape("U", 0.0, 1.0, 0.01, 16, 16)
    cube = region.coords_dataset(time=days.values)
    for v in ("red", "nir", "mir", "frp"):
        cube[v] = (("time", "y", "x"), np.zeros((len(days), 16, 16), np.float32))
    ds = predict_burned(cube, lambda b: np.zeros_like(b[:, :1]), "2020-07-01", "2020-08-31",
                        mode=mode, tile=16, step=16)
    units = _all_units(ds)
    assert set(units.values()) <= UDUNITS_OK and units["confidence"] == "1"
    assert "units" not in ds["burn_date"].attrs and "day of year" in ds["burn_date"].attrs["comment"]
