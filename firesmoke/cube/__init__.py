"""Daily datacubes ``(time, y, x)`` on a region grid, built lazily from readers + kernels.

- :mod:`~firesmoke.cube.build`: :func:`build_cube`, :func:`write_cube`, :func:`open_cube`;
- :mod:`~firesmoke.cube.frp`: FIRMS detections -> the daily FRP channel;
- :mod:`~firesmoke.cube.ops`: numpy/dask wrappers over the Numba kernels.
"""
