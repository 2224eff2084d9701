"""The Examples sections of the public face's docstrings run (``doctest``, tiny sizes).

Each docstring runs in its own empty working directory, so examples that write files
(scenarios, cubes, exports) leave nothing behind. Slow or cluster-only lines carry
``# doctest: +SKIP``.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

import firesmoke

# the public face (firesmoke/__init__.py) plus the module docstrings that carry examples
MODULES = sorted({*firesmoke._PUBLIC.values(), "firesmoke", "firesmoke.inference.tiling"})
#: public names whose docstrings must have an Examples section that runs
MUST_HAVE_EXAMPLES = ("Region", "build_cube", "open_cube", "write_cube", "predict_burned",
                      "find_events", "classify_chips", "segment_scene", "TileModel",
                      "load_weights", "run_campaign", "generate_scenario", "export_burned")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _tests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for t in finder.find(module):
            if t.examples and (t.name.startswith(name + ".") or t.name == name):
                found[t.name] = t
    return [found[k] for k in sorted(found)]


TESTS = _tests()


@pytest.mark.parametrize("name", MUST_HAVE_EXAMPLES)
def test_public_face_has_examples(name):
    obj = getattr(firesmoke, name)
    assert "Examples\n" in (obj.__doc__ or ""), f"{name} has no Examples section"
    qual = f"{obj.__module__}.{obj.__qualname__}"
    assert qual in {t.name for t in TESTS}


@pytest.mark.parametrize("test", TESTS, ids=[t.name for t in TESTS])
def test_docstring_examples_run(test, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out: list[str] = []
    result = runner.run(test, out=out.append, clear_globs=True)
    assert result.failed == 0, "".join(out)
