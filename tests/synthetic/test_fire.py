"""Synthetic scenario physics: burn truth, sun/orbit geometry, radiometric model.

Everything here runs on a 64 x 64 px region and a few weeks; the file formats are
tested in ``test_synthetic_formats.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from firesmoke.grid import Region
from firesmoke.synthetic.fire import (
    BARE,
    WATER,
    simulate_burn_truth,
    simulate_land_cover,
    smooth_field,
)
from firesmoke.synthetic.orbit import (
    MAX_SENSOR_ZENITH,
    SWATH_HALF_WIDTH_KM,
    Overpass,
    destination_point,
    ground_track_heading,
    overpass_schedule,
    sensor_zenith_from_ground_distance,
    solar_position,
    track_coordinates,
)
from firesmoke.synthetic.surface import (
    brightness_temperature,
    planck_radiance,
    render_overpass,
    simulate_overpass,
    surface_reflectance,
)
from firesmoke.synthetic.viirs_gridded import LAYERS, encode_layer

REGION = Region("T64", (-8.62, 40.02, -7.98, 40.66), 0.01)
START = np.datetime64("2022-07-20")
N_DAYS = 30
SEED = 3

# BA-Net constants, typed in again from reference/banet.md (independent of the module)
_C1, _C2, _LM, _LT, _E0 = 1.1911e8, 1.439e4, 3.6966, 10.7343, 11.7881


def banet_mir(l12: np.ndarray, l15: np.ndarray, sza: np.ndarray) -> np.ndarray:
    """The MIR formula of reference/banet.md, in plain numpy."""
    t = _C2 / (_LT * np.log(_C1 / (_LT**5 * l15) + 1.0))
    b = _C1 * _LM**-5 / (np.exp(_C2 / (_LM * t)) - 1.0)
    rho = (l12 - b) / (_E0 * np.cos(np.radians(sza)) / np.pi - b)
    return np.where(rho < 0, 0.0, rho)


@pytest.fixture(scope="module")
def truth():
    return simulate_burn_truth(REGION, START, N_DAYS, SEED)


# --------------------------------------------------------------------------- burn truth
def test_region_is_64_px():
    assert REGION.shape == (64, 64)


def test_smooth_field_statistics():
    rng = np.random.default_rng(0)
    f = smooth_field(rng, (256, 256), 6.0)
    assert abs(f.mean()) < 0.3 and 0.6 < f.std() < 1.4
    # smooth: neighbours strongly correlated, unlike white noise
    assert np.corrcoef(f[:, :-1].ravel(), f[:, 1:].ravel())[0, 1] > 0.9


def test_land_cover_classes_and_fuel():
    lc = simulate_land_cover(Region("LC", (-8.0, 40.2, -5.44, 42.76), 0.01), seed=1)
    codes, counts = np.unique(lc["land_cover"], return_counts=True)
    assert set(codes) == {0, 1, 2, 3}  # water, bare, shrub, forest all present
    frac = dict(zip(codes.tolist(), (counts / counts.sum()).tolist(), strict=True))
    assert 0.005 < frac[WATER] < 0.15 and 0.005 < frac[BARE] < 0.2
    unburnable = (lc["land_cover"] == WATER) | (lc["land_cover"] == BARE)
    assert np.all(lc["fuel"][unburnable] == 0)
    assert np.all(lc["fuel"][~unburnable] > 0) and lc["fuel"].max() <= 1


def test_burn_truth_invariants(truth):
    bd = truth.burn_day
    assert bd.shape == REGION.shape and bd.dtype == np.int16
    burned = bd >= 0
    assert burned.any() and (~burned).any()  # some pixels burn, some never do
    assert bd.min() >= -1 and bd.max() < N_DAYS
    # unburnable land never burns
    assert not np.any(burned & ((truth.land_cover == WATER) | (truth.land_cover == BARE)))
    # event ids exactly on burned pixels
    assert np.array_equal(truth.fire_event > 0, burned)
    assert len(truth.events) >= 3
    # arrival time and burn day agree
    assert np.array_equal(np.floor(truth.arrival[burned]).astype(int), bd[burned])
    assert np.all(np.isnan(truth.arrival[~burned]))


def test_each_event_spreads_from_its_ignition_within_its_duration(truth):
    for ev in truth.events:
        mask = truth.fire_event == ev.id
        if not mask.any():
            continue
        assert mask[ev.row, ev.col], "the ignition pixel belongs to its event"
        days = truth.burn_day[mask]
        assert days.min() == ev.ignition_day
        assert days.max() <= ev.ignition_day + ev.duration_days - 1
        # a fire spreads through neighbours: one 8-connected component
        _, n = ndimage.label(mask, structure=np.ones((3, 3)))
        assert n == 1


def test_fronts_match_burn_days(truth):
    flat_bd = truth.burn_day.ravel()
    for d in range(N_DAYS):
        front = truth.fronts[d]
        new = np.flatnonzero(flat_bd == d)
        assert np.isin(new, front).all(), (
            "pixels burning for the first time are on that day's front"
        )
        assert np.all(flat_bd[front] <= d) and np.all(flat_bd[front] >= 0)
        assert np.isin(truth.night_fronts[d], front).all()
    assert sum(f.size for f in truth.fronts) >= (flat_bd >= 0).sum()


def test_wind_elongates_large_fires():
    # with a strong constant wind the biggest scars are longer along the wind than across
    tr = simulate_burn_truth(Region("W", (-8.0, 40.2, -5.44, 42.76), 0.01), START, 40, 4)
    ratios = []
    for ev in tr.events:
        rr, cc = np.nonzero(tr.fire_event == ev.id)
        if rr.size < 300:
            continue
        cov = np.cov(np.vstack([rr, cc]).astype(float))
        ev_ = np.sort(np.linalg.eigvalsh(cov))
        ratios.append(math.sqrt(ev_[1] / ev_[0]))
    assert ratios and max(ratios) > 1.3


def test_truth_deterministic_and_seed_dependent(truth):
    again = simulate_burn_truth(REGION, START, N_DAYS, SEED)
    assert np.array_equal(again.burn_day, truth.burn_day)
    assert np.array_equal(again.land_cover, truth.land_cover)
    other = simulate_burn_truth(REGION, START, N_DAYS, SEED + 1)
    assert not np.array_equal(other.land_cover, truth.land_cover)


# --------------------------------------------------------------------------- geometry
def _meeus_sza(t: np.datetime64, lat: float, lon: float) -> float:
    """Independent solar zenith: the Julian-century (Meeus / NOAA spreadsheet) algorithm."""
    jd = (t - np.datetime64("2000-01-01T12:00")).astype("timedelta64[s]").astype(
        float
    ) / 86400.0 + 2451545.0
    jc = (jd - 2451545.0) / 36525.0
    l0 = (280.46646 + jc * (36000.76983 + jc * 0.0003032)) % 360
    m = 357.52911 + jc * (35999.05029 - 0.0001537 * jc)
    e = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    mr = math.radians(m)
    c = (
        math.sin(mr) * (1.914602 - jc * (0.004817 + 0.000014 * jc))
        + math.sin(2 * mr) * (0.019993 - 0.000101 * jc)
        + math.sin(3 * mr) * 0.000289
    )
    omega = 125.04 - 1934.136 * jc
    app = l0 + c - 0.00569 - 0.00478 * math.sin(math.radians(omega))
    eps0 = 23 + (26 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))) / 60) / 60
    eps = eps0 + 0.00256 * math.cos(math.radians(omega))
    decl = math.asin(math.sin(math.radians(eps)) * math.sin(math.radians(app)))
    y = math.tan(math.radians(eps / 2)) ** 2
    l0r = math.radians(l0)
    eot = 4 * math.degrees(
        y * math.sin(2 * l0r)
        - 2 * e * math.sin(mr)
        + 4 * e * y * math.sin(mr) * math.cos(2 * l0r)
        - 0.5 * y * y * math.sin(4 * l0r)
        - 1.25 * e * e * math.sin(2 * mr)
    )
    minutes = (t - t.astype("datetime64[D]")).astype("timedelta64[s]").astype(float) / 60.0
    tst = (minutes + eot + 4 * lon) % 1440
    ha = math.radians(tst / 4 - 180 if tst >= 0 else tst / 4 + 180)
    phi = math.radians(lat)
    cosz = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    return math.degrees(math.acos(cosz))


@pytest.mark.parametrize(
    ("when", "lat", "lon"),
    [
        ("2022-03-20T12:00", 40.0, 0.0),
        ("2022-06-21T13:30", 40.0, -8.0),
        ("2022-12-21T11:00", 40.0, 10.0),
        ("2022-09-05T02:00", -30.0, 140.0),
        ("2022-07-10T22:00", 64.0, -150.0),
    ],
)
def test_solar_zenith_matches_independent_formula(when, lat, lon):
    t = np.datetime64(when)
    sza, _ = solar_position(t, lat, lon)
    assert float(sza) == pytest.approx(_meeus_sza(t, lat, lon), abs=0.05)


def test_solar_zenith_by_latitude_and_season():
    noon = {m: np.datetime64(f"2022-{m}-21T12:00") for m in ("03", "06", "12")}
    # local noon at lon 0: zenith ~ |lat - declination|
    assert float(solar_position(noon["06"], 40.0, 0.0)[0]) == pytest.approx(40.0 - 23.44, abs=0.6)
    assert float(solar_position(noon["12"], 40.0, 0.0)[0]) == pytest.approx(40.0 + 23.44, abs=0.6)
    assert float(solar_position(noon["03"], 0.0, 0.0)[0]) < 3.0
    # higher sun in summer, lower at higher latitude; morning sun in the east
    assert solar_position(noon["06"], 60.0, 0.0)[0] > solar_position(noon["06"], 40.0, 0.0)[0]
    _, az_am = solar_position(np.datetime64("2022-06-21T08:00"), 40.0, 0.0)
    _, az_pm = solar_position(np.datetime64("2022-06-21T16:00"), 40.0, 0.0)
    assert 45 < float(az_am) < 135 and 225 < float(az_pm) < 315


def test_sensor_zenith_across_the_swath():
    d = np.linspace(0, SWATH_HALF_WIDTH_KM, 50)
    vza = sensor_zenith_from_ground_distance(d)
    assert vza[0] == 0.0 and np.all(np.diff(vza) > 0)
    assert 69.0 < MAX_SENSOR_ZENITH < 71.0
    assert 1450 < SWATH_HALF_WIDTH_KM < 1600
    # independent: law of sines in the Earth-centre / satellite / pixel triangle
    r, h = 6371.0, 829.0
    g = 800.0 / r
    slant = math.sqrt(r * r + (r + h) ** 2 - 2 * r * (r + h) * math.cos(g))
    zen = math.degrees(math.asin((r + h) * math.sin(g) / slant))
    assert float(sensor_zenith_from_ground_distance(800.0)) == pytest.approx(zen, abs=1e-6)


def test_track_coordinates_spherical_pythagoras():
    """Cross/along-track legs and the great-circle distance obey cos c = cos a cos b."""
    rng = np.random.default_rng(5)
    lat = rng.uniform(-50, 60, 500)
    lon = rng.uniform(-30, 30, 500)
    xt, at = track_coordinates(lat, lon, 35.0, -5.0, -14.0)
    # independent great-circle distance (haversine)
    p1, p2 = math.radians(35.0), np.radians(lat)
    dl = np.radians(lon + 5.0)
    hav = np.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    dist = 2 * np.arcsin(np.sqrt(hav))
    r = 6371.0
    assert np.allclose(np.cos(xt / r) * np.cos(at / r), np.cos(dist), atol=1e-12)
    # points straight ahead along the heading have no cross-track offset
    ahead_lat, ahead_lon = destination_point(35.0, -5.0, -14.0, np.array([100.0, 500.0]))
    xt2, at2 = track_coordinates(ahead_lat, ahead_lon, 35.0, -5.0, -14.0)
    assert np.allclose(xt2, 0, atol=1e-6) and np.allclose(at2, [100, 500])
    right_lat, right_lon = destination_point(35.0, -5.0, 76.0, 300.0)
    assert float(track_coordinates(right_lat, right_lon, 35.0, -5.0, -14.0)[0]) == pytest.approx(
        300.0
    )


def test_overpass_schedule_daytime_passes():
    counts = []
    for k in range(20):
        passes = overpass_schedule(REGION, START + k)
        counts.append(len(passes))
        for p in passes:
            assert p.daynight == "D" and p.ascending
            hours = (p.time - p.time.astype("datetime64[D]")).astype("timedelta64[m]").astype(
                int
            ) / 60
            assert 11.5 < hours < 16.5  # ~13:25 local solar time at ~8 W
            sza, _ = solar_position(p.time, p.nadir_lat, p.nadir_lon)
            assert float(sza) < 85
        if len(passes) == 2:
            assert abs(passes[0].nadir_lon - passes[1].nadir_lon) > 20
    assert set(counts) <= {1, 2, 3} and 1 in counts and 2 in counts
    night = overpass_schedule(REGION, START, night=True)
    assert night and all(not p.ascending and p.daynight == "N" for p in night)
    # sun-synchronous retrograde orbit: ascending NNW, descending SSW
    assert -30 < ground_track_heading(40.0, True) < 0
    assert -180 < ground_track_heading(40.0, False) < -150


def _edge_overpass(region: Region, day: np.datetime64) -> Overpass:
    """A pass whose swath edge cuts the region in two."""
    lat_c = 0.5 * (region.bbox[1] + region.bbox[3])
    lon_c = 0.5 * (region.bbox[0] + region.bbox[2])
    heading = ground_track_heading(lat_c, True)
    dlon = math.degrees(SWATH_HALF_WIDTH_KM / (6371.0 * math.cos(math.radians(lat_c))))
    base = overpass_schedule(region, day)[0]
    return Overpass(base.time, base.orbit, lat_c, lon_c - dlon * 1.005, heading, True, "D")


def test_pixels_outside_the_swath_are_nan_in_all_fields(truth):
    ov = _edge_overpass(REGION, truth.date(5))
    f = render_overpass(truth, 5, ov, np.random.default_rng(0))
    valid = f["valid"]
    assert 0.1 < valid.mean() < 0.9, "the swath edge crosses the region"
    for key in (
        "M05",
        "M07",
        "M10",
        "M12",
        "M15",
        "solar_zenith",
        "sensor_zenith",
        "mir",
        "temperature",
    ):
        assert np.all(np.isnan(f[key][~valid])), key
        assert np.all(np.isfinite(f[key][valid])), key
    assert np.nanmax(f["sensor_zenith"]) > 68.0
    assert np.all(f["granule"][~valid] == -1)


# --------------------------------------------------------------------------- radiometry
def test_planck_inversion_roundtrip():
    t = np.linspace(200.0, 340.0, 50)
    for wl in (3.6966, 10.7343):
        assert np.allclose(brightness_temperature(wl, planck_radiance(wl, t)), t, atol=1e-9)


def test_simulated_overpass_fields(truth):
    f = simulate_overpass(truth, 3, 0)
    v = f["valid"]
    assert v.any()
    assert (
        np.nanmin(f["sensor_zenith"]) >= 0
        and np.nanmax(f["sensor_zenith"]) <= MAX_SENSOR_ZENITH + 1e-3
    )
    sza = f["solar_zenith"][v]
    assert 10 < sza.min() and sza.max() < 40  # late July, 40 N, early afternoon
    for band in ("M05", "M07", "M10"):
        assert np.nanmin(f[band]) >= 0 and np.nanmax(f[band]) < 1.5
    bt15 = brightness_temperature(10.7343, f["M15"][v])
    assert 200 <= bt15.min() and bt15.max() <= 340.01
    with pytest.raises(IndexError):
        simulate_overpass(truth, 3, 7)


def test_mir_recovered_from_m12_m15(truth):
    f = simulate_overpass(truth, 8, 0)
    v = f["valid"]
    rho = banet_mir(
        f["M12"][v].astype(np.float64), f["M15"][v].astype(np.float64), f["solar_zenith"][v]
    )
    assert np.allclose(rho, f["mir"][v], atol=2e-4)
    # after uint16 quantisation with the real scales: still within the quantisation error
    dec = {}
    for spec in LAYERS.values():
        if spec.dtype != "uint16" or spec.field not in ("M12", "M15"):
            continue
        raw = encode_layer(f[spec.field], spec)
        dec[spec.field] = raw.astype(np.float64) * np.float32(spec.scale) + np.float32(spec.offset)
    rho_q = banet_mir(dec["M12"][v], dec["M15"][v], f["solar_zenith"][v])
    err = np.abs(rho_q - f["mir"][v])
    assert np.percentile(err, 99) < 2e-3 and err.max() < 5e-3


def test_noise_generator_changes_only_noise(truth):
    a = simulate_overpass(truth, 4, 0)
    b = simulate_overpass(truth, 4, 0)
    c = simulate_overpass(truth, 4, 0, rng=123)
    assert np.array_equal(a["M07"], b["M07"], equal_nan=True)
    assert np.array_equal(a["cloud"], c["cloud"], equal_nan=True)
    assert not np.array_equal(a["M07"], c["M07"], equal_nan=True)
    assert np.nanmax(np.abs(a["M07"] - c["M07"])) < 0.05


def test_burned_pixels_nir_drop_mir_rise(truth):
    """Surface model: after the fire arrives NIR drops, MIR and red rise; then recovery."""
    burned = truth.burn_day >= 0
    arr = np.where(burned, truth.arrival, 0.0)
    before = surface_reflectance(truth, arr - 3.0, truth.date(0))
    after = surface_reflectance(truth, arr + 0.5, truth.date(0))
    later = surface_reflectance(truth, arr + 60.0, truth.date(0))
    d_nir = after["nir"][burned] - before["nir"][burned]
    d_mir = after["mir"][burned] - before["mir"][burned]
    d_red = after["red"][burned] - before["red"][burned]
    assert np.all(d_nir < -0.05) and np.median(d_nir) < -0.1
    assert np.all(d_mir > 0.03) and np.median(d_mir) > 0.06
    assert np.median(d_red) > 0
    # recovery: two months later, most of the NIR drop is gone
    rec = later["nir"][burned] - before["nir"][burned]
    assert np.median(np.abs(rec)) < 0.5 * np.median(np.abs(d_nir))
    # unburned pixels unchanged by the burn model
    assert np.array_equal(before["nir"][~burned], after["nir"][~burned])


def test_clouds_bright_and_cold_shadows_dark(truth):
    found = False
    for d in range(N_DAYS):
        for k in range(len(overpass_schedule(REGION, truth.date(d)))):
            f = simulate_overpass(truth, d, k)
            v = f["valid"]
            cloudy = v & (f["cloud"] > 0.9)
            clear = v & (f["cloud"] == 0) & (f["shadow"] == 0) & (truth.land_cover >= 2)
            shadow = v & (f["shadow"] > 0.6) & (truth.land_cover >= 2)
            if cloudy.sum() < 20 or clear.sum() < 20 or shadow.sum() < 5:
                continue
            found = True
            assert np.mean(f["M05"][cloudy]) > np.mean(f["M05"][clear]) + 0.2
            assert np.mean(f["M07"][cloudy]) > np.mean(f["M07"][clear])
            bt = brightness_temperature(10.7343, f["M15"].astype(np.float64))
            assert np.mean(bt[cloudy]) < np.mean(bt[clear]) - 10
            assert np.mean(f["M07"][shadow]) < np.mean(f["M07"][clear]) - 0.05
            break
        if found:
            break
    assert found, "no day with clouds, clear sky and shadows in 30 days"
