"""Nothing overwritten by accident (issue 22): an existing store is replaced only when asked,
only when firesmoke wrote it, and never when it is the store being read."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr
from _store_helpers import small_cube

from firesmoke.cli.main import main
from firesmoke.cube.build import CUBE_VARIABLES, open_cube, write_cube
from firesmoke.errors import InputError
from firesmoke.store import Location, check_writable, write_product


def _product(value: float = 1.0) -> xr.Dataset:
    return xr.Dataset({"confidence": (("y", "x"), np.full((4, 4), value, np.float32))})


def test_product_needs_overwrite_to_replace(tmp_path):
    store = tmp_path / "p.zarr"
    write_product(_product(1.0), store)
    with pytest.raises(InputError, match=r"exists; pass overwrite=True") as info:
        write_product(_product(2.0), store)
    assert str(store) in str(info.value)
    assert float(xr.open_zarr(store)["confidence"].max()) == 1.0  # kept
    write_product(_product(2.0), store, overwrite=True)
    assert float(xr.open_zarr(store)["confidence"].max()) == 2.0


def test_foreign_zarr_store_is_never_replaced(tmp_path):
    foreign = tmp_path / "theirs.zarr"
    xr.Dataset({"a": ("x", np.arange(3))}).to_zarr(foreign, zarr_format=2)
    before = sorted(p.relative_to(foreign).as_posix() for p in foreign.rglob("*"))
    with pytest.raises(InputError, match="firesmoke did not write"):
        write_product(_product(), foreign, overwrite=True)
    with pytest.raises(InputError, match="firesmoke did not write"):
        write_cube(small_cube(4), foreign, mode="w")
    with pytest.raises(InputError, match="firesmoke did not write"):
        write_cube(small_cube(4), foreign)  # no adoption of a store firesmoke did not write
    assert sorted(p.relative_to(foreign).as_posix() for p in foreign.rglob("*")) == before
    np.testing.assert_array_equal(xr.open_zarr(foreign)["a"].values, [0, 1, 2])


def test_the_store_being_read_is_refused_even_with_overwrite(tmp_path):
    cube = write_cube(small_cube(4), tmp_path / "c.zarr")
    for same in (cube, tmp_path / "x" / ".." / "c.zarr"):
        with pytest.raises(InputError, match="store being read"):
            check_writable(same, overwrite=True, reading=cube)
    os.symlink(cube, tmp_path / "link.zarr")
    with pytest.raises(InputError, match="store being read"):
        check_writable(tmp_path / "link.zarr", overwrite=True, reading=cube)
    assert Location.of("s3://b/c.zarr/").same_as("s3a://b/c.zarr")
    assert not Location.of("s3://b/c.zarr").same_as("s3://b/d.zarr")


def test_cli_predict_onto_its_cube_or_an_existing_store(tmp_path, capsys):
    cube = write_cube(small_cube(4), tmp_path / "c.zarr")
    before = {v: open_cube(cube)[v].values.copy() for v in CUBE_VARIABLES}
    args = ["predict", "burned", "--cube", str(cube), "--start", "2021-01-01", "--end",
            "2021-01-31", "--mode", "range", "-q"]
    assert main([*args, "--out", str(cube), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "store being read" in err and "Traceback" not in err
    after = open_cube(cube)
    for v in CUBE_VARIABLES:
        np.testing.assert_array_equal(after[v].values, before[v])
    other = write_product(_product(), tmp_path / "p.zarr")
    assert main([*args, "--out", str(other)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert float(xr.open_zarr(other)["confidence"].max()) == 1.0
