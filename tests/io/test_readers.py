"""Granule readers: validated once, picklable, window reads through cached handles."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from firesmoke.errors import CorruptFileError, GridMismatchError
from firesmoke.grid import Region
from firesmoke.io._core.handles import OPEN_FILES, close_cached_files
from firesmoke.io.viirs import open_l1b_swath, open_vmaes_granule, vmaes_metadata
from firesmoke.io.viirs import readers as rd
from firesmoke.io.viirs.discovery import find_granules
from firesmoke.synthetic import generate_scenario

REGION = Region.from_shape("RD", -7.0, 41.0, 0.01, 40, 48)


@pytest.fixture(scope="module")
def scn(tmp_path_factory):
    out = tmp_path_factory.mktemp("readers")
    return generate_scenario(REGION, "2020-07-01", "2020-07-02", out, seed=4,
                             products=("viirs", "swath"))


def test_vmaes_reader_equals_open_vmaes_granule(scn, monkeypatch):
    calls = []
    real = vmaes_metadata.read_vmaes_metadata
    monkeypatch.setattr(vmaes_metadata, "read_vmaes_metadata",
                        lambda p: calls.append(p) or real(p))
    g = find_granules(scn.viirs_dir).granules[0]
    reader = rd.open_reader(g, REGION)
    assert len(calls) == len(rd.CUBE_BANDS)  # each layer file checked once
    assert reader.shape == REGION.shape and reader.kind == "vmaes"
    ds = open_vmaes_granule(g, layers=list(rd.CUBE_BANDS))
    again = pickle.loads(pickle.dumps(reader))
    np.testing.assert_array_equal(
        again.read((5, 7, 20, 30)),
        np.stack([ds[b].values[5:25, 7:37] for b in rd.CUBE_BANDS]))
    # repeated reads reuse the open handles of this process
    n_open = len(OPEN_FILES)
    again.read((0, 0, 3, 3), ("M05",))
    assert len(OPEN_FILES) == n_open
    close_cached_files()
    assert not OPEN_FILES.keys()


def test_vmaes_reader_places_its_grid_refuses_a_grid_away_and_a_rewritten_file(scn, tmp_path):
    import shutil

    g = find_granules(scn.viirs_dir).granules[0]
    part = rd.open_reader(g, Region.from_shape("OTHER", -7.0, 41.0, 0.01, 40, 40))
    assert (part.placement.kind, part.placement.row_off, part.placement.col_off) == ("aligned", 0, 0)
    np.testing.assert_array_equal(part.read_region((0, 0, 40, 40), ("M05",)),
                                  part.read((0, 0, 40, 40), ("M05",)))
    with pytest.raises(GridMismatchError, match="does not cover any of region AWAY"):
        rd.open_reader(g, Region.from_shape("AWAY", 20.0, 41.0, 0.01, 40, 40))
    folder = tmp_path / "copy"
    shutil.copytree(scn.viirs_dir, folder)
    g2 = next(x for x in find_granules(folder).granules if x.granule_id == g.granule_id)
    reader = rd.open_reader(g2, REGION)
    reader.read((0, 0, 4, 4))
    victim = g2.paths["Reflectance_M5"]
    victim.write_bytes(victim.read_bytes()[:3000])  # truncated after the reader was made
    with pytest.raises(CorruptFileError) as err:
        reader.read((0, 0, 4, 4), ("M05",))
    assert victim.name in str(err.value)
    close_cached_files()


def test_swath_reader_equals_open_l1b_swath(scn):
    g = find_granules(scn.viirs_dir.parent / "viirs_l1b").granules[0]
    reader = pickle.loads(pickle.dumps(rd.open_reader(g, REGION)))
    assert reader.kind == "l1b"
    ds = open_l1b_swath(g.paths["observation"], g.paths["geolocation"])
    sw = reader.read_swath(rd.CUBE_BANDS)
    assert sw is reader.read_swath(rd.CUBE_BANDS)  # decoded once per process
    np.testing.assert_array_equal(sw.lat, ds["latitude"].values)
    np.testing.assert_array_equal(sw.lon, ds["longitude"].values)
    for i, b in enumerate(rd.CUBE_BANDS):
        np.testing.assert_array_equal(sw.values[i], ds[b].values, err_msg=b)
    assert sw.rows_per_scan == ds.attrs["rows_per_scan"]
    assert not sw.values.flags.writeable
