"""One cache of open files (pyhdf and netCDF4 side by side) under one lock; the VIIRS
Datasets and readers read through it; decoded swaths follow the versions of their files.

Synthetic files only (runs without ../shared).
"""

from __future__ import annotations

import os
import pickle
from datetime import datetime
from types import SimpleNamespace

import netCDF4
import numpy as np
import pytest
from _viirs_helpers import write_vmaes_layer

from firesmoke.io._core import handles
from firesmoke.io._core.handles import (
    FILE_LOCK,
    OPEN_FILES,
    FileKind,
    HandleCache,
    close_cached_files,
)
from firesmoke.io._core.hdf4 import HDF4_LOCK
from firesmoke.io.viirs import open_l1b_swath, open_vmaes_granule
from firesmoke.io.viirs.readers import CUBE_BANDS, SwathReader
from firesmoke.synthetic.swath import swath_geometry, write_l1b_pair

NAME = "NPP_VMAES_L1.A2020001.0130.001.2020001120000.{}.hdf"


def _nc_file(path, value=1.0):
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("n", 3)
        nc.createVariable("v", "f4", ("n",))[:] = value
    return path


def _gridded(tmp_path, shape=(40, 60)):
    rng = np.random.default_rng(1)
    return [write_vmaes_layer(tmp_path / NAME.format(layer), layer,
                              rng.integers(0, 60000, shape, dtype=np.uint16))
            for layer in ("Reflectance_M5", "Radiance_M12")]


def _counting(monkeypatch, kind):
    """Count the opener calls of ``kind`` in OPEN_FILES (by path)."""
    calls = []
    spec = OPEN_FILES.kinds[kind]

    def opener(paths, stats, *args):
        calls.append(paths[0])
        return spec.opener(paths, stats, *args)

    monkeypatch.setitem(OPEN_FILES.kinds, kind, FileKind(opener, spec.closer, spec.alive))
    return calls


def _swath_granule(folder, seed):
    lat, lon, vza = swath_geometry(38.0, -8.0, -12.0, n_scans=2, pixels=64)
    rng = np.random.default_rng(seed)
    bands = {b: rng.uniform(0.0, 0.5, lat.shape) for b in ("M05", "M07", "M10")}
    bands |= {"M12": rng.uniform(0.1, 2.0, lat.shape), "M15": rng.uniform(3.0, 10.0, lat.shape)}
    start = datetime(2021, 7, 1, 13, 30)
    p02, p03 = write_l1b_pair(folder, start, lat, lon, bands, rng.uniform(20, 60, lat.shape), vza)
    return SimpleNamespace(paths={"observation": p02, "geolocation": p03},
                           granule_id="A2021182.1330", start=start)


@pytest.fixture(autouse=True)
def _fresh():
    close_cached_files()
    yield
    close_cached_files()


def test_one_lock():
    assert FILE_LOCK is HDF4_LOCK is handles.FILE_LOCK


def test_one_cache_holds_both_formats_and_respects_maxsize(tmp_path):
    h4 = _gridded(tmp_path)[0]
    nc = _nc_file(tmp_path / "a.nc")
    with FILE_LOCK:
        sd = OPEN_FILES.get("hdf4", h4)
        ds = OPEN_FILES.get("netcdf", nc)
        assert OPEN_FILES.get("hdf4", h4) is sd and OPEN_FILES.get("netcdf", nc) is ds
    assert sorted(OPEN_FILES.keys()) == [("hdf4", (str(h4),)), ("netcdf", (str(nc),))]
    assert "Reflectance_M5" in sd.datasets() and ds.isopen()

    # the same kinds in a cache of two: the least recently used is closed first
    small = HandleCache(OPEN_FILES.kinds, maxsize=2)
    others = [_nc_file(tmp_path / f"{i}.nc", i) for i in range(2)]
    with FILE_LOCK:
        first = small.get("netcdf", others[0])
        small.get("hdf4", h4)
        small.get("netcdf", others[0])  # used again: now the hdf4 handle is the oldest
        small.get("netcdf", others[1])
    assert len(small) == 2 and [k for k, _ in small.keys()] == ["netcdf", "netcdf"]
    assert first.isopen()
    with FILE_LOCK:
        small.get("hdf4", h4)
    assert not first.isopen() and len(small) == 2  # evicted and closed
    small.clear()
    assert len(small) == 0

    close_cached_files(nc)
    assert not ds.isopen() and OPEN_FILES.keys() == [("hdf4", (str(h4),))]


def test_a_rewritten_file_is_opened_afresh(tmp_path):
    p = _nc_file(tmp_path / "a.nc", 1.0)
    with FILE_LOCK:
        old = OPEN_FILES.get("netcdf", p)
    close_cached_files(p)  # HDF5 refuses to rewrite a file open for reading
    _nc_file(p, 2.0)
    os.utime(p, ns=(1, 1))  # another version even on a coarse clock
    with FILE_LOCK:
        new = OPEN_FILES.get("netcdf", p)
        assert new is not old and float(new["v"][0]) == 2.0


def test_a_forked_process_never_reuses_nor_closes_its_parents_handles(tmp_path):
    opened, closed = [], []
    cache = HandleCache({"f": FileKind(lambda paths, stats: opened.append(paths) or object(),
                                       closed.append)}, maxsize=1)
    p, q = tmp_path / "a", tmp_path / "b"
    p.write_text("a")
    q.write_text("b")
    parent = cache.get("f", p)
    assert cache.get("f", p) is parent and len(opened) == 1
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        try:
            child = cache.get("f", p)
            other = cache.get("f", q)  # evicts the child's own value
            ok = child is not parent and other is not child and len(opened) == 3 and closed == [child]
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    try:
        got = os.read(r, 1)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    assert got == b"1"
    assert cache.get("f", p) is parent and len(opened) == 1 and closed == []


def test_the_gridded_dataset_reads_many_chunks_through_one_handle_per_file(tmp_path, monkeypatch):
    files = _gridded(tmp_path)
    calls = _counting(monkeypatch, "hdf4")
    ds = open_vmaes_granule(files, layers=["M05", "M12"], chunks={"y": 8, "x": 12})
    assert ds.M05.data.npartitions == 25 and calls == []  # building it opened nothing
    got = ds.compute(scheduler="threads")
    assert sorted(calls) == sorted(str(f) for f in files)  # 50 chunks, 2 opens
    whole = open_vmaes_granule(files, layers=["M05", "M12"]).compute(scheduler="synchronous")
    for v in ("M05", "M12"):
        np.testing.assert_array_equal(got[v].values, whole[v].values)
    assert len(calls) == 2  # still open


def test_the_swath_dataset_reads_many_chunks_through_one_handle_per_file(tmp_path, monkeypatch):
    g = _swath_granule(tmp_path, seed=2)
    p02, p03 = g.paths["observation"], g.paths["geolocation"]
    calls = _counting(monkeypatch, "netcdf")
    ds = open_l1b_swath(p02, p03, chunks={"line": 8, "pixel": 16})
    assert sorted(calls) == sorted([str(p02), str(p03)])  # the metadata
    ds.compute(scheduler="threads")
    assert len(calls) == 2  # every chunk read through the same two handles
    graph = pickle.loads(pickle.dumps(ds.M05.data))  # what a distributed worker gets
    np.testing.assert_array_equal(graph.compute(), ds.M05.values)


def test_a_rewritten_swath_granule_is_decoded_afresh(tmp_path):
    g = _swath_granule(tmp_path, seed=3)
    reader = SwathReader.open(g, CUBE_BANDS)
    before = reader.read_swath()
    assert reader.read_swath() is before  # decoded once
    again = _swath_granule(tmp_path, seed=4)  # the same names, other values
    assert again.paths == g.paths
    for p in g.paths.values():
        os.utime(p, ns=(os.stat(p).st_atime_ns, os.stat(p).st_mtime_ns + 1_000_000))
    after = reader.read_swath()
    assert after is not before
    ds = open_l1b_swath(g.paths["observation"], g.paths["geolocation"])
    for i, b in enumerate(CUBE_BANDS):
        np.testing.assert_array_equal(after.values[i], ds[b].values, err_msg=b)
        if b != "sensor_zenith":  # the geometry is the same, the rest was drawn again
            assert not np.array_equal(after.values[i], before.values[i], equal_nan=True), b
    np.testing.assert_array_equal(reader.read_window("M05", (1, 2, 3, 4)), ds.M05.values[1:4, 2:6])
