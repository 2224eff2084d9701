"""The public face: ``import firesmoke`` stays light and every public name resolves."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import firesmoke

HEAVY = ("torch", "dask", "distributed", "rasterio", "pyhdf", "numba", "zarr", "xarray")


def test_import_is_light():
    code = ("import sys, json, firesmoke; "
            f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert json.loads(out) == []


def test_first_use_imports_only_what_is_needed():
    code = ("import sys, json, firesmoke as fs; fs.Region; "
            "print(json.dumps(['torch' in sys.modules, 'distributed' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert json.loads(out) == [False, False]


def test_public_names_resolve():
    import firesmoke as fs

    assert callable(fs.predict_burned) and callable(fs.build_cube) and fs.Region.named("PT")
    for name in fs.__all__:
        assert getattr(fs, name) is not None, name
    assert fs.predict_burned.__module__ == "firesmoke.burned.predict"
    assert issubclass(fs.errors.InputError, fs.errors.FiresmokeError)
    assert set(fs.__all__) <= set(dir(fs))


def test_library_logger_has_a_null_handler():
    handlers = logging.getLogger("firesmoke").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)
    assert firesmoke.__version__


def test_py_typed_ships():
    from importlib.resources import files

    assert files("firesmoke").joinpath("py.typed").is_file()
