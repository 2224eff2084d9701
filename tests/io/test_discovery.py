"""Granule discovery: name matching, grouping, pairing and the skip report."""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path

import pytest

from firesmoke.errors import InputError, SkippedInput
from firesmoke.io.viirs.bands import DEFAULT_VMAES_LAYERS
from firesmoke.io.viirs.discovery import PRODUCTS, find_granules, match_file

ORDER = "psrpgscs_000501412525"


def vmaes_names(
    gid: str, layers=DEFAULT_VMAES_LAYERS, production: str = "2017300192651"
) -> list[str]:
    return [f"NPP_VMAES_L1.{gid}.001.{production}.{ORDER}.{layer}.hdf" for layer in layers]


def touch(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n in names:
        p = folder / n
        p.write_bytes(b"")
        out.append(p)
    return out


def test_product_table_matches_real_names():
    definition, fields = match_file(
        "NPP_VMAES_L1.A2017300.1406.001.2017300192651.psrpgscs_000501412525.Reflectance_M5.hdf"
    )
    assert definition.kind == "vmaes" and definition.role == "layer"
    assert (
        fields["layer"] == "Reflectance_M5"
        and fields["date"] == "2017300"
        and fields["time"] == "1406"
    )
    assert fields["order"] == ORDER and fields["production"] == "2017300192651"
    d2, f2 = match_file("VJ102MOD.A2022257.1748.002.2022258055009.nc")
    assert (d2.role, f2["sat"], f2["collection"]) == ("observation", "VJ1", "002")
    d3, f3 = match_file("VNP03MOD_NRT.A2024001.0012.002.nc")
    assert (d3.role, f3["nrt"]) == ("geolocation", "_NRT")
    _d4, f4 = match_file("VNP02MOD.A2020118.0000.001.2020118052345.uwssec.nc")
    assert f4["creator"] == "uwssec"
    assert match_file("VNP02IMG.A2020118.0000.001.2020118052345.nc") is None
    assert match_file("README.md") is None
    assert all(p.pattern.pattern.startswith("^") for p in PRODUCTS)


def test_messy_folder_reports_exactly_what_it_skipped(tmp_path, caplog):
    root = tmp_path / "data"
    # two complete gridded granules (one in a sub-folder), consecutive: one overpass
    touch(root, *vmaes_names("A2017300.1406"))
    touch(root / "more", *vmaes_names("A2017300.1412"))
    # a gridded granule of another day missing a layer
    incomplete = touch(root, *vmaes_names("A2017301.1350", DEFAULT_VMAES_LAYERS[:-1]))
    # a newer production of one layer of the first granule: the older is a duplicate
    newer = touch(
        root / "reprocessed", *vmaes_names("A2017300.1406", ["Reflectance_M7"], "2020028112524")
    )
    older_m7 = root / vmaes_names("A2017300.1406", ["Reflectance_M7"])[0]
    # swath pairs: S-NPP and NOAA-20, plus an NRT pair
    touch(
        root / "l1b",
        "VNP02MOD.A2017300.1230.002.2021085163209.nc",
        "VNP03MOD.A2017300.1230.002.2021085143003.nc",
    )
    touch(
        root / "l1b",
        "VJ102MOD.A2017300.1318.002.2021090000000.nc",
        "VJ103MOD.A2017300.1318.002.2021089000000.nc",
    )
    touch(root / "nrt", "VNP02MOD_NRT.A2017302.1200.002.nc", "VNP03MOD_NRT.A2017302.1200.002.nc")
    # orphans and mismatches
    lonely02 = touch(root / "l1b", "VNP02MOD.A2017300.1500.002.2021085163209.nc")[0]
    lonely03 = touch(root / "l1b", "VJ103MOD.A2017300.1506.002.2021085163209.nc")[0]
    coll02, coll03 = touch(
        root / "l1b",
        "VNP02MOD.A2017301.0100.002.2021085163209.nc",
        "VNP03MOD.A2017301.0100.001.2021085163209.nc",
    )
    # stray files, an impossible date, a hidden file
    strays = touch(
        root,
        "README.txt",
        "fires.csv",
        "NPP_VMAES_L1.garbage.hdf",
        "VNP02IMG.A2017300.1406.002.2021085163209.nc",
    )
    bad_date = touch(root, *vmaes_names("A2017400.1406", ["Reflectance_M5"]))[0]
    touch(root, ".DS_Store")

    with caplog.at_level(logging.WARNING, logger="firesmoke.io.viirs.discovery"):
        index = find_granules(root)
    assert any("skipped" in r.message for r in caplog.records)

    got = [(g.product, g.platform, g.granule_id) for g in index]
    assert got == [
        ("VNP02MOD", "S-NPP", "A2017300.1230"),
        ("VJ102MOD", "NOAA-20", "A2017300.1318"),
        ("NPP_VMAES_L1", "S-NPP", "A2017300.1406"),
        ("NPP_VMAES_L1", "S-NPP", "A2017300.1412"),
        ("VNP02MOD_NRT", "S-NPP", "A2017302.1200"),
    ]
    assert len(index) == 5
    first = index[2]
    assert set(first.paths) == set(DEFAULT_VMAES_LAYERS)
    assert first.paths["Reflectance_M7"] == newer[0]  # the newer production wins
    assert first.start == datetime(2017, 10, 27, 14, 6)
    assert index[0].paths["geolocation"].name.startswith("VNP03MOD.A2017300.1230")

    skipped = {Path(s.path): s.reason for s in index.skipped}
    assert all(isinstance(s, SkippedInput) for s in index.skipped)
    expected = {*incomplete, older_m7, lonely02, lonely03, coll02, coll03, *strays, bad_date}
    assert set(skipped) == expected  # exactly these, nothing else (hidden file ignored)
    for p in incomplete:
        assert (
            "missing layer(s) SatelliteZenithAngle" in skipped[p] and "A2017301.1350" in skipped[p]
        )
    assert "older production" in skipped[older_m7]
    assert "without its geolocation" in skipped[lonely02] and "VNP03MOD" in skipped[lonely02]
    assert "without its observation" in skipped[lonely03] and "VJ102MOD" in skipped[lonely03]
    assert "without" in skipped[coll02] and "without" in skipped[coll03]  # collections differ
    for p in strays:
        assert "matches no known VIIRS product" in skipped[p]
    assert "invalid date" in skipped[bad_date]

    by_day = index.by_day()
    assert list(by_day) == [date(2017, 10, 27), date(2017, 10, 29)]
    assert [g.granule_id for g in by_day[date(2017, 10, 27)]] == [
        "A2017300.1230",
        "A2017300.1318",
        "A2017300.1406",
        "A2017300.1412",
    ]
    overpasses = index.by_overpass()
    assert [[g.granule_id for g in grp] for grp in overpasses] == [
        ["A2017300.1230"],
        ["A2017300.1318"],
        ["A2017300.1406", "A2017300.1412"],
        ["A2017302.1200"],
    ]
    assert "skipped" in index.summary()


def test_time_window_and_kind(tmp_path):
    touch(
        tmp_path,
        *vmaes_names("A2017300.1406"),
        *vmaes_names("A2017301.1342"),
        *vmaes_names("A2017302.1324"),
    )
    touch(
        tmp_path,
        "VNP02MOD.A2017301.1230.002.2021085163209.nc",
        "VNP03MOD.A2017301.1230.002.2021085143003.nc",
    )
    one_day = find_granules(tmp_path, start="2017-10-28", end="2017-10-28")
    assert [g.granule_id for g in one_day] == ["A2017301.1230", "A2017301.1342"]
    assert one_day.skipped == []  # out-of-window granules are not "skipped" inputs
    assert [
        g.granule_id
        for g in find_granules(tmp_path, start=datetime(2017, 10, 28, 13), end=date(2017, 10, 29))
    ] == ["A2017301.1342", "A2017302.1324"]
    gridded = find_granules(tmp_path, kind="vmaes")
    assert [g.kind for g in gridded] == ["vmaes"] * 3
    assert {Path(s.path).name[:8] for s in gridded.skipped} == {"VNP02MOD", "VNP03MOD"}
    assert all("kind='vmaes'" in s.reason for s in gridded.skipped)
    swath = find_granules(tmp_path, kind="l1b")
    assert len(swath) == 1 and len(swath.skipped) == 21
    assert len(find_granules(tmp_path).select(kind="l1b")) == 1
    # a subset of layers makes granules complete
    partial = tmp_path / "partial"
    touch(partial, *vmaes_names("A2017303.1300", ["Reflectance_M5", "Reflectance_M7"]))
    assert len(find_granules(partial)) == 0
    idx = find_granules(partial, layers=["M05", "Reflectance_M7"])
    assert len(idx) == 1 and idx.skipped == []
    with pytest.raises(InputError):
        find_granules(partial, layers=["M99"])
    with pytest.raises(InputError):
        find_granules(tmp_path / "nope")
    with pytest.raises(InputError):
        find_granules(tmp_path, kind="modis")
    assert len(find_granules(tmp_path, recursive=False)) == 4


def test_real_granule_is_found_and_opens(real_viirs_dir):
    index = find_granules(real_viirs_dir)
    assert len(index) == 1 and index.skipped == []
    g = index[0]
    assert (g.product, g.platform, g.granule_id, g.collection) == (
        "NPP_VMAES_L1",
        "S-NPP",
        "A2017300.1406",
        "001",
    )
    ds = g.open(layers=["M05"])
    assert ds.attrs["granule_id"] == "A2017300.1406" and ds.sizes == {"y": 800, "x": 1500}
