"""Output safety (issue 14): no write, rename or delete through a symlink or outside the
output; temporary files created exclusively; deletion only of what firesmoke created;
honest completeness of cube stores."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from _store_helpers import run_killed_writer, small_cube

from firesmoke.cube.build import CUBE_VARIABLES, open_cube, write_cube
from firesmoke.errors import InputError
from firesmoke.paths import (
    UnsafePathError,
    atomic_write_text,
    open_exclusive,
    safe_join,
)
from firesmoke.store import IncompleteStoreError, IncompleteStoreWarning, Ledger, write_product
from firesmoke.store.geotiff import export_geotiff


def _victim(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("x")
    (victim / "sub").mkdir()
    (victim / "sub" / "data.bin").write_bytes(b"\0" * 10)
    return victim, _snapshot(victim)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_old_style_symlinked_ledger_is_never_cleared(tmp_path):
    """The issue's reproduction: `<store>.ledger` -> victim; new store and --overwrite."""
    victim, before = _victim(tmp_path)
    out = tmp_path / "v"
    out.mkdir()
    os.symlink(victim, out / "c.zarr.ledger")
    write_cube(small_cube(6), out / "c.zarr")
    write_cube(small_cube(6), out / "c.zarr", mode="w")
    assert _snapshot(victim) == before


def test_symlinked_ledger_inside_the_store_is_refused(tmp_path):
    victim, before = _victim(tmp_path)
    store = write_cube(small_cube(6), tmp_path / "c.zarr")
    ledger = store / ".firesmoke" / "ledger"
    for p in ledger.iterdir():
        p.unlink()
    ledger.rmdir()
    os.symlink(victim, ledger)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        write_cube(small_cube(6), store, mode="w")
    with pytest.raises(UnsafePathError):
        Ledger(store).clear()
    assert _snapshot(victim) == before


def test_ledger_without_marker_is_not_cleared(tmp_path):
    store = tmp_path / "c.zarr"
    folder = store / ".firesmoke" / "ledger"
    folder.mkdir(parents=True)
    (folder / "precious").write_text("keep")
    with pytest.raises(UnsafePathError, match="not a firesmoke ledger"):
        Ledger(store).clear()
    assert (folder / "precious").read_text() == "keep"


def test_symlinked_store_and_links_inside_are_refused(tmp_path):
    victim, before = _victim(tmp_path)
    os.symlink(victim, tmp_path / "link.zarr")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        write_cube(small_cube(6), tmp_path / "link.zarr", mode="w")
    store = write_cube(small_cube(6), tmp_path / "c.zarr")
    os.symlink(victim / "thesis.tex", store / "red" / "planted")
    with pytest.raises(UnsafePathError, match="planted"):
        write_cube(small_cube(6), store)
    assert _snapshot(victim) == before


def test_overwrite_refuses_a_folder_that_is_not_a_store(tmp_path):
    victim, before = _victim(tmp_path)
    with pytest.raises(InputError, match="not a store folder"):
        write_cube(small_cube(6), victim / "thesis.tex", mode="w")
    with pytest.raises(InputError, match="not a Zarr store"):
        write_cube(small_cube(6), victim, mode="w")
    with pytest.raises(InputError, match="exists; pass overwrite=True"):
        write_product(xr.Dataset({"a": ("x", np.arange(3))}), victim)
    with pytest.raises(InputError, match="not a Zarr store"):
        write_product(xr.Dataset({"a": ("x", np.arange(3))}), victim, overwrite=True)
    assert _snapshot(victim) == before


def test_part_files_are_created_exclusively(tmp_path):
    victim, before = _victim(tmp_path)
    target = victim / "thesis.tex"
    link = tmp_path / "report.json.part"
    os.symlink(target, link)
    with pytest.raises(UnsafePathError, match="exists already"):
        open_exclusive(link)
    # an atomic write never goes through a link at its destination's .part name
    atomic_write_text(tmp_path / "report.json", "{}")
    assert json.loads((tmp_path / "report.json").read_text()) == {}
    # a link AT the destination is refused, the target is untouched
    os.symlink(target, tmp_path / "r2.json")
    with pytest.raises(UnsafePathError):
        atomic_write_text(tmp_path / "r2.json", "{}")
    # a product's .part folder planted as a link
    os.symlink(victim, tmp_path / "p.zarr.part")
    with pytest.raises(UnsafePathError):
        write_product(xr.Dataset({"a": ("x", np.arange(3))}), tmp_path / "p.zarr")
    assert _snapshot(victim) == before


def test_safe_join_refuses_links_and_traversal(tmp_path):
    victim, _ = _victim(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim, out / "exports")
    with pytest.raises(UnsafePathError, match="exports"):
        safe_join(out, "exports", "a.tif")
    for bad in ("..", "../x", "/etc/passwd", ".hidden", "a/b"):
        with pytest.raises(InputError):
            safe_join(out, bad)


def test_export_through_symlinked_folder_is_refused(tmp_path):
    victim, before = _victim(tmp_path)
    cube = small_cube(1).isel(time=0).compute()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim, out / "exports")
    with pytest.raises(UnsafePathError):
        export_geotiff(cube["red"], out / "exports" / "red.tif", root=out)
    assert _snapshot(victim) == before


# ---------------------------------------------------------------- completeness
def test_killed_cube_is_incomplete_and_rerun_completes_it(tmp_path):
    store = tmp_path / "c.zarr"
    assert run_killed_writer(str(store), kill_after=1) == -9
    with pytest.raises(IncompleteStoreError, match="6 of 10 day"):
        open_cube(store)
    with pytest.warns(IncompleteStoreWarning):
        part = open_cube(store, partial=True)
    assert json.loads(part.attrs["incomplete_days"])[0] == "2021-01-05"
    write_cube(small_cube(10), store)  # stale lock of the dead writer taken over
    out = open_cube(store)
    ref = small_cube(10)
    for v in CUBE_VARIABLES:
        np.testing.assert_array_equal(out[v].values, ref[v].values)


def test_torn_template_is_rebuilt(tmp_path):
    store = write_cube(small_cube(6), tmp_path / "c.zarr")
    # a kill while the template was written: metadata partly missing, no block finished
    Ledger(store).clear()
    (store / "nir" / "zarr.json").unlink()
    (store / "zarr.json").unlink()
    with pytest.raises(InputError):
        open_cube(store)
    write_cube(small_cube(6), store)
    out = open_cube(store)
    np.testing.assert_array_equal(out["nir"].values, small_cube(6)["nir"].values)


def test_damaged_store_with_finished_blocks_is_a_clear_error(tmp_path):
    store = write_cube(small_cube(6), tmp_path / "c.zarr")
    (store / "zarr.json").unlink()
    (store / "zarr.json").write_text("{not json")
    with pytest.raises(InputError, match="damaged"):
        write_cube(small_cube(6), store)


# ---------------------------------------------------------------- campaigns
@pytest.fixture(scope="module")
def small_campaign(tmp_path_factory):
    from _campaign_helpers import make_cube, standin_model
    from distributed import Client, LocalCluster

    from firesmoke.grid import Region

    cube = make_cube(tmp_path_factory.mktemp("cube") / "cube.zarr", shape=(128, 128))
    region = Region.from_dataset(open_cube(cube))

    def spec(out, **kw):
        return {"name": "t", "output": str(out), "block_size": 128,
                "regions": [{"name": region.name, "bbox": list(region.bbox),
                             "pixel_size": region.pixel_size, "cube": str(cube)}],
                "periods": [{"date": "2020-09-01"}], "products": {"burned": {"mode": "nrt"}},
                "cluster": {"torch_threads": 1}, **kw}

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield spec, client, standin_model()


def test_campaign_report_part_link_and_symlinked_exports(small_campaign, tmp_path):
    from firesmoke.campaign.run import run_campaign

    spec, client, model = small_campaign
    victim, before = _victim(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim / "thesis.tex", out / "t_report.json.part")
    os.symlink(victim, out / "exports")
    rep = run_campaign(spec(out, exports={"geotiff": True}), client=client, model=model,
                       progress=False)
    assert not rep.ok
    (failure,) = rep.failed
    assert failure["unit"].startswith("export") and "symbolic link" in failure["reason"]
    assert str(out / "exports") in failure["reason"]
    assert json.loads((out / "t_report.json").read_text())["ok"] is False
    assert _snapshot(victim) == before


def test_two_campaigns_on_one_output_one_clear_error(small_campaign, tmp_path):
    from firesmoke.campaign.run import run_campaign
    from firesmoke.store import StoreLock, StoreLockedError

    spec, client, model = small_campaign
    out = tmp_path / "out"
    with StoreLock(out, purpose="campaign t", check_links=False):  # another run in progress
        with pytest.raises(StoreLockedError, match="campaign t"):
            run_campaign(spec(out), client=client, model=model, progress=False)
    assert run_campaign(spec(out), client=client, model=model, progress=False).ok


def test_campaign_on_an_incomplete_cube_is_not_ok(small_campaign, tmp_path):
    """Issue 14 item 4: a campaign on a cube killed mid-write used to report ok."""
    import shutil

    from firesmoke.campaign.run import run_campaign

    spec, client, model = small_campaign
    doc = spec(tmp_path / "out")
    cube = tmp_path / "cube.zarr"
    shutil.copytree(doc["regions"][0]["cube"], cube)
    ledger = Ledger(cube)
    ledger.location.delete(f".firesmoke/ledger/{sorted(ledger.finished())[-1]}")  # a lost chunk
    doc["regions"][0]["cube"] = str(cube)
    rep = run_campaign(doc, client=client, model=model, progress=False)
    assert not rep.ok and rep.failed
    assert all("incomplete cube" in f["reason"] for f in rep.failed)
