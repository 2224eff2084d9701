"""Large-area reprocessing: plan (regions x periods x blocks), run on Dask, resume, report.

A campaign (spec: :mod:`firesmoke.campaign.spec`) turns raw inputs or existing cubes into
burned-area product stores, one Zarr v3 store per product and region. It runs in four
steps:

1. **plan** (:func:`plan_campaign`, indices first as in xbatcher): every region is cut
   into blocks of ``block_size`` px; a work unit is one block x one output period of one
   product, with a stable id (``PT.burned-monthly.2020-08.y000512.x001024``);
2. **cubes**: a region with a cube store uses it; otherwise its cube is built from the
   raw inputs (:func:`~firesmoke.cube.build.build_cube`; corrupt granules are skipped and listed)
   and written to ``<output>/cubes/<region>.zarr`` (resumable);
3. **units**: the store's template (metadata only) is written once; what the units of a
   store share (model, windows, paths) goes to every worker once (a worker plugin), and
   tasks of one or a few units are submitted to the Dask client in a bounded window
   (:func:`submit_window`, :func:`units_per_task`), so a planet-size campaign (10^5
   units) never sits whole in the scheduler. A unit whose input chunks were never
   written (no data) is empty without a read. Otherwise it reads, for the 64 days of each window,
   exactly the pixels of the tiles of the *global* tile plan that touch its block (the
   block plus a halo of less than one tile), runs the model over those tiles (so mosaics
   do not depend on the block size), reduces to
   ``confidence``/``burn_date``, writes its own aligned region of the store and then its
   ledger marker. A unit that fails (bad input) is reported and the others go on; a
   killed worker's units are rescheduled by Dask; a rerun skips the units in the ledger;
4. **finish**: stores are consolidated (plain ``xarray.open_zarr`` opens them, CRS
   included), requested exports are made (COG, quicklook PNG, fire events GeoJSON) and a
   JSON report listing done, skipped, empty and failed units is written beside the stores.

Blocks whose whole input window (their tiles, 64 days) holds no observation (no finite
reflectance, no FRP) are not run through the model when ``skip_empty`` is on (default):
they stay fill values (nodata: NaN confidence, burn date -1, 0 valid days) and no chunk
is written for them.
Peak memory per worker thread is bounded by the block size, never by the region: at most
``(block + 2 * tile)**2 * 64 days * 4 bands * 4 bytes`` for the window (0.6 GB for 512 px
blocks and 128 px tiles) plus the model's activations for one batch of tiles (about 1.5 GB
per tile for BA-Net's fast path on CPU, where the default batch is one tile). The worker
side of a unit is :mod:`firesmoke.campaign.worker`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from firesmoke._version import __version__
from firesmoke.burned.outputs import export_period
from firesmoke.burned.periods import period_coords
from firesmoke.campaign.plan import Plan, Slot, WorkUnit, plan_campaign
from firesmoke.campaign.report import Report
from firesmoke.campaign.spec import (
    BurnedProduct,
    CampaignSpec,
    RegionEntry,
    load_spec,
    with_scheduler,
)
from firesmoke.campaign.worker import CampaignContexts, UnitContext, run_planned_units, run_unit
from firesmoke.cube.build import build_cube, open_cube, write_cube
from firesmoke.errors import InputError
from firesmoke.grid import Region
from firesmoke.inference.cluster import dask_client, default_torch_threads
from firesmoke.inference.model import TileModel, resolve_device
from firesmoke.paths import check_no_symlinks, safe_join
from firesmoke.store import (
    Ledger,
    Location,
    StoreLock,
    create_template,
    finalize_store,
    open_store,
)
from firesmoke.store.location import read_small, write_small

__all__ = [
    "Plan",
    "Report",
    "Slot",
    "WorkUnit",
    "load_spec",
    "plan_campaign",
    "resume_campaign",
    "run_campaign",
    "run_unit",
    "with_scheduler",
]

log = logging.getLogger(__name__)

Progress = bool | Callable[[int, int, str], Any] | None


# =========================================================================== helpers
def _weights_model(spec: CampaignSpec) -> tuple[Any, list[dict[str, str]]]:
    from firesmoke.models.weights import (  # deferred: torch (~1.5 s) only when the model is built
        find_weights,
        load_weights,
    )

    if not spec.weights:
        raise InputError("no weights given (top-level `weights = [...]`)", path=spec.source,
                         field="weights")
    paths = [os.fspath(find_weights(w).resolve()) for w in spec.weights]
    prov = []
    for w, p in zip(spec.weights, paths, strict=True):
        _, meta = load_weights(p)
        prov.append({"weights": w, "path": p, "sha256": meta["sha256"]})
    return TileModel.from_weights(paths), prov  # BA-Net: prepare_for_inference by default


def _model_provenance(model: Any) -> list[dict[str, str]]:
    meta = getattr(model, "metadata", {}) or {}
    return [{"weights": str(getattr(model, "key", type(model).__name__)),
             "sha256": str(meta.get("sha256", ""))}]


def _fingerprint(product: BurnedProduct, region: Region, spec: CampaignSpec,
                 slots: tuple[Slot, ...], prov: list[dict[str, str]]) -> str:
    doc = {"product": {k: v for k, v in vars(product).items() if k not in ("batch_size", "device")},
           "region": region.to_dict(), "block_size": spec.block_size,
           "periods": [s.label for s in slots], "weights": [w["sha256"] or w["weights"] for w in prov],
           "period_coords": "datetime64"}  # stores with string periods are not resumed
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _store_attrs(p: BurnedProduct, r: Region, spec: CampaignSpec, slots: tuple[Slot, ...],
                 prov: list[dict[str, str]], cube_path: Path, started: str) -> dict[str, Any]:
    """Provenance attributes of a product store (as :func:`firesmoke.burned.predict.predict_burned`)."""
    return {
        "title": f"firesmoke burned area {p.name} {r.name}",
        "firesmoke_version": __version__,
        **p.rules.provenance(p.mode, p.tile, p.step, p.blend),
        "weights": json.dumps([w["weights"] for w in prov]),
        "weights_sha256": ",".join(w["sha256"] for w in prov),
        "inputs": os.fspath(cube_path), "region": r.name,
        "region_json": json.dumps(r.to_dict()), "campaign": spec.name,
        "campaign_fingerprint": _fingerprint(p, r, spec, slots, prov),
        "block_size": spec.block_size, "skip_empty": int(p.skip_empty),
        "created": started,
    }


def _template(region: Region, product: BurnedProduct, slots: tuple[Slot, ...], block: int,
              attrs: dict[str, Any]) -> Any:
    import dask.array as da

    P, (H, W) = len(slots), region.shape
    ds = region.coords_dataset().assign_coords(period_coords(
        [s.label for s in slots], [s.start for s in slots], [s.end for s in slots]))
    dims, chunks = ("period", "y", "x"), (P, H, W)  # metadata only: one lazy chunk
    rules = product.rules
    encoding = rules.variable_encoding()
    for name, var_attrs in rules.variable_attrs(product.effective_threshold).items():
        enc = {k: v for k, v in encoding[name].items() if v is not None}
        # blocks never written (no observation) read as the fill value: nodata, 0 valid days
        fill = da.full((P, H, W), enc.get("_FillValue", 0), dtype=enc["dtype"], chunks=chunks)
        ds[name] = (dims, fill, {**var_attrs, "grid_mapping": "spatial_ref"})
        ds[name].encoding = enc
    ds.attrs.update({"Conventions": "CF-1.8", **attrs})
    return ds


def _prepare_store(store: Path, template: Any, fingerprint: str, block: int, overwrite: bool) -> None:
    """Write the template, or check an existing store belongs to this campaign (resume)."""
    chunks = {"period": 1, "y": block, "x": block}
    ledger = Ledger(store)
    loc = ledger.location
    if loc.local:
        check_no_symlinks(store)  # workers write into it: nothing in it may point elsewhere
    if not overwrite and loc.is_zarr():
        try:
            existing = open_store(loc)
        except Exception as exc:  # template write interrupted: safe to redo if nothing is done
            if ledger.finished():
                raise InputError(f"store is unreadable ({exc}) but its ledger lists finished units; "
                                 "remove the store (or overwrite)", path=store) from exc
            log.warning("store %s unreadable (%s); writing its template again", store, exc)
            overwrite = True
        else:
            got = existing.attrs.get("campaign_fingerprint")
            if got != fingerprint:
                raise InputError(
                    "store was written by a different campaign configuration (region, product, "
                    "periods, block size or weights); use another output folder or overwrite",
                    path=store)
    elif not loc.is_zarr() and ledger.finished():
        log.warning("ledger of missing store %s cleared", store)
        ledger.clear()
    # Zarr v2: product stores GDAL's Zarr driver opens (as firesmoke.store.write_product)
    create_template(template, store, chunks=chunks, overwrite=overwrite, zarr_format=2)


def _progress_bar(progress: Progress, total: int, label: str) -> Callable[[int], None]:
    """A ``done -> None`` callback: the caller's ``(done, total, label)`` callable, log lines
    (``progress=True``; bars are the CLI's business) or nothing."""
    if callable(progress) and not isinstance(progress, bool):
        return lambda done: progress(done, total, label)
    if not progress:
        return lambda done: None
    step = max(1, total // 20)

    def update(done: int) -> None:
        if done % step == 0 or done >= total:
            log.info("%s: %d/%d", label, done, total)
    return update


def _cube_progress(progress: Progress, name: str) -> Callable[[int, int, str], None] | None:
    if callable(progress):
        return lambda done, total, what: progress(done, total, f"cube {name}")
    if not progress:
        return None
    bars: dict[str, Callable[[int], None]] = {}

    def cb(done: int, total: int, what: str) -> None:
        if "bar" not in bars:
            bars["bar"] = _progress_bar(True, total, f"cube {name} time chunks")
        bars["bar"](done)
    return cb


@contextlib.contextmanager
def _client(spec: CampaignSpec, client: Any) -> Iterator[tuple[Any, int | None]]:
    """The given client, or one from :func:`firesmoke.inference.cluster.dask_client` as the spec's
    ``[cluster]`` says (its scheduler address, or a new local cluster)."""
    c = spec.cluster
    if client is not None:
        yield client, c.torch_threads
        return
    if c.address:
        with contextlib.ExitStack() as stack:
            try:
                cl = stack.enter_context(dask_client(address=c.address))
            except InputError as exc:
                raise InputError(f"cannot reach the Dask scheduler at {c.address} "
                                 f"({exc.__cause__})", path=spec.source,
                                 field="cluster.address") from exc
            yield cl, c.torch_threads
        return
    n = c.n_workers or max(1, (os.cpu_count() or 2) // 2)
    threads = c.torch_threads or default_torch_threads(n, c.threads_per_worker)
    with dask_client(n_workers=n, threads_per_worker=c.threads_per_worker,
                     processes=c.processes, memory_limit=c.memory_limit, gpus=0) as cl:
        yield cl, threads


def _zero_days(spec: CampaignSpec, plan: Plan, cube_path: Path
               ) -> dict[str, dict[str, tuple[bool, ...]] | None]:
    """Per product, per window label, the days its rules feed as zeros (no VIIRS data;
    the cube is read once, and only for rules that need it); None for the others."""
    cube = None
    out: dict[str, dict[str, tuple[bool, ...]] | None] = {}
    for p in spec.products:
        if not p.rules.quantised:
            out[p.name] = None
            continue
        cube = open_cube(cube_path) if cube is None else cube
        windows = [w for slot in plan.slots[p.name] for w in slot.windows]
        out[p.name] = {k: tuple(bool(b) for b in v)
                       for k, v in p.rules.zero_days(cube, windows).items()}
    return out


def _check_devices(spec: CampaignSpec, local: bool) -> None:
    """Each product's device is valid (and present here when the workers are local)."""
    for p in spec.products:
        try:
            resolve_device(p.device, check_available=local)
        except InputError as exc:
            raise InputError(exc.reason, path=spec.source,
                             field=f"products.{p.name}.device") from exc


def _check_inputs(spec: CampaignSpec) -> None:
    fetched = set(spec.fetch.input_folders().values()) if spec.fetch else set()
    for i, p in enumerate(spec.inputs.viirs):
        if p not in fetched and not p.is_dir():
            raise InputError("VIIRS folder not found", path=p, field=f"inputs.viirs[{i}]")
    for i, p in enumerate(spec.inputs.firms):
        if p not in fetched and not p.exists():
            raise InputError("FIRMS path not found", path=p, field=f"inputs.firms[{i}]")


def _fetch_inputs(fetch: Any, region: Region, d0: dt.date, d1: dt.date, report: Report) -> None:
    """Download what the region's cube needs (a ``[fetch]`` table's
    :class:`~firesmoke.fetch.region.FetchSpec`); failed files become warnings."""
    res = fetch.fetch(region, d0, d1)
    for folder in fetch.input_folders().values():  # an empty answer is an empty folder
        folder.mkdir(parents=True, exist_ok=True)
    log.info("fetch %s: %s", region.name, res.summary())
    if res.failed:
        report.warnings.append(f"{region.name} fetch: {len(res.failed)} file(s) failed "
                               f"(see {res.manifest})")


def _ensure_cube(entry: RegionEntry, plan: Plan, report: Report, progress: Progress) -> Path:
    """Open the region's cube store, or build it from the raw inputs (resumable).

    A cube built by a campaign gets a record beside it (``<cube>.campaign.json``: days,
    inputs, skipped inputs) once it is complete; a rerun with the same days and inputs
    reuses it without scanning the inputs again.
    """
    spec, r = plan.spec, entry.region
    d0, d1 = plan.days[r.name]
    if entry.cube is not None:
        cube = open_cube(entry.cube)
        Region.from_dataset(cube).check_same_grid(r, f"cube {entry.cube} and region {r.name}")
        t = pd.DatetimeIndex(cube["time"].values)
        if len(t) == 0 or t[0].date() > d0 or t[-1].date() < d1:
            report.warnings.append(f"cube {entry.cube} does not cover {d0}..{d1}: missing days are "
                                   "treated as no observation")
        return entry.cube
    inp = spec.inputs
    path = plan.cubes[r.name]
    record = Location.of(path).sibling(".campaign.json").url
    key = {"region": r.to_dict(), "days": [str(d0), str(d1)], "composite": inp.composite,
           "viirs": [os.fspath(p) for p in inp.viirs], "firms": [os.fspath(p) for p in inp.firms]}
    text = read_small(record)
    if text is not None and Location.of(path).is_zarr():
        done = json.loads(text)
        if done.get("key") == key:
            log.info("cube %s is complete; reusing it", path)
            report.skipped_inputs += done["skipped_inputs"]
            report.warnings += done["warnings"]
            return path
    if spec.fetch is not None:
        _fetch_inputs(spec.fetch, r, d0, d1, report)
    ch = inp.cube_chunk
    cube = build_cube(r, d0, d1, viirs=key["viirs"] or None, firms=key["firms"] or None,
                      composite=inp.composite, chunks={"time": 16, "y": ch, "x": ch})
    skipped = [{"region": r.name, **s} for s in json.loads(cube.attrs.get("skipped_inputs", "[]"))]
    warnings = [f"{r.name} FIRMS: {w}" for w in json.loads(cube.attrs.get("firms_report", "[]"))
                if re.search(r";.*\b\d+ x ", w)]  # rows dropped (per-file summaries are not news)
    write_cube(cube, path, mode="auto", progress=_cube_progress(progress, r.name))
    write_small(record, json.dumps({"key": key, "skipped_inputs": skipped,
                                    "warnings": warnings}),
                root=spec.output if Location.of(record).local else None)
    report.skipped_inputs += skipped
    report.warnings += warnings
    return path


# =========================================================================== exports
def _export_slot(ds: Any, slot: Slot, region: Region, product: str, spec: CampaignSpec) -> list[Path]:
    ex = spec.exports
    return export_period(
        ds.isel(period=slot.index), safe_join(spec.output, "exports"),
        f"{product}_{region.name}_{slot.file_label}", geotiff=ex.geotiff,
        quicklook=ex.quicklook, events=ex.events, root=spec.output,
        title=f"firesmoke {product} {region.name} {slot.label} ({spec.name})",
        equal_area_crs=ex.equal_area_crs, min_pixels=ex.min_pixels)


# =========================================================================== run
def run_campaign(
    spec: CampaignSpec | str | os.PathLike[str] | Mapping[str, Any],
    client: Any = None,
    progress: Progress = True,
    model: Any = None,
    overwrite: bool = False,
) -> Report:
    """Run (or continue) a campaign and return its report.

    Parameters
    ----------
    spec
        A TOML path, a mapping or a :class:`~firesmoke.campaign.spec.CampaignSpec`.
    client
        A ``distributed.Client``; default: one on ``cluster.address`` or a new
        LocalCluster as the spec says (closed at the end).
    progress
        A callable ``(done, total, label)`` (the CLI draws bars with it); ``True``: log
        lines; ``False``: nothing.
    model
        Override the spec's weights with a :class:`~firesmoke.inference.model.TileModel` (or a
        picklable callable on tile batches), e.g. for tests.
    overwrite
        Start the product stores afresh instead of resuming.

    Returns
    -------
    Report
        Also written as ``<output>/<name>_report.json``. Failed units do not raise: see
        ``report.failed`` (rerun to retry them).

    Examples
    --------
    A spec (a TOML file such as ``examples/campaign.toml``, or a mapping) names the
    regions, periods, inputs and products; its plan is known before any data is read
    (``firesmoke campaign run spec.toml --dry-run`` prints it):

    >>> from firesmoke import load_spec, run_campaign
    >>> from firesmoke.campaign.plan import plan_campaign
    >>> spec = load_spec({
    ...     "name": "tiny", "output": "campaign-out", "regions": [{"name": "PT"}],
    ...     "periods": [{"start": "2020-08-01", "end": "2020-08-31"}],
    ...     "inputs": {"viirs": ["scenario/viirs750"], "firms": ["scenario/firms"]},
    ...     "products": {"burned": {"mode": "monthly"}}})
    >>> plan = plan_campaign(spec)
    >>> len(plan), [str(d) for d in plan.days["PT"]]  # work units; the cube's days
    (2, ['2020-07-15', '2020-09-16'])
    >>> report = run_campaign(spec)  # doctest: +SKIP
    >>> report.failed                # doctest: +SKIP
    []
    """
    t_start = time.perf_counter()
    spec = load_spec(spec)
    plan = plan_campaign(spec)
    report = Report(spec.name, str(spec.output), n_units=len(plan.units),
                    started=f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}")
    report.timed("plan", t_start)
    _check_inputs(spec)
    _check_devices(spec, local=client is None and not spec.cluster.address)
    model, prov = _weights_model(spec) if model is None else (model, _model_provenance(model))
    if Location.of(spec.output).local:
        Path(spec.output).mkdir(parents=True, exist_ok=True)
    with StoreLock(spec.output, purpose=f"campaign {spec.name}", check_links=False):
        return _run_locked(spec, plan, report, client, progress, model, prov, overwrite, t_start)


def _run_locked(spec: CampaignSpec, plan: Plan, report: Report, client: Any, progress: Progress,
                model: Any, prov: list[dict[str, str]], overwrite: bool, t_start: float) -> Report:
    """The body of :func:`run_campaign`, under the output folder's writer lock."""
    by_region = {e.region.name: e for e in spec.regions}
    region_failed: dict[str, str] = {}
    token = uuid.uuid4().hex[:12]
    contexts: dict[str, UnitContext] = {}
    with _client(spec, client) as (cl, torch_threads):
        t = time.perf_counter()
        for entry in spec.regions:
            r = entry.region
            try:
                cube_path = _ensure_cube(entry, plan, report, progress)
            except Exception as exc:  # bad inputs of one region: its units fail, others go on
                log.exception("region %s failed", r.name)
                region_failed[r.name] = f"{type(exc).__name__}: {exc}"
                continue
            zero = _zero_days(spec, plan, cube_path)
            for p in spec.products:
                store = plan.stores[(p.name, r.name)]
                slots = plan.slots[p.name]
                attrs = _store_attrs(p, r, spec, slots, prov, cube_path, report.started)
                _prepare_store(store, _template(r, p, slots, spec.block_size, attrs),
                               attrs["campaign_fingerprint"], spec.block_size, overwrite)
                report.stores.append(str(store))
                days = zero[p.name]
                contexts[_context_key(p.name, r.name)] = UnitContext(
                    os.fspath(cube_path), os.fspath(store), r.shape, p, model,
                    tuple(s.windows for s in slots), torch_threads,
                    None if days is None else tuple(tuple(days[w.label] for w in s.windows)
                                                    for s in slots), token)
        for u in plan.units:
            if u.region in region_failed:
                report.failed.append({"unit": u.id, "reason": region_failed[u.region]})
        t = report.timed("stores", t)
        _run_units(cl, plan, contexts, report, progress, spec.name, token)
        t = time.perf_counter()
    _finish(plan, report, by_region)
    report.timed("finish", t)
    report.elapsed_s = round(time.perf_counter() - t_start, 3)
    report.write(safe_join(spec.output, f"{spec.name}_report.json"))
    log.info("%s", report.summary())
    return report


def _context_key(product: str, region: str) -> str:
    return f"{product}/{region}"


def pending_units(plan: Plan, contexts: Mapping[str, UnitContext],
                  report: Report) -> list[tuple[str, WorkUnit]]:
    """The units still to run, with their context keys, in plan order.

    Each store's ledger is listed once (one listing, not one request per unit: resuming
    10^5 units on object storage is a few list pages); units it holds go to
    ``report.skipped``.
    """
    finished: dict[str, set[str]] = {}
    out = []
    for u in plan.units:
        key = _context_key(u.product, u.region)
        ctx = contexts.get(key)
        if ctx is None:  # its region failed
            continue
        if key not in finished:
            finished[key] = Ledger(ctx.store).finished()
        if Ledger._name(u.id) in finished[key]:
            report.skipped.append(u.id)
            continue
        out.append((key, u))
    return out


def submit_window(client: Any) -> int:
    """How many tasks a campaign keeps submitted at once: enough to keep every worker
    thread busy (4 per thread, at least 64), few enough that the scheduler never holds
    the whole campaign (``FIRESMOKE_CAMPAIGN_WINDOW`` overrides)."""
    env = os.environ.get("FIRESMOKE_CAMPAIGN_WINDOW")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise InputError(f"expected a positive integer, got {env!r}",
                             field="FIRESMOKE_CAMPAIGN_WINDOW") from None
    return max(64, 4 * _threads(client))


def units_per_task(n_units: int, threads: int, asked: int | None = None) -> int:
    """Units per Dask task: ``asked``, else 1 while there are fewer than 64 units per
    worker thread, growing to 16 for campaigns of 10^4..10^5 units per thread (each task
    then lasts long enough that the scheduler's per-task cost stays small, and a lost
    worker loses at most a few units per thread)."""
    if asked:
        return max(1, int(asked))
    return int(min(16, max(1, n_units // (64 * max(1, threads)))))


def _batched(items: Iterator[Any], k: int) -> Iterator[tuple[Any, ...]]:
    """Tuples of ``k`` items (the last one shorter) (``itertools.batched`` of 3.12)."""
    while batch := tuple(itertools.islice(items, k)):
        yield batch


def _threads(client: Any) -> int:
    try:
        return int(sum(client.nthreads().values()))
    except Exception:  # a client that cannot tell
        return 0


def _run_units(cl: Any, plan: Plan, contexts: dict[str, UnitContext], report: Report,
               progress: Progress, name: str, token: str) -> None:
    """Submit the pending units in a bounded window and collect results as they complete.

    The contexts (model, windows, stores) go to the workers once, in a worker plugin;
    a task carries a few :class:`WorkUnit` objects (:func:`units_per_task`). At most
    :func:`submit_window` tasks are in flight: the scheduler's and the client's memory do
    not grow with the campaign.
    """
    from distributed import as_completed

    if not contexts:
        return
    t = time.perf_counter()
    pending = pending_units(plan, contexts, report)
    t = report.timed("ledger", t)
    if not pending:
        return
    plugin = CampaignContexts(f"firesmoke-campaign-{token}", contexts)
    cl.register_plugin(plugin)
    tick = _progress_bar(progress, len(pending), f"{name} units")
    k = units_per_task(len(pending), _threads(cl), plan.spec.cluster.units_per_task)
    batches = (
        (key, tuple(u for _, u in group))
        for key, grp in itertools.groupby(pending, key=lambda ku: ku[0])
        for group in _batched(grp, k)
    )
    ids: dict[str, tuple[str, ...]] = {}

    def submit(key: str, units: tuple[WorkUnit, ...]) -> Any:
        fut = cl.submit(run_planned_units, plugin.name, key, units,
                        key=f"firesmoke-unit-{units[0].id}-{len(units)}-{token}", pure=False)
        ids[fut.key] = tuple(u.id for u in units)
        return fut

    running = as_completed([submit(*b) for b in itertools.islice(batches, submit_window(cl))])
    t = report.timed("submit", t)
    n = 0
    try:
        for fut in running:
            uids = ids.pop(fut.key)
            _collect(fut, uids, report)
            fut.release()
            nxt = next(batches, None)
            if nxt is not None:
                running.add(submit(*nxt))
            n += len(uids)
            tick(n)
        report.timed("units", t)
    except BaseException:
        cl.cancel(list(running.futures))
        raise
    finally:
        with contextlib.suppress(Exception):
            cl.unregister_worker_plugin(plugin.name)


def _collect(fut: Any, uids: tuple[str, ...], report: Report) -> None:
    """Put the results of a task's units in the report."""
    if fut.status in ("error", "cancelled"):
        exc = fut.exception() if fut.status == "error" else None
        reason = "cancelled" if exc is None else f"{type(exc).__name__}: {exc}"
        report.failed += [{"unit": uid, "reason": reason} for uid in uids]
        return
    for uid, res in zip(uids, fut.result(), strict=True):
        status = res["status"]
        if status == "failed":
            report.failed.append({"unit": uid, "reason": res["reason"]})
        else:
            {"done": report.done, "empty": report.empty, "skipped": report.skipped}[status].append(uid)


def _finish(plan: Plan, report: Report, by_region: dict[str, RegionEntry]) -> None:
    """Consolidate the stores and make the exports of the completed periods."""
    import xarray as xr

    spec = plan.spec
    failed = {f["unit"] for f in report.failed}
    for (product, region), store in plan.stores.items():
        if str(store) not in report.stores:
            continue
        finalize_store(store)
        if not spec.exports.any:
            continue
        if not Location.of(spec.output).local:
            report.warnings.append(f"{product} {region}: exports are written to local folders "
                                   "only; not made for an object-storage output")
            continue
        ds = xr.open_zarr(store)
        for slot in plan.slots[product]:
            if spec.exports.periods is not None and slot.label not in spec.exports.periods:
                continue
            units = [u for u in plan.units_of(product, region) if u.period == slot.label]
            bad = [u.id for u in units if u.id in failed]
            if bad:
                report.warnings.append(f"{product} {region} {slot.label}: not exported, "
                                       f"{len(bad)} unit(s) failed")
                continue
            try:
                report.exports += [str(p) for p in _export_slot(ds, slot, by_region[region].region,
                                                                product, spec)]
            except Exception as exc:  # an export asked for and not made: the run is not ok
                log.exception("export of %s %s %s failed", product, region, slot.label)
                report.failed.append({"unit": f"export {product} {region} {slot.label}",
                                      "reason": f"{type(exc).__name__}: {exc}"})


def resume_campaign(
    spec: CampaignSpec | str | os.PathLike[str] | Mapping[str, Any],
    client: Any = None,
    progress: Progress = True,
    model: Any = None,
) -> Report:
    """Continue an interrupted campaign: units in the stores' ledgers are skipped.

    Same as :func:`run_campaign` (which also resumes), but refuses to start a campaign
    that has no output yet, so a typo in the output folder does not silently start afresh.
    """
    spec = load_spec(spec)
    plan = plan_campaign(spec)
    if not any(Location.of(s).is_zarr() for s in plan.stores.values()):
        raise InputError("nothing to resume: no product store of this campaign exists yet",
                         path=spec.output)
    return run_campaign(spec, client=client, progress=progress, model=model)
