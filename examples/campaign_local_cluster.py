"""A burned-area campaign on a Dask LocalCluster, with resume.

Takes the spec ``examples/campaign.toml``, points it at a generated synthetic scenario
(VIIRS HDF4 granules + FIRMS CSVs in their real formats) and runs it on a LocalCluster:
the cube is built and written to Zarr, one task per work unit (block x month) computes
BA-Net and writes its own region of the product store, the exports and the JSON report
are written. Running it a second time (``resume_campaign``) finds every unit in the
ledger and skips it: an interrupted campaign continues the same way.

To use an existing Dask cluster instead, connect a client to its scheduler and pass it::

    from distributed import Client
    client = Client("tcp://scheduler-host:8786")
    report = run_campaign(spec, client=client)

or set ``address = "tcp://scheduler-host:8786"`` in the spec's ``[cluster]`` table (the
inputs, weights and output folder must be on storage that every worker sees).

Run::

    python examples/campaign_local_cluster.py --out /tmp/fs-campaign
    python examples/campaign_local_cluster.py --out /tmp/fs-campaign-tiny --tiny
"""

from __future__ import annotations

import argparse
import os
import time
import tomllib
from pathlib import Path

SPEC = Path(__file__).with_name("campaign.toml")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    p.add_argument("--weights", default="banet_synthetic", help="BA-Net weights name or path")
    p.add_argument("--tiny", action="store_true",
                   default=os.environ.get("FIRESMOKE_EXAMPLES_TINY", "") not in ("", "0"),
                   help="64 x 256 px, one month (its own days only), 2 work units")
    return p.parse_args(argv)


def weights_or_random(name: str, out: Path) -> str:
    import torch

    from firesmoke.errors import WeightsError
    from firesmoke.models.banet import BANet
    from firesmoke.models.weights import find_weights, save_weights

    try:
        return str(find_weights(name))
    except WeightsError:
        print(f"NOTE: weights {name!r} not available: using a RANDOMLY INITIALISED BA-Net\n"
              "      (the products show the machinery working, not burned area).")
    torch.manual_seed(0)
    path = out / "banet_random.pt"
    save_weights(BANet().eval(), path, {"training_data": "none (random initialisation)"})
    return str(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from distributed import Client, LocalCluster

    from firesmoke.campaign.run import plan_campaign, resume_campaign, run_campaign
    from firesmoke.inference.runtime import inference_worker_env
    from firesmoke.synthetic import demo_region, generate_scenario

    t0 = time.perf_counter()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    region = demo_region()
    months = ("2020-08-01", "2020-09-30")
    days = ("2020-07-15", "2020-10-17")  # the 64-day BA-Net windows of August and September
    if args.tiny:  # a quick check: a small region, one month, only its own days observed
        region = region.subset("DEMO_TINY", 96, 160, 0, 256)
        months = days = ("2020-08-01", "2020-08-31")
    scn = generate_scenario(region, *days, out / "scenario", products=("viirs", "firms"))
    print(scn.summary())

    # the documented spec, pointed at the generated inputs
    spec = tomllib.loads(SPEC.read_text())
    spec.update(
        output=str(out / "campaign"),
        block_size=128 if args.tiny else 256,
        weights=[weights_or_random(args.weights, out)],
        regions=[{"name": region.name, "bbox": list(region.bbox), "pixel_size": region.pixel_size}],
        periods=[{"start": months[0], "end": months[1]}],
        inputs={"viirs": [str(scn.viirs_dir)], "firms": [str(scn.firms_dir)]},
    )
    if args.tiny:  # two 64 px BA-Net tiles per 64 x 128 px block (step 100 = the reference's)
        spec["products"]["burned"].update(tile=64, step=64)
    print(plan_campaign(spec).summary())

    # A LocalCluster here; Client("tcp://scheduler-host:8786") would use an existing one
    # (start its workers with firesmoke.inference.runtime.worker_environment() in their environment
    # for the faster CPU inference). inference_worker_env() does that for this cluster.
    with inference_worker_env():
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    with cluster, Client(cluster) as client:
        report = run_campaign(spec, client=client, progress=True)
        print(report.summary())
        again = resume_campaign(spec, client=client, progress=False)
        print(f"rerun: {len(again.skipped)} unit(s) already done, {len(again.done)} computed")
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
