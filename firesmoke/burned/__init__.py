"""Burned-area products (BA-Net) from a datacube.

- :mod:`~firesmoke.burned.periods`: the 64-day input periods of each product mode;
- :mod:`~firesmoke.burned.rules`: the rules objects (default, ``banet-0.6.7``) and the
  per-pixel reductions;
- :mod:`~firesmoke.burned.predict`: :func:`predict_burned` over Dask;
- :mod:`~firesmoke.burned.events`: fire events from a product;
- :mod:`~firesmoke.burned.outputs`: the export step (COGs, quicklooks, events).
"""
