"""Cube run reports: complete in a sidecar JSON file next to the store, counts in the attrs."""

from __future__ import annotations

import json

import fsspec
import xarray as xr
from _store_helpers import small_cube

from firesmoke.cube.build import build_cube, open_cube, write_cube
from firesmoke.grid import Region
from firesmoke.store import report_location

HEADER = ("latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,confidence,"
          "version,bright_ti5,frp,daynight")


def _long_cube():
    cube = small_cube(4)
    lines = [f"/archive/firms/day_{i:05d}.csv: VIIRS, {i} rows read, {i} kept, 0 selected"
             for i in range(2_000)]
    assert len(json.dumps(lines)) > 100_000  # the old attribute was cut there (invalid JSON)
    skipped = [{"path": "/x/bad.h5", "reason": "truncated"}]
    cube.attrs.update({"firms_report": json.dumps(lines), "skipped_inputs": json.dumps(skipped),
                       "firms_summary": json.dumps({"files": 2_000})})
    return cube, lines, skipped


def test_write_cube_puts_the_complete_report_in_a_sidecar(tmp_path):
    cube, lines, skipped = _long_cube()
    store = write_cube(cube, tmp_path / "c.zarr")
    side = tmp_path / "c.zarr.report.json"
    assert report_location(store).path == side
    doc = json.loads(side.read_text())  # complete, valid JSON
    assert doc == {"skipped_inputs": skipped, "firms_report": lines}
    attrs = open_cube(store).attrs
    assert "firms_report" not in attrs and attrs["report"] == "c.zarr.report.json"
    assert json.loads(attrs["firms_summary"]) == {"files": 2_000}
    assert json.loads(attrs["skipped_inputs"]) == skipped
    assert sum(len(str(v)) for v in attrs.values()) < 10_000
    assert "firms_report" in cube.attrs  # the caller's cube is not changed


def test_sidecar_on_an_object_store():
    cube, lines, _ = _long_cube()
    write_cube(cube, "memory://reports/c.zarr")
    with fsspec.open("memory://reports/c.zarr.report.json", "r") as f:
        assert json.load(f)["firms_report"] == lines


def test_a_cube_without_reports_gets_no_sidecar(tmp_path):
    cube = small_cube(4)
    write_cube(cube, tmp_path / "c.zarr")
    assert not (tmp_path / "c.zarr.report.json").exists()
    assert "report" not in xr.open_zarr(tmp_path / "c.zarr").attrs


def test_build_cube_reports_every_firms_file(tmp_path):
    region = Region.from_shape("REP", 5.0, 1.0, 0.01, 16, 16)
    folder = tmp_path / "firms"
    folder.mkdir()
    good = "0.95,5.05,330.0,0.4,0.4,2020-07-01,1200,N,n,2.0NRT,290.0,12.5,D"
    for i in range(3):
        rows = [good] * (i + 1) + (["not,a,row"] if i == 2 else [])
        (folder / f"f{i}.csv").write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    cube = build_cube(region, "2020-07-01", "2020-07-02", firms=folder)
    assert json.loads(cube.attrs["firms_summary"]) == {
        "files": 3, "rows_read": 7, "rows_selected": 6, "bad_rows": 1, "files_with_bad_rows": 1}
    lines = json.loads(cube.attrs["firms_report"])
    assert len(lines) == 3 and "f2.csv" in lines[2] and "1 x " in lines[2]
    store = write_cube(cube, tmp_path / "c.zarr")
    doc = json.loads((tmp_path / "c.zarr.report.json").read_text())
    assert doc["firms_report"] == lines and doc["skipped_inputs"] == []
    assert json.loads(open_cube(store).attrs["firms_summary"])["bad_rows"] == 1
