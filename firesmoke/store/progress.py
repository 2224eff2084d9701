"""Computing lazy products with a progress display fit for the scheduler in use.

``progress`` arguments across firesmoke (:func:`compute`,
:func:`firesmoke.store.write_product`, :func:`firesmoke.cube.build.write_cube`) take:

* ``False`` / ``None``: nothing shown;
* ``True``: with a current ``distributed.Client`` (one made with ``Client(...)`` or
  :func:`firesmoke.inference.cluster.dask_client`), Dask's own
  ``distributed.progress`` (a text bar in a terminal, a widget in a notebook), fed by the
  scheduler; otherwise a ``tqdm`` bar over the tasks of the local scheduler
  (``tqdm.dask.TqdmCallback``), on stderr;
* a callable ``(done, total, label)``: called as parts finish (where a function works
  part by part, e.g. the time chunks of a cube).

The dashboard (``client.dashboard_link``) shows the same and more; it needs ``bokeh``
(``pip install firesmoke[dashboard]``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["Progress", "compute", "current_client", "part_progress"]

log = logging.getLogger(__name__)

Progress = bool | Callable[[int, int, str], None] | None


def current_client() -> Any | None:
    """The ``distributed.Client`` that ``compute()`` would use now, or None (none is made)."""
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return None
    try:
        return default_client()
    except ValueError:
        return None


def compute(obj: Any, progress: Progress = True, label: str = "computing") -> Any:
    """``dask.compute(obj)[0]`` (any dask collection, ``Delayed`` or xarray object) with a
    progress display (see the module docstring); a callable ``progress`` is told
    ``(0, 1, label)`` and ``(1, 1, label)``."""
    import dask

    if callable(progress) and not isinstance(progress, bool):
        progress(0, 1, label)
        out = dask.compute(obj)[0]
        progress(1, 1, label)
        return out
    if not progress:
        return dask.compute(obj)[0]
    client = current_client()
    if client is not None and not getattr(client, "asynchronous", False):
        from distributed import progress as distributed_progress

        future = client.compute(obj)
        distributed_progress(future)
        return future.result()
    from tqdm.dask import TqdmCallback

    with TqdmCallback(desc=label, leave=False):
        return dask.compute(obj)[0]


def part_progress(progress: Progress, label: str) -> Callable[[int, int, str], None] | None:
    """A ``(done, total, label)`` callback for work done part by part: ``progress`` itself
    when callable, a ``tqdm`` bar for ``True``, None for nothing."""
    if callable(progress) and not isinstance(progress, bool):
        return progress
    if not progress:
        return None
    state: dict[str, Any] = {}

    def tick(done: int, total: int, what: str) -> None:
        from tqdm.auto import tqdm

        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=what or label, unit="part", leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return tick
