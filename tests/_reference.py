"""Reading the reference state-dict key lists (../shared/reference/*.tsv) in tests."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

REFERENCE = Path(
    os.environ.get(
        "FIRESMOKE_REFERENCE", Path(__file__).resolve().parents[2] / "shared" / "reference"
    )
)


def read_tsv(name: str) -> list[tuple[str, tuple[int, ...], str]]:
    """``(key, shape, dtype)`` rows of a reference TSV; skips the test when it is absent."""
    path = REFERENCE / name
    if not path.is_file():
        pytest.skip(f"reference key list {path} not found")
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            key, shape, dtype = line.split("\t")
            rows.append((key, tuple(ast.literal_eval(shape)), dtype))
    return rows
