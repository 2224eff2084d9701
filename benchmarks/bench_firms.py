"""FIRMS CSV reading: firesmoke.io.firms.read_firms beside plain pandas.

The baseline is what scripts (and the BA-Net reference) do: ``pandas.read_csv`` with the
default C engine, then ``pandas.to_datetime`` on ``acq_date`` + zero-padded ``acq_time``;
it validates nothing. ``read_firms`` also validates every row, normalises satellites and
confidence and keeps per-file reports. The CSV (VIIRS 375 m NRT layout, 1 million rows)
is generated once and cached in the temp folder.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from firesmoke.io.firms import read_firms

ROWS = 1_000_000
HEADER = (
    "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,confidence,"
    "version,bright_ti5,frp,daynight\n"
)


def make_viirs_csv(path: Path, rows: int, seed: int = 0) -> Path:
    """Write a VIIRS-layout FIRMS CSV with ``rows`` random detections (vectorised)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv as pacsv

    rng = np.random.default_rng(seed)
    day = np.datetime64("2022-09-01") + rng.integers(0, 30, rows)
    hhmm = rng.integers(0, 24, rows) * 100 + rng.integers(0, 60, rows)
    table = pa.table(
        {
            "latitude": np.round(rng.uniform(-60, 70, rows), 5),
            "longitude": np.round(rng.uniform(-180, 180, rows), 5),
            "bright_ti4": np.round(rng.uniform(290, 367, rows), 2),
            "scan": np.round(rng.uniform(0.3, 0.8, rows), 2),
            "track": np.round(rng.uniform(0.3, 0.8, rows), 2),
            "acq_date": pa.array(day.astype("datetime64[D]")).cast(pa.string()),
            "acq_time": pc.utf8_lpad(pa.array(hhmm).cast(pa.string()), 4, "0"),
            "satellite": pa.array(np.full(rows, "N")),
            "confidence": pa.array(np.array(["low", "nominal", "high"])[rng.integers(0, 3, rows)]),
            "version": pa.array(np.full(rows, "2.0NRT")),
            "bright_ti5": np.round(rng.uniform(260, 320, rows), 2),
            "frp": np.round(rng.gamma(1.0, 5.0, rows), 2),
            "daynight": pa.array(np.array(["D", "N"])[rng.integers(0, 2, rows)]),
        }
    )
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as fh:
        fh.write(HEADER.encode())
        pacsv.write_csv(table, fh, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))
    os.replace(tmp, path)
    return path


def cached_csv(rows: int = ROWS) -> Path:
    folder = Path(tempfile.gettempdir()) / "firesmoke-bench"
    folder.mkdir(exist_ok=True)
    path = folder / f"firms_viirs_{rows}.csv"
    if not path.exists():
        make_viirs_csv(path, rows)
    return path


def pandas_baseline(path: Path) -> pd.DataFrame:
    """The plain-pandas way: C engine, then a datetime built from the two columns."""
    df = pd.read_csv(path)
    hhmm = df["acq_time"].astype(str).str.zfill(4)
    df["time"] = pd.to_datetime(df["acq_date"] + " " + hhmm, format="%Y-%m-%d %H%M")
    return df


class FirmsRead:
    """Read 1 million FIRMS rows (VIIRS NRT layout)."""

    timeout = 300
    number = 1
    repeat = 3

    def setup_cache(self) -> str:
        return str(cached_csv())

    def time_read_firms(self, path: str) -> None:
        read_firms(path)

    def time_pandas_read_csv_to_datetime(self, path: str) -> None:
        pandas_baseline(Path(path))

    def peakmem_read_firms(self, path: str) -> None:
        read_firms(path)

    def peakmem_pandas_read_csv_to_datetime(self, path: str) -> None:
        pandas_baseline(Path(path))

    def track_read_firms_rows_per_s(self, path: str) -> float:
        t0 = time.perf_counter()
        n = len(read_firms(path))
        return n / (time.perf_counter() - t0)

    track_read_firms_rows_per_s.unit = "rows/s"  # type: ignore[attr-defined]

    def track_pandas_rows_per_s(self, path: str) -> float:
        t0 = time.perf_counter()
        n = len(pandas_baseline(Path(path)))
        return n / (time.perf_counter() - t0)

    track_pandas_rows_per_s.unit = "rows/s"  # type: ignore[attr-defined]
