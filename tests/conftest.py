"""Shared pytest fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the shared helpers (tests/_*.py) import by name from every test package
sys.path.insert(0, str(Path(__file__).resolve().parent))
REAL_DATA = Path(os.environ.get("FIRESMOKE_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of the real NASA samples (``../shared/data/real``); skips when absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data samples not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def real_viirs_dir(real_data: Path) -> Path:
    d = real_data / "viirs750"
    if not d.is_dir():
        pytest.skip(f"{d} not found")
    return d
