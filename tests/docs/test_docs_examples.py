"""Every ```python block of the README and of ``docs/`` runs (sybil, tiny sizes).

The blocks of one page share a namespace and run in order. All pages run in one
temporary working directory, the README first: its example writes ``scenario/`` and
``cube.zarr``, which the guide pages use. A block that cannot run here (a cluster
address, a GPU, the network) is preceded by sybil's skip marker ``<!-- skip: next -->``
(or ``<!-- skip: next "reason" -->``); use it sparingly.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from unittest import SkipTest

import pytest
from sybil import Sybil
from sybil.evaluators.skip import Skipper
from sybil.example import NotEvaluated
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").rglob("*.md"))
SYBIL = Sybil(parsers=[PythonCodeBlockParser(), SkipParser()])
PYTHON_FENCE = re.compile(r"^```python\s*$", re.MULTILINE)


def run_page(path: Path) -> tuple[int, int]:
    """Run a page's blocks in order; returns (blocks run, blocks skipped)."""
    document = SYBIL.parse(path)
    document.namespace["__name__"] = "__docs__"
    ran = skipped = 0
    for example in document.examples():
        if isinstance(example.region.evaluator, Skipper):  # a skip marker
            example.evaluate()
            continue
        try:
            example.evaluate()
        except (SkipTest, NotEvaluated):
            skipped += 1
        else:
            ran += 1
    return ran, skipped


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The shared working directory, with the README's example already run in it."""
    here = Path.cwd()
    wd = tmp_path_factory.mktemp("docs")
    os.chdir(wd)
    try:
        error = None
        try:
            run_page(README)
        except Exception as e:  # reported by test_readme_python_example
            error = e
        yield wd, error
    finally:
        os.chdir(here)


def test_readme_python_example(workdir):
    wd, error = workdir
    if error is not None:
        raise error
    assert (wd / "cube.zarr").is_dir() and (wd / "exports").is_dir()
    assert len(PYTHON_FENCE.findall(README.read_text())) >= 1


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_docs_page_python_blocks(page, workdir, monkeypatch):
    wd, error = workdir
    if error is not None:
        pytest.skip("the README example failed (see test_readme_python_example)")
    monkeypatch.chdir(wd)
    ran, skipped = run_page(page)
    # every python fence was found by the parser: none silently ignored
    assert ran + skipped == len(PYTHON_FENCE.findall(page.read_text()))
