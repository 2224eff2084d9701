"""Stores on object storage: a real S3-compatible server (moto in server mode) on
127.0.0.1, reached through s3fs; and fsspec's in-memory filesystem."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

from _store_helpers import run_killed_writer, small_cube  # noqa: E402

from firesmoke.cube.build import CUBE_VARIABLES, open_cube, write_cube  # noqa: E402
from firesmoke.store import (  # noqa: E402
    IncompleteStoreError,
    Ledger,
    StoreLock,
    StoreLockedError,
    write_product,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """storage_options of a bucket on a moto S3 server started for these tests."""
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    opts = {"key": "testing", "secret": "testing", "use_listings_cache": False,
            "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}",
                              "region_name": "us-east-1"}}
    import boto3

    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing",
                 ).create_bucket(Bucket="firesmoke-test")
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # campaigns (and their workers) find the server from the environment
    yield opts
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


def s3_cube(n_days: int) -> xr.Dataset:
    """small_cube with one spatial chunk: a ninth of the objects (each a request to moto)."""
    return small_cube(n_days, space=-1)


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    for v in CUBE_VARIABLES:
        np.testing.assert_array_equal(a[v].values, b[v].values)


def test_cube_round_trip_on_s3_with_ledger_inside(s3, tmp_path):
    url = "s3://firesmoke-test/cubes/c.zarr"
    out = write_cube(s3_cube(10), url, storage_options=s3)
    assert out == url
    cube = open_cube(url, storage_options=s3)
    _same(cube, s3_cube(10))
    assert cube.rio.crs is not None
    assert len(Ledger(url, s3).finished()) == 3  # days 0-3, 4-7, 8-9, inside the store
    import s3fs

    keys = s3fs.S3FileSystem(**s3).find("firesmoke-test/cubes")
    assert any("/c.zarr/.firesmoke/ledger/time-20210101-20210104" in k for k in keys)
    assert not any("c.zarr.ledger" in k for k in keys)
    assert not Path("s3:").exists()
    # append 4 more days (a second run continues the store)
    write_cube(s3_cube(14), url, storage_options=s3)
    _same(open_cube(url, storage_options=s3), s3_cube(14))


def test_killed_writer_on_s3_resumes_to_the_same_store(s3, tmp_path):
    url = "s3://firesmoke-test/killed.zarr"
    assert run_killed_writer(url, kill_after=2, storage_options=s3, space=-1) == -9
    with pytest.raises(IncompleteStoreError):
        open_cube(url, storage_options=s3)
    write_cube(s3_cube(10), url, storage_options=s3)  # stale lock (dead pid) taken over
    _same(open_cube(url, storage_options=s3), s3_cube(10))


def test_lock_on_s3(s3):
    url = "s3://firesmoke-test/locked.zarr"
    with StoreLock(url, s3, purpose="campaign"):
        with pytest.raises(StoreLockedError, match="campaign"):
            write_cube(s3_cube(4), url, storage_options=s3)
    write_cube(s3_cube(4), url, storage_options=s3)


def test_product_on_s3(s3):
    url = "s3://firesmoke-test/product.zarr"
    ds = s3_cube(4)[["red"]].isel(time=0).compute()
    assert write_product(ds, url, storage_options=s3) == url
    back = xr.open_zarr(url, storage_options=s3)
    np.testing.assert_array_equal(back["red"].values, ds["red"].values)


def test_memory_urls_are_not_local_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_cube(small_cube(6), "memory://cubes/m.zarr")
    _same(open_cube("memory://cubes/m.zarr"), small_cube(6))
    assert not (tmp_path / "memory:").exists()
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ campaigns on S3
CAMPAIGN_TOML = """
name = "s3c"
output = "{output}"
block_size = 128
[[regions]]
name = "SYN"
bbox = {bbox}
pixel_size = 0.01
cube = "{cube}"
[[periods]]
date = 2020-09-01
[products.burned]
mode = "nrt"
[cluster]
n_workers = 1
threads_per_worker = 1
processes = false
torch_threads = 1
"""


def _campaign_spec(tmp_path, cube, output) -> Path:
    from firesmoke.grid import Region

    region = Region.from_dataset(open_cube(cube))
    spec = tmp_path / f"{output.rsplit('/', 1)[-1]}.toml"
    spec.write_text(CAMPAIGN_TOML.format(output=output, bbox=list(region.bbox), cube=cube))
    return spec


def test_campaign_on_s3_resumed_after_a_kill(s3, tmp_path):
    """The product store, its ledger and the report live in the bucket; a campaign killed
    mid-run (SIGKILL) and rerun gives the same store as an uninterrupted run."""

    from _campaign_helpers import kill_campaign_after_first_unit, make_cube, standin_model

    from firesmoke.campaign.run import plan_campaign, run_campaign
    from firesmoke.campaign.spec import load_spec

    # 128 x 384 px: three units of 128 px, so a unit is left for the rerun after the kill
    cube = str(make_cube(tmp_path / "cube.zarr", shape=(128, 384), start="2020-07-01",
                         end="2020-09-05"))
    ref_spec = _campaign_spec(tmp_path, cube, "s3://firesmoke-test/ref")
    ref = run_campaign(ref_spec, model=standin_model(), progress=False)
    assert ref.ok and len(ref.done) + len(ref.empty) == 3
    (ref_store,) = ref.stores
    assert ref_store == "s3://firesmoke-test/ref/burned-nrt_SYN.zarr"
    assert ref.path == "s3://firesmoke-test/ref/s3c_report.json"

    spec = _campaign_spec(tmp_path, cube, "s3://firesmoke-test/killed")
    store = plan_campaign(load_spec(spec)).stores[("burned-nrt", "SYN")]
    killed = kill_campaign_after_first_unit(spec, store)
    assert 1 <= len(killed) < 3
    rep = run_campaign(spec, model=standin_model(), progress=False)  # stale lock taken over
    assert rep.ok and len(rep.skipped) == len(killed)
    a, b = xr.open_zarr(store), xr.open_zarr(ref_store)
    for v in ("confidence", "burn_date"):
        np.testing.assert_array_equal(a[v].values, b[v].values)
