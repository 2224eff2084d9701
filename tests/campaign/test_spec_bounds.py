"""Campaign specs refuse at load (not at run time) what the CLI refuses (issue 22)."""

from __future__ import annotations

import copy

import pytest

from firesmoke.campaign.spec import load_spec
from firesmoke.errors import InputError

BASE = {
    "name": "t",
    "output": "out",
    "regions": [{"name": "box", "bbox": [0.0, 0.0, 1.28, 1.28], "pixel_size": 0.01,
                 "cube": "c.zarr"}],
    "periods": [{"start": "2020-07-01", "end": "2020-07-31"}],
    "products": {"burned": {"mode": "monthly"}},
}


def _spec(**changes):
    spec = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = spec
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return spec


def test_base_spec_loads(tmp_path):
    assert load_spec(_spec(), base_dir=tmp_path).name == "t"


@pytest.mark.parametrize(("changes", "field"), [
    ({"cluster.memory_limit": "-5 potatoes"}, "cluster.memory_limit"),
    ({"cluster.memory_limit": "-5GB"}, "cluster.memory_limit"),
    ({"exports.equal_area_crs": "EPSG:999999"}, "exports.equal_area_crs"),
    ({"exports.equal_area_crs": "EPSG:4326"}, "exports.equal_area_crs"),
    ({"products.burned.tile": 2**40}, "products.burned[0].tile"),
    ({"products.burned.batch_size": 1e15}, "products.burned[0].batch_size"),
    ({"products.burned.batch_size": 10**15}, "products.burned[0].batch_size"),
    ({"products.burned.threshold": float("nan")}, "products.burned[0].threshold"),
    ({"cluster.torch_threads": 10**12}, "cluster.torch_threads"),
    ({"cluster.n_workers": 10**6}, "cluster.n_workers"),
    ({"cluster.address": "notanaddress"}, "cluster.address"),
    ({"periods": [{"start": "0001-01-01", "end": "9999-12-31"}]}, "periods[0]"),
    ({"periods": [{"start": "1950-01-01", "end": "2100-12-31"}]}, "periods[0]"),
    ({"name": "n" * 4000}, "name"),
    ({"block_size": 2**40}, "block_size"),
    ({"output": "ftp://host/out"}, "output"),
])
def test_bad_values_are_refused_at_load(tmp_path, changes, field):
    with pytest.raises(InputError) as info:
        load_spec(_spec(**changes), base_dir=tmp_path)
    assert info.value.field == field, str(info.value)


def test_output_naming_a_file_and_deep_nesting(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(InputError, match="not a folder"):
        load_spec(_spec(), base_dir=tmp_path)
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(InputError, match=r"deep\.toml"):
        load_spec(deep)
