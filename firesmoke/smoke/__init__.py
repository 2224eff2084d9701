"""Smoke plume pipeline: Sentinel-2 chips and scenes -> probabilities, masks, plume areas.

- :mod:`~firesmoke.smoke.chips`: :func:`classify_chips` (classifier probability + mask area);
- :mod:`~firesmoke.smoke.scenes`: :func:`segment_scene` (U-Net masks of whole scenes);
- :mod:`~firesmoke.smoke.sites`: :func:`plume_timeseries` at emitter sites;
- :mod:`~firesmoke.smoke.outputs`: the export step (CSV tables, mask COGs);
- :mod:`~firesmoke.smoke.weights`: the default weights and their loading.
"""

from firesmoke.smoke.chips import classify_chips
from firesmoke.smoke.outputs import predict_smoke_chips, predict_smoke_scene
from firesmoke.smoke.scenes import scene_probability, segment_scene
from firesmoke.smoke.sites import plume_timeseries, read_sites
from firesmoke.smoke.weights import DEFAULT_CLASSIFIER, DEFAULT_SEGMENTER

__all__ = [
    "DEFAULT_CLASSIFIER",
    "DEFAULT_SEGMENTER",
    "classify_chips",
    "plume_timeseries",
    "predict_smoke_chips",
    "predict_smoke_scene",
    "read_sites",
    "scene_probability",
    "segment_scene",
]
