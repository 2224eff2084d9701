"""Truncated and corrupted VIIRS files raise CorruptFileError naming the file, never a bare error.

A damaged file may be detected when it is opened (metadata) or only when its pixels are
read by the dask tasks; both paths must give :class:`CorruptFileError`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from firesmoke.errors import CorruptFileError, WrongProductError
from firesmoke.io.viirs import open_l1b_swath, open_vmaes_granule
from firesmoke.io.viirs.bands import VMAES_LAYER_TO_VARIABLE
from firesmoke.synthetic.swath import swath_geometry, write_l1b_pair


def _copy_prefix(src: Path, dst: Path, n: int) -> Path:
    dst.write_bytes(src.read_bytes()[:n])
    return dst


def _open_and_read(files: list[Path], layer: str) -> np.ndarray:
    ds = open_vmaes_granule(files, layers=[layer])
    return ds[VMAES_LAYER_TO_VARIABLE[layer]].values


@pytest.mark.parametrize("layer", sorted(VMAES_LAYER_TO_VARIABLE))
def test_truncated_layer_files(real_viirs_dir, tmp_path, layer):
    src = next(real_viirs_dir.glob(f"NPP_VMAES_L1.*.{layer}.hdf"))
    good = _open_and_read([src], layer)
    size = src.stat().st_size
    for n in (0, 3, 16, 1000, 4096, size // 2, size - 2000, size - 100):
        bad = _copy_prefix(src, tmp_path / src.name, n)
        with pytest.raises(CorruptFileError) as info:
            _open_and_read([bad], layer)
        assert info.value.path == str(bad), n
        assert src.name in str(info.value)
    # cutting the very last byte loses only padding: the data must come back unchanged
    bad = _copy_prefix(src, tmp_path / src.name, size - 1)
    try:
        np.testing.assert_array_equal(_open_and_read([bad], layer), good)
    except CorruptFileError as exc:
        assert exc.path == str(bad)


def test_truncated_after_opening_is_caught_on_read(real_viirs_dir, tmp_path):
    """The granule opens fine, then a file is truncated before the pixels are read."""
    files = []
    for p in real_viirs_dir.glob("*.hdf"):
        dst = tmp_path / p.name
        dst.write_bytes(p.read_bytes())
        files.append(dst)
    ds = open_vmaes_granule(files)
    victim = next(f for f in files if f.name.endswith("Radiance_M12.hdf"))
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    assert np.isfinite(ds.M05.values).sum() == 248  # other layers still read
    with pytest.raises(CorruptFileError) as info:
        ds.M12.values  # noqa: B018
    assert info.value.path == str(victim)


def test_corruption_found_when_opening_or_reading_pixels(real_viirs_dir, tmp_path):
    """Overwrite 500-byte blocks of the M5 file: every outcome is clean.

    Since the deflate streams are verified when the file is opened (issue 14), damaged
    pixel data are refused at open time; before, some were found only when read.
    """
    src = next(real_viirs_dir.glob("*.Reflectance_M5.hdf"))
    data = src.read_bytes()
    good = _open_and_read([src], "Reflectance_M5")
    outcomes = {"open": 0, "read": 0, "same": 0}
    for off in range(0, len(data), 500):
        b = bytearray(data)
        b[off : off + 500] = b"\xab" * len(b[off : off + 500])
        bad = tmp_path / src.name
        bad.write_bytes(bytes(b))
        try:
            ds = open_vmaes_granule([bad], layers=["M05"])
        except (CorruptFileError, WrongProductError) as exc:  # garbled ShortName: "wrong product"
            assert exc.path == str(bad)
            outcomes["open"] += 1
            continue
        try:
            values = ds.M05.values
        except CorruptFileError as exc:
            assert exc.path == str(bad) and exc.field == "Reflectance_M5"
            assert exc.__cause__ is not None  # the library error is chained, not shown bare
            outcomes["read"] += 1
            continue
        if np.array_equal(values, good, equal_nan=True):
            outcomes["same"] += 1
        else:  # pragma: no cover - would be silent garbage
            pytest.fail(f"corruption at byte {off} changed the values silently")
    assert outcomes["open"] > 0 and outcomes["open"] + outcomes["read"] + outcomes["same"] == len(range(0, len(data), 500))


@pytest.fixture(scope="module")
def swath_pair(tmp_path_factory):
    out = tmp_path_factory.mktemp("swath")
    lat, lon, vza = swath_geometry(40.0, 0.0, -10.0, n_scans=2, pixels=800)
    rng = np.random.default_rng(0)
    bands = {b: rng.uniform(0.0, 0.5, lat.shape) for b in ("M05", "M07", "M10")}
    bands |= {"M12": rng.uniform(0.1, 2.0, lat.shape), "M15": rng.uniform(3.0, 10.0, lat.shape)}
    return write_l1b_pair(
        out, datetime(2021, 6, 1, 12, 0), lat, lon, bands, rng.uniform(20, 50, lat.shape), vza
    )


@pytest.mark.parametrize("which", [0, 1])
def test_truncated_swath_files(swath_pair, tmp_path, which):
    src = swath_pair[which]
    size = src.stat().st_size
    for n in (0, 8, 600, 5000, size // 2, size - 300):
        bad = _copy_prefix(src, tmp_path / src.name, n)
        pair = [swath_pair[0], swath_pair[1]]
        pair[which] = bad
        with pytest.raises(CorruptFileError) as info:
            open_l1b_swath(*pair).compute()
        assert info.value.path == str(bad), n


def test_corrupted_swath_data_block(swath_pair, tmp_path):
    src = swath_pair[0]
    data = bytearray(src.read_bytes())
    errors = 0
    for off in range(len(data) // 4, len(data), len(data) // 6):
        b = bytearray(data)
        b[off : off + 2000] = b"\x5a" * len(b[off : off + 2000])
        bad = tmp_path / src.name
        bad.write_bytes(bytes(b))
        try:
            open_l1b_swath(bad, swath_pair[1]).compute()
        except CorruptFileError as exc:
            assert exc.path == str(bad)
            errors += 1
    assert errors > 0
