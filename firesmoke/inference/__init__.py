"""Tile models on (dask) arrays: models with their normalisation, tile plans, the engine.

- :mod:`~firesmoke.inference.model`: :class:`TileModel`, :func:`predict_array`;
- :mod:`~firesmoke.inference.tiling`: tile plans, halos, blending weights;
- :mod:`~firesmoke.inference.engine`: the block pipeline on the device;
- :mod:`~firesmoke.inference.runtime`: process tuning for CPU inference;
- :mod:`~firesmoke.inference.cluster`: Dask clients for inference (CPU or one worker per GPU).
"""
