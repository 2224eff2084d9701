"""Opening firesmoke's stores emits no zarr warning about the ``.firesmoke`` bookkeeping
folder inside them, and firesmoke hides that warning only (issue 12)."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from _store_helpers import small_cube
from zarr.errors import ZarrUserWarning

from firesmoke.burned.periods import period_coords
from firesmoke.cube.build import open_cube, write_cube
from firesmoke.grid import Region
from firesmoke.store import (
    create_template,
    finalize_store,
    open_store,
    write_block,
    write_product,
)
from firesmoke.store.zarr_store import quiet_zarr


def _stores(tmp_path):
    cube = write_cube(small_cube(8), tmp_path / "cube.zarr")
    cube2 = write_cube(small_cube(4), tmp_path / "cube2.zarr", zarr_format=2)
    prod = small_cube(2)[["red"]].rename(time="period")
    product = write_product(prod, tmp_path / "product.zarr")
    # a campaign-style store: template, then aligned blocks with ledger markers
    region = Region.from_shape("W", 0.0, 1.0, 0.01, 16, 16)
    tpl = region.coords_dataset().assign_coords(period_coords(["2020-08"], ["2020-08-01"],
                                                              ["2020-08-31"]))
    tpl["confidence"] = (("period", "y", "x"), da.zeros((1, 16, 16), np.float32, chunks=(1, 8, 8)))
    mosaic = tmp_path / "mosaic.zarr"
    create_template(tpl, mosaic, chunks={"period": 1, "y": 8, "x": 8}, zarr_format=2)
    block = xr.Dataset({"confidence": (("period", "y", "x"), np.ones((1, 8, 8), np.float32))})
    write_block(block, mosaic, {"period": slice(0, 1), "y": slice(0, 8), "x": slice(0, 8)},
                block_id="b0")
    finalize_store(mosaic)  # as a campaign does once its units are done
    return cube, cube2, product, mosaic


def test_writing_and_opening_firesmoke_stores_is_quiet(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZarrUserWarning)
        cube, cube2, product, mosaic = _stores(tmp_path)
        for store in (cube, cube2):
            assert open_cube(store).sizes["time"] in (4, 8)
        for store in (cube, cube2, product, mosaic):
            open_store(store)  # without consolidated metadata: zarr lists the store
            xr.open_zarr(store)  # plain xarray on a consolidated store
    # the folder is there, and zarr does warn when it lists a store on its own
    assert (mosaic / ".firesmoke").is_dir()
    with pytest.warns(ZarrUserWarning, match=r"\.firesmoke is not recognized"):
        xr.open_zarr(mosaic, consolidated=False)


def test_quiet_zarr_hides_that_warning_only():
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        with quiet_zarr():
            warnings.warn("Object at .firesmoke is not recognized as a component of a Zarr "
                          "hierarchy.", ZarrUserWarning, stacklevel=1)
            warnings.warn("Object at .firesmoke/ledger is not recognized as a component of a "
                          "Zarr hierarchy.", ZarrUserWarning, stacklevel=1)
            warnings.warn("Object at notes.txt is not recognized as a component of a Zarr "
                          "hierarchy.", ZarrUserWarning, stacklevel=1)
            warnings.warn("something else", ZarrUserWarning, stacklevel=1)
    assert [str(w.message) for w in got] == [
        "Object at notes.txt is not recognized as a component of a Zarr hierarchy.",
        "something else"]
