"""firesmoke: fire and smoke monitoring from satellites (BA-Net burned area from VIIRS +
FIRMS, industrial smoke plumes from Sentinel-2) on xarray, Dask and PyTorch.

The names below are the public face; each is imported on first use, so
``import firesmoke`` stays light (no torch, dask or GDAL until a name needs them).

Examples
--------
>>> import firesmoke as fs
>>> region = fs.Region.named("PT")
>>> region.shape
(800, 400)
>>> fs.errors.InputError.__mro__[1].__name__
'FiresmokeError'
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from firesmoke._version import __version__

# the library logs through named loggers only; applications choose the handlers
logging.getLogger(__name__).addHandler(logging.NullHandler())

#: public name -> the module that defines it
_PUBLIC: dict[str, str] = {
    "Region": "firesmoke.grid",
    "build_cube": "firesmoke.cube.build",
    "open_cube": "firesmoke.cube.build",
    "write_cube": "firesmoke.cube.build",
    "predict_burned": "firesmoke.burned.predict",
    "BurnedRules": "firesmoke.burned.rules",
    "find_events": "firesmoke.burned.events",
    "export_burned": "firesmoke.burned.outputs",
    "classify_chips": "firesmoke.smoke.chips",
    "segment_scene": "firesmoke.smoke.scenes",
    "plume_timeseries": "firesmoke.smoke.sites",
    "TileModel": "firesmoke.inference.model",
    "predict_array": "firesmoke.inference.model",
    "dask_client": "firesmoke.inference.cluster",
    "load_weights": "firesmoke.models.weights",
    "save_weights": "firesmoke.models.weights",
    "run_campaign": "firesmoke.campaign.run",
    "load_spec": "firesmoke.campaign.spec",
    "generate_scenario": "firesmoke.synthetic.scenario",
    "read_firms": "firesmoke.io.firms",
    "open_vmaes_granule": "firesmoke.io.viirs.gridded",
    "open_l1b_swath": "firesmoke.io.viirs.swath",
    "find_granules": "firesmoke.io.viirs.discovery",
}
#: public submodules reached as attributes (``fs.errors``, ``fs.fetch``)
_SUBMODULES = ("errors", "fetch")

__all__ = [
    "BurnedRules",
    "Region",
    "TileModel",
    "__version__",
    "build_cube",
    "classify_chips",
    "dask_client",
    "errors",
    "export_burned",
    "fetch",
    "find_events",
    "find_granules",
    "generate_scenario",
    "load_spec",
    "load_weights",
    "open_cube",
    "open_l1b_swath",
    "open_vmaes_granule",
    "plume_timeseries",
    "predict_array",
    "predict_burned",
    "read_firms",
    "run_campaign",
    "save_weights",
    "segment_scene",
    "write_cube",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from firesmoke import errors, fetch
    from firesmoke.burned.events import find_events
    from firesmoke.burned.outputs import export_burned
    from firesmoke.burned.predict import predict_burned
    from firesmoke.burned.rules import BurnedRules
    from firesmoke.campaign.run import run_campaign
    from firesmoke.campaign.spec import load_spec
    from firesmoke.cube.build import build_cube, open_cube, write_cube
    from firesmoke.grid import Region
    from firesmoke.inference.cluster import dask_client
    from firesmoke.inference.model import TileModel, predict_array
    from firesmoke.io.firms import read_firms
    from firesmoke.io.viirs.discovery import find_granules
    from firesmoke.io.viirs.gridded import open_vmaes_granule
    from firesmoke.io.viirs.swath import open_l1b_swath
    from firesmoke.models.weights import load_weights, save_weights
    from firesmoke.smoke.chips import classify_chips
    from firesmoke.smoke.scenes import segment_scene
    from firesmoke.smoke.sites import plume_timeseries
    from firesmoke.synthetic.scenario import generate_scenario


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"firesmoke.{name}")
    try:
        module = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'firesmoke' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
