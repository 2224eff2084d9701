"""Gridded VIIRS reader (LAADS NPP_VMAES_L1, HDF4): values, grid, metadata, errors, laziness."""

from __future__ import annotations

import os
import pickle
import shutil
import threading
import time
from datetime import datetime
from pathlib import Path

import dask
import numpy as np
import pytest
from _viirs_helpers import independent_decode, write_vmaes_layer
from affine import Affine

from firesmoke.errors import GridMismatchError, InputError, MissingLayerError, WrongProductError
from firesmoke.grid import Region
from firesmoke.io._core.hdf4 import HDF4_LOCK
from firesmoke.io.viirs import open_vmaes_granule
from firesmoke.io.viirs import readers as viirs_readers
from firesmoke.io.viirs.arrays import Decoder, WindowArray
from firesmoke.io.viirs.bands import VMAES_LAYER_TO_VARIABLE
from firesmoke.io.viirs.discovery import find_granules

GID = "A2017300.1406"


def _layer_files(folder: Path) -> dict[str, Path]:
    return {p.name.split(".")[-2]: p for p in folder.glob("NPP_VMAES_L1.*.hdf")}


@pytest.fixture(scope="module")
def real_ds(real_viirs_dir):
    return open_vmaes_granule(real_viirs_dir)


def test_values_match_independent_decoding(real_viirs_dir, real_ds):
    files = _layer_files(real_viirs_dir)
    assert set(files) == set(VMAES_LAYER_TO_VARIABLE)
    loaded = real_ds.compute()
    for layer, var in VMAES_LAYER_TO_VARIABLE.items():
        ref = independent_decode(files[layer], layer)
        got = loaded[var].values
        assert got.dtype == np.float32 and loaded[var].dims == ("y", "x")
        np.testing.assert_array_equal(got, ref)  # NaN at the same places, equal values
    # the sample: 248 valid band pixels, 807 valid angle pixels (fill is everything else)
    assert int(np.isfinite(loaded.M05).sum()) == 248
    assert int(np.isfinite(loaded.solar_zenith).sum()) == 807
    m5 = loaded.M05.values[np.isfinite(loaded.M05.values)]
    assert 0.05 < m5.min() < m5.max() < 0.2  # raw 3578..4467 * 2.44e-5
    assert 58 < float(loaded.solar_zenith.min()) < float(loaded.solar_zenith.max()) < 60
    assert 65 < float(loaded.sensor_zenith.min()) < float(loaded.sensor_zenith.max()) < 70.1


def test_grid_coordinates_and_crs(real_ds):
    assert real_ds.sizes == {"y": 800, "x": 1500}
    assert real_ds.rio.transform().almost_equals(Affine(0.01, 0, -10, 0, -0.01, 44), 1e-12)
    assert real_ds.rio.crs.to_epsg() == 4326
    assert "spatial_ref" in real_ds.coords
    np.testing.assert_allclose(real_ds.x.values[[0, -1]], [-9.995, 4.995], atol=1e-9)
    np.testing.assert_allclose(real_ds.y.values[[0, -1]], [43.995, 36.005], atol=1e-9)
    pi = Region.named("PI")
    np.testing.assert_allclose(real_ds.x.values, pi.x, atol=1e-9)
    np.testing.assert_allclose(real_ds.y.values, pi.y, atol=1e-9)
    assert real_ds.rio.bounds() == pytest.approx((-10, 36, 5, 44))


def test_metadata_and_cf_attributes(real_ds):
    assert real_ds["time"].values == np.datetime64("2017-10-27T14:06:00")
    a = real_ds.attrs
    assert (a["platform"], a["DayNightFlag"], a["orbit_number"], a["granule_id"]) == (
        "S-NPP",
        "D",
        31088,
        GID,
    )
    assert (
        a["product"] == "NPP_VMAES_L1" and a["instrument"] == "VIIRS" and a["collection"] == "001"
    )
    assert a["hdfeos_pixel_registration"] == "HDFE_CORNER"
    assert real_ds.M05.attrs["wavelength"] == pytest.approx(0.672)
    assert real_ds.M15.attrs["wavelength"] == pytest.approx(10.763)
    assert real_ds.M05.attrs["units"] == "1"
    assert real_ds.M12.attrs["units"] == "W m-2 sr-1 um-1"
    assert real_ds.M12.attrs["standard_name"] == "toa_outgoing_radiance_per_unit_wavelength"
    assert real_ds.solar_zenith.attrs["standard_name"] == "solar_zenith_angle"
    assert real_ds.sensor_zenith.attrs["units"] == "degree"
    assert "standard_name" not in real_ds.M05.attrs  # stored reflectance factor has no CF name
    assert real_ds.M12.attrs["scale_factor_applied"] == pytest.approx(6.732538e-05)


def test_call_forms_and_layer_subset(real_viirs_dir, tmp_path):
    files = _layer_files(real_viirs_dir)
    ref = open_vmaes_granule(real_viirs_dir, layers=["M07"]).M07.values
    for form in (
        list(files.values()),
        (real_viirs_dir, GID),
        real_viirs_dir,
        find_granules(real_viirs_dir)[0],
    ):
        ds = open_vmaes_granule(form, layers=["M07", "SolarZenithAngle"])
        assert set(ds.data_vars) == {"M07", "solar_zenith"}
        np.testing.assert_array_equal(ds.M07.values, ref)
    # a folder with only the M5 file serves a layers=["M05"] request
    only = tmp_path / "only_m5"
    only.mkdir()
    os.symlink(files["Reflectance_M5"], only / files["Reflectance_M5"].name)
    ds = open_vmaes_granule(only, layers=["M05"])
    assert list(ds.data_vars) == ["M05"]
    with pytest.raises(
        MissingLayerError,
        match=r"no NPP_VMAES_L1 files of granule A2017300\.1407.*has A2017300\.1406",
    ):
        open_vmaes_granule((real_viirs_dir, "A2017300.1407"))
    with pytest.raises(InputError, match=r"granule A2017300\.1406, not A2017300\.1407"):
        open_vmaes_granule(list(files.values()), granule_id="A2017300.1407")


def test_chunked_and_strided_reads_match(real_ds, real_viirs_dir):
    ds = open_vmaes_granule(real_viirs_dir, chunks={"y": 128, "x": 256})
    assert ds.M12.data.chunks[0][0] == 128 and ds.M12.data.chunks[1][0] == 256
    with dask.config.set(scheduler="threads", num_workers=4):
        chunked = ds.compute()
    full = real_ds.compute()
    for var in full.data_vars:
        np.testing.assert_array_equal(chunked[var].values, full[var].values)
    src = viirs_readers.LayerSource(
        str(next(real_viirs_dir.glob("*Radiance_M15.hdf"))),
        "Radiance_M15",
        Decoder(scale=2.0, offset=1.0, fill_test=65527, integer=True),
    )
    reader = viirs_readers.VmaesReader(GID, datetime(2017, 10, 27, 14, 6), (800, 1500), {"M15": src})
    backend = WindowArray(reader, "M15", reader.shape, np.float32)
    raw = backend[:, :]
    np.testing.assert_array_equal(backend[700:790:3, 5::7], raw[700:790:3, 5::7])
    np.testing.assert_array_equal(backend[5, 10:20], raw[5, 10:20])


def test_normalize_reflectance(real_viirs_dir, real_ds):
    ds = open_vmaes_granule(real_viirs_dir, layers=["M05"], normalize_reflectance=True)
    assert "solar_zenith" not in ds  # read for the division, not returned
    expect = real_ds.M05.values / np.cos(np.deg2rad(real_ds.solar_zenith.values))
    np.testing.assert_allclose(ds.M05.values, expect, rtol=1e-6)
    assert ds.M05.attrs["standard_name"] == "toa_bidirectional_reflectance"


def test_region_check(real_viirs_dir):
    ds = open_vmaes_granule(real_viirs_dir, layers=["M05"], region=Region.named("PI"))
    assert ds.sizes == {"y": 800, "x": 1500}
    open_vmaes_granule(real_viirs_dir, layers=["M05"], region="PI")
    with pytest.raises(GridMismatchError, match="region PT"):
        open_vmaes_granule(real_viirs_dir, layers=["M05"], region="PT")
    shifted = Region("PIs", (-10.0, 36.01, 5.0, 44.01), 0.01)
    with pytest.raises(GridMismatchError):
        open_vmaes_granule(real_viirs_dir, layers=["M05"], region=shifted)


def test_missing_layer_names_granule_and_layer(real_viirs_dir, tmp_path):
    for p in real_viirs_dir.glob("*.hdf"):
        if "SolarZenithAngle" not in p.name:
            os.symlink(p, tmp_path / p.name)
    with pytest.raises(MissingLayerError) as info:
        open_vmaes_granule((tmp_path, GID))
    assert info.value.field == "SolarZenithAngle"
    assert GID in str(info.value) and "SolarZenithAngle" in str(info.value)
    with pytest.raises(MissingLayerError, match="SolarZenithAngle"):
        open_vmaes_granule(list(tmp_path.iterdir()))
    # what is present still opens
    assert "solar_zenith" not in open_vmaes_granule(tmp_path, layers=["M05", "M12"])


def test_layers_on_different_grids(real_viirs_dir, tmp_path):
    files = _layer_files(real_viirs_dir)
    data = np.full((800, 1500), 65535, dtype=np.uint16)
    other = write_vmaes_layer(
        tmp_path / files["Reflectance_M7"].name,
        "Reflectance_M7",
        data,
        bounds=(-11.0, 36.0, 4.0, 44.0),
    )
    with pytest.raises(GridMismatchError, match="grids differ"):
        open_vmaes_granule([files["Reflectance_M5"], other], layers=["M05", "M07"])
    small = write_vmaes_layer(tmp_path / "small.hdf", "Reflectance_M7", data[:80, :150])
    with pytest.raises(GridMismatchError):
        open_vmaes_granule([files["Reflectance_M5"], small], layers=["M05", "M07"])


def test_wrong_product(real_data, real_viirs_dir, tmp_path):
    files = _layer_files(real_viirs_dir)
    mcd = next((real_data / "mcd64a1").glob("*.hdf"), None)
    if mcd is not None:
        with pytest.raises(WrongProductError, match="ShortName"):
            open_vmaes_granule([files["Reflectance_M5"], mcd], layers=["M05"])
    fake = write_vmaes_layer(
        tmp_path / "NPP_VMAES_L1.A2017300.1406.001.2017300192651.Reflectance_M7.hdf",
        "Reflectance_M7",
        np.zeros((8, 15), dtype=np.uint16),
        short_name="VNP09_NRT",
    )
    with pytest.raises(WrongProductError) as info:
        open_vmaes_granule([fake], layers=["M07"])
    assert info.value.path == str(fake)
    sinus = write_vmaes_layer(
        tmp_path / "s.hdf", "Reflectance_M7", np.zeros((8, 15), np.uint16), projection="GCTP_SNSOID"
    )
    with pytest.raises(WrongProductError, match="GCTP_GEO"):
        open_vmaes_granule([sinus], layers=["M07"])
    text = tmp_path / "NPP_VMAES_L1.A2017300.1406.001.2017300192651.Reflectance_M10.hdf"
    text.write_text("not hdf")
    with pytest.raises(InputError):
        open_vmaes_granule([text], layers=["M10"])


def test_synthetic_granule_decoding_and_fill(tmp_path):
    """Fill threshold, scale and offset taken from each file's own attributes."""
    raw = np.array([[0, 1000, 65526], [65527, 65533, 65535]], dtype=np.uint16)
    name = "NPP_VMAES_L1.A2020001.0130.001.2020001120000.{}.hdf"
    m5 = write_vmaes_layer(
        tmp_path / name.format("Reflectance_M5"), "Reflectance_M5", raw, scale=1e-4, offset=-0.02
    )
    ang = np.array([[-999.9, -999.0, -998.5], [0.0, 45.5, 89.9]], dtype=np.float32)
    sza = write_vmaes_layer(tmp_path / name.format("SolarZenithAngle"), "SolarZenithAngle", ang)
    ds = open_vmaes_granule([m5, sza], layers=["M05", "solar_zenith"]).compute()
    expect = np.array([[-0.02, 0.08, 65526e-4 - 0.02], [np.nan, np.nan, np.nan]], dtype=np.float32)
    np.testing.assert_allclose(ds.M05.values, expect, rtol=1e-6)
    np.testing.assert_array_equal(
        np.isnan(ds.solar_zenith.values), [[True, True, False], [False, False, False]]
    )
    assert ds["time"].values == np.datetime64("2020-01-01T01:30")


def test_opening_300_granules_reads_no_pixels(real_viirs_dir, tmp_path, monkeypatch):
    """300 granules' worth of layer files (symlinks under 300 names): metadata only."""
    files = _layer_files(real_viirs_dir)
    folders = []
    for i in range(300):
        d = tmp_path / f"g{i:03d}"
        d.mkdir()
        day, minute = 1 + i // 4, (i % 4) * 6
        for layer, src in files.items():
            os.symlink(
                src,
                d
                / f"NPP_VMAES_L1.A2018{day:03d}.13{minute:02d}.001.2018{day:03d}190000.{layer}.hdf",
            )
        folders.append(d)
    calls = []
    real_read = viirs_readers._read_sds_window

    def counting(*args, **kwargs):
        calls.append(args)
        return real_read(*args, **kwargs)

    monkeypatch.setattr(viirs_readers, "_read_sds_window", counting)
    t0 = time.perf_counter()
    datasets = [open_vmaes_granule(d) for d in folders]
    elapsed = time.perf_counter() - t0
    assert calls == []  # no pixel was read
    assert len({str(ds["time"].values) for ds in datasets}) == 300
    assert all(isinstance(ds[v].data, dask.array.Array) for ds in datasets for v in ds.data_vars)
    print(f"opened 300 granules (2100 files) in {elapsed:.1f} s")
    assert elapsed < 120
    # pixels are read by the tasks, one read per chunk
    m15 = datasets[123].M15.values
    assert len(calls) == 1
    np.testing.assert_array_equal(np.isfinite(m15).sum(), 248)
    # the graph pickles (for distributed workers)
    assert pickle.loads(pickle.dumps(datasets[5].M05.data)).compute().shape == (800, 1500)


def test_pixel_reads_hold_the_hdf4_lock(real_viirs_dir):
    ds = open_vmaes_granule(real_viirs_dir, layers=["M05"])
    started = threading.Event()

    def hold():
        with HDF4_LOCK:
            started.set()
            time.sleep(0.4)

    t = threading.Thread(target=hold)
    t.start()
    started.wait()
    t0 = time.perf_counter()
    ds.M05.values  # noqa: B018  (must wait for the lock)
    waited = time.perf_counter() - t0
    t.join()
    assert waited >= 0.3


def test_copy_elsewhere_opens_identically(real_viirs_dir, tmp_path, real_ds):
    for p in real_viirs_dir.glob("*.hdf"):
        shutil.copy(p, tmp_path / p.name)
    ds = open_vmaes_granule(tmp_path, layers=["M12"])
    np.testing.assert_array_equal(ds.M12.values, real_ds.M12.values)
    assert str(tmp_path) in ds.M12.attrs["source_file"]


@pytest.mark.parametrize(("scale", "offset"), [(0.0, 0.0), (0.0, -0.02), (float("nan"), 0.0),
                                               (float("inf"), 0.0), (1e-4, float("nan"))])
def test_implausible_scale_or_offset_is_refused(tmp_path, scale, offset):
    """Synthetic layers (run without ../shared): Scale 0 would turn every pixel into the
    offset, a plausible-looking constant; it is refused like a non-finite Scale/Offset."""
    from firesmoke.errors import CorruptFileError
    from firesmoke.io.viirs.readers import VmaesReader

    raw = np.array([[0, 1000, 2000], [3000, 4000, 65535]], dtype=np.uint16)
    p = write_vmaes_layer(tmp_path / "NPP_VMAES_L1.A2020001.0130.001.2020001120000.Reflectance_M5.hdf",
                          "Reflectance_M5", raw, scale=scale, offset=offset)
    for call in (lambda: open_vmaes_granule([p], layers=["M05"]).compute(),
                 lambda: VmaesReader.open([p], ("M05",))):
        with pytest.raises(CorruptFileError, match="implausible Scale/Offset") as info:
            call()
        assert info.value.path == str(p) and info.value.field == "Reflectance_M5"
