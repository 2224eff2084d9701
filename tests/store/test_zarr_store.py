"""Zarr mosaics: template, aligned region writes, ledger, exports, safe names."""

from __future__ import annotations

import warnings

import dask.array as dsa
import numpy as np
import pytest
import rasterio
import xarray as xr

from firesmoke.errors import GridMismatchError, InputError
from firesmoke.grid import Region
from firesmoke.store import (
    Ledger,
    create_template,
    export_geotiff,
    finalize_store,
    quicklook_png,
    safe_join,
    write_block,
)


def make_template(region, ntime=4):
    ds = region.coords_dataset(time=np.datetime64("2020-01-01") + np.arange(ntime))
    shape = (ntime, *region.shape)
    ds["confidence"] = (("time", "y", "x"), dsa.full(shape, np.nan, dtype=np.float32),
                        {"long_name": "burn confidence", "units": "1"})
    return ds


def test_template_blocks_ledger_and_resume(tmp_path):
    region = Region.from_shape("T", 0.0, 1.0, 0.01, 64, 96)
    store = tmp_path / "m.zarr"
    tpl = make_template(region)
    create_template(tpl, store, chunks={"time": 2, "y": 32, "x": 32})
    # metadata only: no chunk files written yet
    assert not list((store / "confidence").rglob("c/*/*/*"))
    rng = np.random.default_rng(0)
    full = rng.random(tpl["confidence"].shape).astype(np.float32)
    full[:, 32:, :] = np.nan  # an empty half: its chunks are not written
    ledger = Ledger(store)
    for t0 in (0, 2):
        for x0 in (0, 32, 64):
            bid = f"t{t0}-x{x0}"
            assert not ledger.done(bid)
            sl = {"time": slice(t0, t0 + 2), "y": slice(0, 64), "x": slice(x0, x0 + 32)}
            block = tpl.isel(sl).copy()
            block["confidence"] = (("time", "y", "x"), full[t0:t0 + 2, :, x0:x0 + 32])
            write_block(block, store, sl, block_id=bid)
            assert ledger.done(bid)
    finalize_store(store)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # consolidated: opens without the fallback warning
        out = xr.open_zarr(store)
    np.testing.assert_array_equal(out["confidence"].values, full)
    assert out.rio.crs.to_epsg() == 4326
    assert out["confidence"].attrs["long_name"] == "burn confidence"
    assert len(ledger.finished()) == 6
    # chunks entirely NaN were not written
    chunk_files = [p for p in (store / "confidence").rglob("*") if p.is_file() and p.name != "zarr.json"]
    assert len(chunk_files) == 2 * 1 * 3  # 2 time chunks x 1 non-empty y chunk x 3 x chunks
    # resume: same template is accepted and keeps data
    create_template(tpl, store, chunks={"time": 2, "y": 32, "x": 32})
    np.testing.assert_array_equal(xr.open_zarr(store)["confidence"].values, full)


def test_refuses_to_mix_grids(tmp_path):
    store = tmp_path / "m.zarr"
    create_template(make_template(Region.from_shape("A", 0.0, 1.0, 0.01, 32, 32)), store, {"y": 32})
    with pytest.raises(GridMismatchError, match="different"):
        create_template(make_template(Region.from_shape("B", 5.0, 1.0, 0.01, 32, 32)), store, {"y": 32})


def test_safe_join(tmp_path):
    assert safe_join(tmp_path, "a", "b.zarr") == (tmp_path / "a" / "b.zarr").resolve()
    for bad in ("..", "../x", "/etc", ".hidden", "a/b", ""):
        with pytest.raises(InputError):
            safe_join(tmp_path, bad)


def test_export_geotiff_and_png(tmp_path):
    region = Region.from_shape("T", 10.0, 40.0, 0.01, 20, 30)
    ds = region.coords_dataset()
    da = xr.DataArray(np.arange(600, dtype=np.float32).reshape(20, 30), dims=("y", "x"),
                      coords={"y": ds.y, "x": ds.x, "spatial_ref": ds.spatial_ref})
    p = export_geotiff(da, tmp_path / "c.tif")
    with rasterio.open(p) as src:
        assert src.crs.to_epsg() == 4326
        assert src.transform.almost_equals(region.transform, precision=1e-9)
        np.testing.assert_array_equal(src.read(1), da.values)
    png = quicklook_png([("a", da, {"cmap": "viridis"}), ("b", da.values, {})], tmp_path / "q.png", "t")
    assert png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _lazy_product(region):
    rng = np.random.default_rng(2)
    data = rng.random((2, *region.shape)).astype(np.float32)
    ds = region.coords_dataset()
    ds["confidence"] = (("period", "y", "x"), dsa.from_array(data, chunks=(1, 32, 32)))
    return ds, data


@pytest.mark.parametrize("how", ["bar", "callback", "off"])
def test_write_product_shows_progress_locally(tmp_path, capsys, how):
    from firesmoke.store import write_product

    region = Region.from_shape("P", 0.0, 1.0, 0.01, 64, 64)
    ds, data = _lazy_product(region)
    calls = []
    progress = {"bar": True, "callback": lambda *a: calls.append(a), "off": False}[how]
    write_product(ds, tmp_path / "p.zarr", progress=progress)
    np.testing.assert_array_equal(xr.open_zarr(tmp_path / "p.zarr")["confidence"].values, data)
    err = capsys.readouterr().err
    assert ("writing p.zarr" in err) == (how == "bar")  # tqdm over the dask tasks, on stderr
    if how == "callback":
        assert [c[:2] for c in calls] == [(0, 1), (1, 1)]


def test_write_product_progress_on_a_client(tmp_path, capsys):
    """With a current Client, the chunks are computed by its workers, shown by
    distributed.progress."""
    distributed = pytest.importorskip("distributed")
    from firesmoke.store import write_product

    region = Region.from_shape("P", 0.0, 1.0, 0.01, 64, 64)
    ds, data = _lazy_product(region)
    with distributed.Client(n_workers=1, threads_per_worker=1, processes=False,
                            dashboard_address=":0") as client:
        with distributed.get_task_stream(client) as stream:
            write_product(ds, tmp_path / "p.zarr", progress=True)
    assert stream.data  # the writes ran on the client's worker
    np.testing.assert_array_equal(xr.open_zarr(tmp_path / "p.zarr")["confidence"].values, data)
    assert "100%" in capsys.readouterr().out  # distributed's text bar, finished
