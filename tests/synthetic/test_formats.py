"""Synthetic scenario files: layout vs the real NASA samples, contents vs the truth.

One small scenario (64 x 64 px, 30 days over two months) is generated per module and
decoded with pyhdf / the csv module directly (not with firesmoke.io).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyhdf.SD import SD, SDC

from firesmoke.errors import InputError
from firesmoke.grid import Region
from firesmoke.synthetic import demo_region, generate_scenario, simulate_truth
from firesmoke.synthetic.fire import WATER, simulate_burn_truth
from firesmoke.synthetic.firms import FIRMS_COLUMNS
from firesmoke.synthetic.orbit import (
    GROUND_SPEED_KM_S,
    Overpass,
    ground_track_heading,
    overpass_schedule,
)
from firesmoke.synthetic.surface import render_overpass, simulate_overpass
from firesmoke.synthetic.viirs_gridded import write_viirs_granule

REGION = Region("T64", (-8.62, 40.02, -7.98, 40.66), 0.01)
START, END, SEED = "2022-07-20", "2022-08-18", 3
N_DAYS = 30
LAYER_NAMES = (
    "Reflectance_M5",
    "Reflectance_M7",
    "Reflectance_M10",
    "Radiance_M12",
    "Radiance_M15",
    "SolarZenithAngle",
    "SatelliteZenithAngle",
)
VIIRS_NAME = re.compile(
    r"^NPP_VMAES_L1\.A(\d{4})(\d{3})\.(\d{2})(\d{2})\.001\.(\d{13})\.psrpgscs_(\d{12})\.(\w+)\.hdf$"
)
_C1, _C2, _LM, _LT, _E0 = 1.1911e8, 1.439e4, 3.6966, 10.7343, 11.7881


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenario")
    ticks = []
    sc = generate_scenario(
        REGION, START, END, out, seed=SEED, progress=lambda d, n: ticks.append((d, n))
    )
    sc.ticks = ticks
    return sc


@pytest.fixture(scope="module")
def truth():
    return simulate_burn_truth(REGION, np.datetime64(START), N_DAYS, SEED)


# --------------------------------------------------------------------------- helpers
def hdf_structure(path: Path) -> dict:
    """Names, HDF types and order of global attributes; SDS names, dims, types, attrs."""
    sd = SD(str(path), SDC.READ)
    try:
        gattrs = sorted(sd.attributes(full=1).items(), key=lambda kv: kv[1][1])
        sds = {}
        for name, (dims, shape, dtype, index) in sd.datasets().items():
            ds = sd.select(name)
            attrs = sorted(ds.attributes(full=1).items(), key=lambda kv: kv[1][1])
            sds[name] = {
                "dims": dims,
                "rank": len(shape),
                "dtype": dtype,
                "index": index,
                "attrs": [(k, v[2]) for k, v in attrs],
                "compress": ds.getcompress()[0],
            }
            ds.endaccess()
        return {
            "gattrs": [(k, v[2]) for k, v in gattrs],
            "sds": sds,
            "struct": sd.attributes()["StructMetadata.0"],
        }
    finally:
        sd.end()


def struct_keys(text: str) -> list[str]:
    """Keys of an HDF-EOS StructMetadata text, in order (values dropped)."""
    return [line.strip().split("=")[0] for line in text.strip("\x00").splitlines() if "=" in line]


def struct_value(text: str, key: str) -> str:
    m = re.search(rf"\b{re.escape(key)}=(.*)", text)
    assert m, key
    return m.group(1).strip()


def packed_dms_to_deg(v: float) -> float:
    sign = -1 if v < 0 else 1
    v = abs(v)
    d = int(v // 1e6)
    m = int((v - d * 1e6) // 1e3)
    s = v - d * 1e6 - m * 1e3
    return sign * (d + m / 60 + s / 3600)


def decode(path: Path) -> np.ndarray:
    """Physical values of a gridded VIIRS layer file (NaN = fill), plain pyhdf."""
    sd = SD(str(path), SDC.READ)
    ds = sd.select(0)
    raw = ds.get()
    attrs = ds.attributes()
    sd.end()
    if raw.dtype == np.uint16:
        return np.where(
            raw >= 65527, np.nan, raw * np.float64(attrs["Scale"]) + np.float64(attrs["Offset"])
        )
    return np.where(raw <= -999, np.nan, raw.astype(np.float64))


def raw_layer(path: Path) -> np.ndarray:
    sd = SD(str(path), SDC.READ)
    raw = sd.select(0).get()
    sd.end()
    return raw


def granules(files: list[Path]) -> dict[tuple[str, str], dict[str, Path]]:
    out: dict[tuple[str, str], dict[str, Path]] = defaultdict(dict)
    for f in files:
        m = VIIRS_NAME.match(f.name)
        assert m, f.name
        out[(m.group(1) + m.group(2), m.group(3) + m.group(4))][m.group(7)] = f
    return dict(out)


def banet_mir(l12, l15, sza):
    t = _C2 / (_LT * np.log(_C1 / (_LT**5 * l15) + 1.0))
    b = _C1 * _LM**-5 / (np.exp(_C2 / (_LM * t)) - 1.0)
    rho = (l12 - b) / (_E0 * np.cos(np.radians(sza)) / np.pi - b)
    return np.where(rho < 0, 0.0, rho)


# --------------------------------------------------------------------------- VIIRS layout
def test_viirs_layer_files_mirror_the_real_ones(scenario, real_viirs_dir):
    gr = granules(scenario.files["viirs"])
    synth = next(iter(gr.values()))
    for layer in LAYER_NAMES:
        real = hdf_structure(next(real_viirs_dir.glob(f"*.{layer}.hdf")))
        ours = hdf_structure(synth[layer])
        assert ours["gattrs"] == real["gattrs"], layer  # same names, HDF types and order
        assert ours["sds"].keys() == real["sds"].keys() == {layer}
        r, o = real["sds"][layer], ours["sds"][layer]
        assert o["dims"] == r["dims"] == ("YDim:VIIRS_EV_750M_SDR", "XDim:VIIRS_EV_750M_SDR")
        assert (o["dtype"], o["attrs"], o["compress"], o["rank"]) == (
            r["dtype"],
            r["attrs"],
            r["compress"],
            2,
        )
        assert struct_keys(ours["struct"]) == struct_keys(real["struct"])
        for key in (
            "GridName",
            "Projection",
            "GridOrigin",
            "PixelRegistration",
            "DataFieldName",
            "DataType",
        ):
            assert struct_value(ours["struct"], key) == struct_value(real["struct"], key)
        assert len(ours["struct"]) == len(real["struct"]) == 32000


def test_viirs_grid_metadata_describes_the_region(scenario):
    f = scenario.files["viirs"][0]
    sd = SD(str(f), SDC.READ)
    ga = sd.attributes()
    shape = sd.select(0).info()[2]
    sd.end()
    text = ga["StructMetadata.0"]
    assert (
        (int(struct_value(text, "YDim")), int(struct_value(text, "XDim")))
        == REGION.shape
        == tuple(shape)
    )
    ul = [float(v) for v in struct_value(text, "UpperLeftPointMtrs").strip("()").split(",")]
    lr = [float(v) for v in struct_value(text, "LowerRightMtrs").strip("()").split(",")]
    left, bottom, right, top = REGION.bbox
    assert packed_dms_to_deg(ul[0]) == pytest.approx(left, abs=1e-9)
    assert packed_dms_to_deg(ul[1]) == pytest.approx(top, abs=1e-9)
    assert packed_dms_to_deg(lr[0]) == pytest.approx(right, abs=1e-9)
    assert packed_dms_to_deg(lr[1]) == pytest.approx(bottom, abs=1e-9)
    assert float(ga["WestBoundingCoord"]) == left and float(ga["NorthBoundingCoord"]) == top
    assert ga["DayNightFlag"] == "D" and ga["ShortName"] == "NPP_VMAES_L1"
    assert ga["HDFEOSVersion"] == "HDFEOS_V2.19"
    assert ga["OrbitNumber"] > 50000  # 2022 (orbit 31088 was in Oct 2017)
    assert 0 <= ga["Satellite_Zenith_Angle_Min"] < 1 and 69 < ga["Satellite_Zenith_Angle_Max"] < 71


def test_viirs_file_names_and_granules(scenario):
    gr = granules(scenario.files["viirs"])
    days = {str(d) for d in np.arange(np.datetime64(START), np.datetime64(END) + 1)}
    per_day = defaultdict(int)
    for (ydoy, hhmm), layers in gr.items():
        assert set(layers) == set(LAYER_NAMES), "seven layers per granule"
        day = str(np.datetime64(f"{ydoy[:4]}-01-01") + int(ydoy[4:]) - 1)
        assert day in days
        assert (
            int(hhmm[2:]) % 6 == 0 and 11 <= int(hhmm[:2]) <= 16
        )  # 6-min granules, early afternoon
        per_day[day] += 1
    assert len(per_day) == N_DAYS  # every day has at least one daytime granule here
    assert max(per_day.values()) <= 4
    assert len(scenario.files["viirs"]) == 7 * len(gr)


def test_viirs_fill_is_shared_by_all_layers(scenario):
    for layers in granules(scenario.files["viirs"]).values():
        data = {k: raw_layer(p) for k, p in layers.items()}
        outside = data["SatelliteZenithAngle"] <= -999
        assert np.array_equal(outside, data["SolarZenithAngle"] <= -999)
        for name in LAYER_NAMES[:5]:
            assert np.all(data[name][outside] == 65535)
            inside = data[name][~outside]
            # inside the swath: valid values or on-board pixel trim at granule edges only
            assert np.all((inside < 65527) | (inside == 65533))
        vza = data["SatelliteZenithAngle"][~outside]
        sza = data["SolarZenithAngle"][~outside]
        assert np.all((vza >= 0) & (vza <= 70.1)) and np.all((sza > 5) & (sza < 85))


def test_granule_edge_trim(truth):
    """Band pixels within 3 km of a granule's along-track edge get fill 65533."""
    from firesmoke.synthetic.viirs_gridded import LAYERS, encode_layer, trim_mask

    f = simulate_overpass(truth, 0, 0)
    g = int(np.unique(f["granule"][f["valid"]])[0])
    # pretend a granule starts with the pixels seen at the median time: its edge crosses
    # the middle of the region
    t_mid = int(np.median(f["time_ms"][f["valid"]]))
    g_ms = t_mid
    inside = f["valid"] & (f["time_ms"] >= g_ms)
    trim = trim_mask(f["time_ms"], g_ms, inside)
    strip_ms = 3.0 / GROUND_SPEED_KM_S * 1000
    expect = inside & (f["time_ms"] - g_ms < strip_ms)
    assert trim.any() and np.array_equal(trim, expect)
    raw = encode_layer(np.where(inside, f["M05"], np.nan), LAYERS["Reflectance_M5"], trim)
    assert np.all(raw[trim] == 65533) and np.all(raw[~inside] == 65535)
    assert np.all(raw[inside & ~trim] < 65527)
    assert g > 0


def test_partial_swath_written_as_fill(tmp_path, truth):
    """A granule whose swath edge crosses the region: fill beyond the edge in ALL layers."""
    day = 2
    base = overpass_schedule(REGION, truth.date(day))[0]
    lat_c = 0.5 * (REGION.bbox[1] + REGION.bbox[3])
    lon_c = 0.5 * (REGION.bbox[0] + REGION.bbox[2])
    dlon = math.degrees(1531.0 / (6371.0 * math.cos(math.radians(lat_c))))
    ov = Overpass(
        base.time,
        base.orbit,
        lat_c,
        lon_c - 1.004 * dlon,
        ground_track_heading(lat_c, True),
        True,
        "D",
    )
    f = render_overpass(truth, day, ov, np.random.default_rng(1))
    g = int(np.unique(f["granule"][f["valid"]])[0])
    paths = write_viirs_granule(tmp_path, REGION, f, ov, g * 360_000, order="000500000001", seed=1)
    assert len(paths) == 7
    valid = f["valid"] & (f["granule"] == g)
    assert 0.05 < valid.mean() < 0.95
    for p in paths:
        v = decode(p)
        assert np.all(np.isnan(v[~valid])), p.name
        assert np.all(np.isfinite(v[valid])), p.name


# --------------------------------------------------------------------------- VIIRS values
def test_mir_from_files_matches_model(scenario, truth):
    """Decode M12/M15/SZA, apply the BA-Net formula: the model's rho_MIR comes back."""
    gr = granules(scenario.files["viirs"])
    checked = 0
    for d in (0, 7, 15):
        date = truth.date(d)
        ydoy = f"{date.astype('datetime64[Y]').astype(int) + 1970}{int((date - date.astype('datetime64[Y]')).astype(int)) + 1:03d}"
        for k, _ov in enumerate(overpass_schedule(REGION, date)):
            f = simulate_overpass(truth, d, k)
            for g in np.unique(f["granule"][f["valid"]]):
                t = np.datetime64(int(g) * 360_000, "ms").astype(object)
                layers = gr[(ydoy, t.strftime("%H%M"))]
                m12, m15, sza = (
                    decode(layers[n]) for n in ("Radiance_M12", "Radiance_M15", "SolarZenithAngle")
                )
                ok = np.isfinite(m12) & np.isfinite(m15)
                assert np.array_equal(
                    ok | (raw_layer(layers["Radiance_M12"]) == 65533), f["granule"] == g
                )
                rho = banet_mir(m12[ok], m15[ok], sza[ok])
                err = np.abs(rho - f["mir"][ok])
                assert np.percentile(err, 99) < 2e-3 and err.max() < 5e-3
                assert np.allclose(sza[ok], f["solar_zenith"][ok], atol=1e-4)
                checked += int(ok.sum())
    assert checked > 1000


def _daily_composites(scenario):
    """Per day: the clearest granule value per pixel (min sensor zenith), bands decoded."""
    by_day = defaultdict(list)
    for (ydoy, _hhmm), layers in sorted(granules(scenario.files["viirs"]).items()):
        by_day[ydoy].append({k: decode(p) for k, p in layers.items()})
    out = {}
    for ydoy, grs in sorted(by_day.items()):
        vza = np.stack(
            [
                np.where(np.isnan(g["SatelliteZenithAngle"]), 999, g["SatelliteZenithAngle"])
                for g in grs
            ]
        )
        best = vza.argmin(0)[None]
        out[ydoy] = {
            k: np.take_along_axis(np.stack([g[k] for g in grs]), best, 0)[0] for k in grs[0]
        }
    return [out[k] for k in sorted(out)]


def test_burn_signal_in_the_files(scenario, truth):
    """Burned pixels: NIR lower and MIR higher in the days after the burn than before."""
    comps = _daily_composites(scenario)
    nir = np.stack([c["Reflectance_M7"] for c in comps])
    mir = np.stack(
        [banet_mir(c["Radiance_M12"], c["Radiance_M15"], c["SolarZenithAngle"]) for c in comps]
    )
    bt = np.stack([_C2 / (_LT * np.log(_C1 / (_LT**5 * c["Radiance_M15"]) + 1.0)) for c in comps])
    clear = bt > 285  # crude cloud screen: clouds are cold
    bd = truth.burn_day
    t = np.arange(len(comps))[:, None, None]
    rel = t - bd[None]
    burned = (bd >= 0)[None]
    before = burned & (rel < 0) & clear
    after = burned & (rel >= 1) & (rel <= 10) & clear
    assert before.sum() > 50 and after.sum() > 50
    assert np.nanmedian(nir[after]) < np.nanmedian(nir[before]) - 0.08
    assert np.nanmedian(mir[after]) > np.nanmedian(mir[before]) + 0.04


# --------------------------------------------------------------------------- FIRMS
def _read_firms(files):
    rows = []
    for f in files:
        with open(f, newline="") as fh:
            rows.extend(csv.DictReader(fh))
    return rows


def test_firms_layout_matches_real(scenario, real_data):
    real_file = real_data / "firms" / "SUOMI_VIIRS_C2_Europe_24h_20220905.csv"
    real_header = real_file.read_text().splitlines()[0]
    rows = _read_firms(scenario.files["firms"])
    assert len(rows) > 20
    for f in scenario.files["firms"]:
        text = f.read_bytes()
        assert b"\r" not in text and text.endswith(b"\n")
        assert text.decode().splitlines()[0] == real_header == ",".join(FIRMS_COLUMNS)
    real_rows = list(csv.DictReader(open(real_file, newline="")))
    number = re.compile(r"^-?\d+(\.\d*[1-9])?$")  # rounded, trailing zeros dropped
    for sample in (real_rows, rows):
        for r in sample:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", r["acq_date"])
            assert re.fullmatch(r"\d{4}", r["acq_time"]) and int(r["acq_time"][:2]) < 24
            assert r["satellite"] == "N" and r["version"] == "2.0NRT"
            assert r["confidence"] in {"low", "nominal", "high"} and r["daynight"] in {"D", "N"}
            for col in (
                "latitude",
                "longitude",
                "bright_ti4",
                "scan",
                "track",
                "bright_ti5",
                "frp",
            ):
                assert number.match(r[col]), (col, r[col])
            assert len(r["latitude"].split(".")[-1]) <= 5 and len(r["frp"].split(".")[-1]) <= 2
    df = pd.DataFrame(rows)
    ti4, ti5, frp = (df[c].astype(float) for c in ("bright_ti4", "bright_ti5", "frp"))
    scan, track = df["scan"].astype(float), df["track"].astype(float)
    assert ti4.between(285, 367).all() and ti5.between(245, 335).all() and (ti4 > ti5).all()
    assert scan.between(0.3, 0.81).all() and track.between(0.35, 0.8).all()
    assert (frp > 0).all()
    assert set(df["daynight"]) == {"D", "N"}
    day = df["daynight"] == "D"
    assert frp[day].median() > frp[~day].median()  # daytime fires are stronger
    assert frp.mean() > frp.median()  # heavy right tail


def test_firms_detections_lie_on_that_days_front(scenario, truth):
    rows = _read_firms(scenario.files["firms"])
    lat = np.array([float(r["latitude"]) for r in rows])
    lon = np.array([float(r["longitude"]) for r in rows])
    day = np.array(
        [(np.datetime64(r["acq_date"]) - np.datetime64(START)).astype(int) for r in rows]
    )
    rr, cc = REGION.rowcol(lat, lon)
    h, w = REGION.shape
    for d in np.unique(day):
        front = np.zeros(h * w, bool)
        front[truth.fronts[d]] = True
        near = np.pad(front.reshape(h, w), 2)
        # within 2 px of that day's front (dilation by a 5x5 window)
        dil = np.zeros((h, w), bool)
        for dr in range(5):
            for dc in range(5):
                dil |= near[dr : dr + h, dc : dc + w]
        sel = day == d
        r = np.clip(rr[sel], 0, h - 1)
        c = np.clip(cc[sel], 0, w - 1)
        assert dil[r, c].all(), f"detections far from the front on day {d}"
    # and every day's file only holds that day
    for f in scenario.files["firms"]:
        date = re.search(r"_(\d{8})\.csv$", f.name).group(1)
        for r in _read_firms([f]):
            assert r["acq_date"].replace("-", "") == date


# --------------------------------------------------------------------------- MCD64A1
def test_mcd64_mirrors_the_real_file(scenario, real_data):
    real = hdf_structure(next((real_data / "mcd64a1").glob("MCD64A1.*.hdf")))
    assert scenario.files["mcd64"]
    for f in scenario.files["mcd64"]:
        assert re.fullmatch(r"MCD64A1\.A\d{7}\.h\d{2}v\d{2}\.006\.\d{13}\.hdf", f.name)
        ours = hdf_structure(f)
        assert ours["gattrs"] == real["gattrs"]
        assert ours["sds"] == real["sds"]  # names, dims, types, order, attributes, deflate
        assert struct_keys(ours["struct"]) == struct_keys(real["struct"])
        for key in ("GridName", "XDim", "YDim", "Projection", "ProjParams", "SphereCode"):
            assert struct_value(ours["struct"], key) == struct_value(real["struct"], key)


def _sinusoidal_tile_of(lat: float, lon: float) -> tuple[int, int]:
    r, t = 6371007.181, 1111950.5197665
    x = r * math.radians(lon) * math.cos(math.radians(lat))
    y = r * math.radians(lat)
    return int((x + 18 * t) // t), int((9 * t - y) // t)


def test_mcd64_burn_dates_equal_truth_at_cell_centres(scenario, truth):
    files = scenario.files["mcd64"]
    h, v = _sinusoidal_tile_of(40.34, -8.3)
    assert {re.search(r"\.h(\d\d)v(\d\d)\.", f.name).groups() for f in files} == {
        (f"{h:02d}", f"{v:02d}")
    }
    months = sorted(re.search(r"\.A(\d{7})\.", f.name).group(1) for f in files)
    assert months == ["2022182", "2022213"]  # July and August 2022
    r_, t_ = 6371007.181, 1111950.5197665
    cell = t_ / 2400
    i = np.arange(2400)
    y = (9 - v) * t_ - (i + 0.5) * cell
    x = (h - 18) * t_ + (i + 0.5) * cell
    lat = np.degrees(y / r_)[:, None] * np.ones((1, 2400))
    lon = np.degrees(x[None, :] / (r_ * np.cos(np.radians(lat))))
    row, col = REGION.rowcol(lat, lon)
    hh, ww = REGION.shape
    inside = (row >= 0) & (row < hh) & (col >= 0) & (col < ww)
    assert inside.sum() > 4 * hh * ww  # ~463 m cells in 0.01 deg pixels
    bd = truth.burn_day[np.clip(row, 0, hh - 1), np.clip(col, 0, ww - 1)]
    lc = truth.land_cover[np.clip(row, 0, hh - 1), np.clip(col, 0, ww - 1)]
    date = np.datetime64(START) + bd.astype("timedelta64[D]")
    for f in sorted(files):
        sd = SD(str(f), SDC.READ)
        burn = sd.select("Burn Date").get()
        qa = sd.select("QA").get()
        first, last = sd.select("First Day").get(), sd.select("Last Day").get()
        ga = sd.attributes()
        sd.end()
        month = np.datetime64(f"{ga['year']}-01-01") + int(ga["ProductStartDay"]) - 1
        in_month = (bd >= 0) & (date.astype("datetime64[M]") == month.astype("datetime64[M]"))
        doy = (date - date.astype("datetime64[Y]")).astype(int) + 1
        expected = np.where(lc == WATER, -2, np.where(in_month, doy, 0))
        assert np.array_equal(burn[inside], expected[inside])
        assert np.all(burn[~inside] == -1)
        assert ga["BurnedCells"] == int((burn > 0).sum()) and ga["BurnedCells"] > 0
        assert np.all(qa[inside & (burn >= 0)] == 3) and np.all(qa[burn == -2] == 0)
        b = burn > 0
        assert np.all((first[b] <= burn[b]) & (burn[b] <= last[b]))


# --------------------------------------------------------------------------- scenario
def test_manifest_lists_every_file_with_checksum(scenario):
    doc = json.loads(scenario.manifest.read_text())
    assert doc["complete"] is True and doc["seed"] == SEED
    assert doc["region"] == REGION.to_dict() and (doc["start"], doc["end"]) == (START, END)
    listed = [p for files in doc["files"].values() for p in files]
    assert sorted(listed) == sorted(doc["sha256"])
    for rel, digest in doc["sha256"].items():
        assert hashlib.sha256((scenario.out_dir / rel).read_bytes()).hexdigest() == digest
    on_disk = {
        p.relative_to(scenario.out_dir).as_posix()
        for p in scenario.out_dir.rglob("*")
        if p.is_file()
    }
    assert on_disk == set(listed) | {"scenario.json"}
    assert len(doc["files"]["firms"]) == N_DAYS
    assert scenario.ticks == [(d, N_DAYS) for d in range(1, N_DAYS + 1)]
    assert "T64" in scenario.summary()


def test_truth_dataset(scenario):
    ds = scenario.truth
    assert ds.rio.crs.to_epsg() == 4326 and ds.sizes == {"y": 64, "x": 64}
    burned = ds["burned"].values
    assert np.array_equal(np.isnat(ds["burn_date"].values), ~burned)
    assert np.all(ds["burn_doy"].values[~burned] == 0)
    d = ds["burn_date"].values[burned]
    assert np.all((d >= np.datetime64(START)) & (d <= np.datetime64(END)))
    doy = (d.astype("datetime64[D]") - d.astype("datetime64[Y]")).astype(int) + 1
    assert np.array_equal(ds["burn_doy"].values[burned], doy)
    assert np.array_equal(ds["fire_event"].values > 0, burned)
    again = simulate_truth(REGION, START, END, SEED)
    assert again.equals(ds.drop_vars([]))


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _viirs_contents(files: list[Path]) -> dict[tuple[str, str, str], bytes]:
    """Raw SDS bytes by (day, HHMM, layer): comparable across seeds (names differ)."""
    out = {}
    for f in files:
        m = VIIRS_NAME.match(f.name)
        out[(m.group(1) + m.group(2), m.group(3) + m.group(4), m.group(7))] = raw_layer(f).tobytes()
    return out


def test_same_seed_same_bytes_different_seed_different(tmp_path):
    region = Region("DET", (-8.62, 40.02, -8.3, 40.34), 0.01)
    kw = {"region": region, "start": "2022-07-30", "end": "2022-08-03"}
    sa = generate_scenario(out_dir=tmp_path / "a", seed=11, **kw)
    sb = generate_scenario(out_dir=tmp_path / "b", seed=11, **kw)
    sc = generate_scenario(out_dir=tmp_path / "c", seed=12, **kw)
    a, b = _tree_digest(sa.out_dir), _tree_digest(sb.out_dir)
    assert len(a) > 20 and a == b  # every file, byte for byte, in another folder
    # another seed: the same granules (the orbit does not depend on the seed) with other data
    ca, cc = _viirs_contents(sa.files["viirs"]), _viirs_contents(sc.files["viirs"])
    assert ca.keys() == cc.keys()
    bands = [k for k in ca if k[2].startswith(("Reflectance", "Radiance"))]
    assert all(ca[k] != cc[k] for k in bands)
    angles = [k for k in ca if k[2].endswith("ZenithAngle")]
    assert all(ca[k] == cc[k] for k in angles)
    assert not np.array_equal(sa.truth["land_cover"].values, sc.truth["land_cover"].values)


def test_rerun_replaces_stale_files_and_manifest(tmp_path, monkeypatch):
    region = Region("RR", (-8.62, 40.02, -8.38, 40.26), 0.01)
    first = generate_scenario(
        region, "2022-08-01", "2022-08-03", tmp_path, seed=1, products=["firms"]
    )
    assert len(first.files["firms"]) == 3
    # an interrupted run leaves no manifest behind
    import firesmoke.synthetic.scenario as scen

    def boom(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(scen, "write_firms_day", boom)
    with pytest.raises(RuntimeError):
        generate_scenario(region, "2022-08-02", "2022-08-03", tmp_path, seed=1, products=["firms"])
    assert not (tmp_path / "scenario.json").exists()
    monkeypatch.undo()
    second = generate_scenario(
        region, "2022-08-02", "2022-08-03", tmp_path, seed=1, products=["firms"]
    )
    names = sorted(p.name for p in (tmp_path / "firms").iterdir())
    assert names == sorted(p.name for p in second.files["firms"]) and len(names) == 2
    assert json.loads((tmp_path / "scenario.json").read_text())["start"] == "2022-08-02"


def test_region_from_json_path_and_demo_region(tmp_path):
    small = Region("JS", (-8.62, 40.02, -8.46, 40.18), 0.01)
    path = small.to_json(tmp_path)
    ds = simulate_truth(path, "2022-08-01", "2022-08-02", 0)
    assert ds.sizes == {"y": 16, "x": 16} and ds.attrs["region"] == "JS"
    assert demo_region().shape == (256, 256)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start": "2022-08-10", "end": "2022-08-01"}, "end"),
        ({"start": "2022-13-45"}, "start"),
        ({"region": "NOWHERE"}, "name"),
        ({"seed": 1.5}, "seed"),
        ({"seed": "3"}, "seed"),
        ({"seed": True}, "seed"),
        ({"seed": -1}, "seed"),
        ({"products": ["viirs", "landsat"]}, "products"),
    ],
)
def test_bad_arguments_raise_input_error(tmp_path, kwargs, field):
    args = {
        "region": REGION,
        "start": "2022-08-01",
        "end": "2022-08-02",
        "out_dir": tmp_path / "o",
        "seed": 0,
    }
    args.update(kwargs)
    with pytest.raises(InputError) as err:
        generate_scenario(**args)
    assert err.value.field == field
    assert not (tmp_path / "o" / "scenario.json").exists()


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for out in (blocker, blocker / "sub"):
        with pytest.raises(InputError) as err:
            generate_scenario(REGION, "2022-08-01", "2022-08-01", out)
        assert str(blocker) in str(err.value)
    with pytest.raises(InputError):
        simulate_truth(REGION, "2022-08-05", "2022-08-01", 0)
