"""Sharded fits with 1 to 4 local gloo processes: memory, traffic, time.

A simulation of a multi-machine fit on one machine (the processes share its
cores, so this measures memory and communication, not speed-up): for each
number of processes N, the ratings are split in N contiguous parts, N
processes are started with torch's elastic launcher, and each runs
:func:`skmf.distributed.fit_shard` on its part. The script prints, per N, the
peak resident memory of each process (the largest over the processes, and
the increase over a process that only imported skmf and its part of the
data), the bytes each process received per sweep (measured by the
communicator) next to the model of the documentation, the one-time setup
traffic, and the wall time per sweep.

The data is ``skmf.datasets.make_ratings`` with the MovieLens 25M shape
(162,541 users x 59,047 items) and ``--n-ratings`` ratings (25,000,095 for
the full size; 2,500,000 by default). With ``--communities C``, users and
items fall into C equal communities (contiguous ranges of codes) and all but
``--across`` (default 1 %) of the ratings are moved to an item of the user's
community: data whose processes read few rows they do not own, where the
needed-rows exchange pays. ``--row-exchange`` is passed to ``fit_shard``.

Examples
--------
::

    python benchmarks/distributed.py
    python benchmarks/distributed.py --n-ratings 25000095 --nproc 1 2 4
    python benchmarks/distributed.py --communities 4 --nproc 2 4
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import numpy as np


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: ru_maxrss would count the
    launching process's peak, which Linux carries over fork and exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(folder: str, params: dict, row_exchange: str) -> dict:
    import torch.distributed as dist
    from sklearn.exceptions import ConvergenceWarning

    from skmf import MFRegressor
    from skmf.distributed import _shard, fit_shard

    dist.init_process_group("gloo", timeout=datetime.timedelta(minutes=30))
    rank = dist.get_rank()
    with np.load(Path(folder) / f"shard-{rank}.npz") as shard:
        X = np.column_stack([shard["users"], shard["items"]])
        y = shard["ratings"]
    base = _peak_rss_mb()
    dist.barrier()
    start = time.perf_counter()
    with warnings.catch_warnings():  # tol=1e-9: max_iter sweeps on purpose
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = fit_shard(
            MFRegressor(**params), X, y, gather="rank0", row_exchange=row_exchange
        )
    dist.barrier()
    seconds = time.perf_counter() - start
    stats = dict(_shard._LAST_STATS)
    dist.destroy_process_group()
    return {
        "rank": rank,
        "seconds": seconds,
        "peak_mb": _peak_rss_mb(),
        "base_mb": base,
        "stats": stats,
        "fitted": model is not None,
    }


def _model_bytes_per_sweep(stats, users, items, k, itemsize, nproc) -> float:
    """The documentation's model of the factor rows a process receives per
    sweep (k + 1 numbers a row), the largest over the processes: with
    "all_gather", the other processes' ranges of each side, padded to the
    largest; with "needed", the rows of the other processes its ratings read
    (the users of its items' ratings, the items of its users' ratings)."""
    if nproc == 1:
        return 0.0
    sides = {"user": (users, items, "item"), "item": (items, users, "user")}
    worst = 0
    for r in range(nproc):
        rows = 0
        for side, (codes, other, other_side) in sides.items():
            b = np.asarray(stats[f"{side}_bounds"])
            if stats["row_exchange"][side] == "all_gather":
                rows += (nproc - 1) * int(np.diff(b).max())
                continue
            ob = stats[f"{other_side}_bounds"]
            mine = (other >= ob[r]) & (other < ob[r + 1])
            read = np.unique(codes[mine])
            rows += int(((read < b[r]) | (read >= b[r + 1])).sum())
        worst = max(worst, rows)
    return worst * (k + 1) * itemsize


def _communities(users, items, n_users, n_items, c, across, seed=0):
    """Move all but ``across`` of the ratings to an item of the user's
    community (c equal ranges of the codes of each side)."""
    rng = np.random.default_rng(seed)
    ub, ib = -(-n_users // c), -(-n_items // c)
    home = users // ub
    stay = rng.random(len(users)) >= across
    moved = np.minimum(home * ib + items % ib, n_items - 1)
    return np.where(stay, moved, items)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-ratings", type=int, default=2_500_000)
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--max-iter", type=int, default=5)
    parser.add_argument("--solver", default="als")
    parser.add_argument("--communities", type=int, default=0)
    parser.add_argument("--across", type=float, default=0.01)
    parser.add_argument(
        "--row-exchange", default="auto", choices=["auto", "all_gather", "needed"]
    )
    args = parser.parse_args(argv)

    import torch
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from skmf.datasets import make_ratings

    data = make_ratings(
        n_users=162_541, n_items=59_047, n_ratings=args.n_ratings, random_state=0
    )
    codes_u = np.unique(data.X[:, 0], return_inverse=True)[1]
    codes_i = np.unique(data.X[:, 1], return_inverse=True)[1]
    if args.communities > 1:
        codes_i = _communities(
            codes_u, codes_i, codes_u.max() + 1, codes_i.max() + 1,
            args.communities, args.across,
        )  # fmt: skip
        codes_i = np.unique(codes_i, return_inverse=True)[1]
    params = {
        "solver": args.solver,
        "max_iter": args.max_iter,
        "tol": 1e-9,  # run max_iter sweeps
        "random_state": 0,
    }
    k = 16  # MFRegressor's default n_components
    print(
        f"# skmf.distributed on {platform.node() or 'this machine'}: "
        f"{os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{datetime.date.today()}; {len(data.y):,} ratings, "
        f"{codes_u.max() + 1:,} users x {codes_i.max() + 1:,} items, "
        f"solver={args.solver!r}, n_components={k}, {args.max_iter} sweeps, "
        f"float32, row_exchange={args.row_exchange!r}"
        + (
            f", {args.communities} communities, {args.across:.1%} across"
            if args.communities > 1
            else ""
        )
    )
    print(
        "| processes | exchange (users, items) | peak RSS per process (MiB) "
        "| RSS increase in the fit (MiB) | received per sweep per process (MB) "
        "| model (MB) | other traffic (MB) | s per sweep |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for nproc in args.nproc:
        with tempfile.TemporaryDirectory(prefix="skmf-bench-") as folder:
            cuts = np.linspace(0, len(data.y), nproc + 1).round().astype(int)
            for r in range(nproc):
                part = slice(cuts[r], cuts[r + 1])
                np.savez(
                    Path(folder) / f"shard-{r}.npz",
                    users=codes_u[part],
                    items=codes_i[part],
                    ratings=data.y[part],
                )
            config = LaunchConfig(
                min_nodes=1,
                max_nodes=1,
                nproc_per_node=nproc,
                rdzv_backend="c10d",
                rdzv_endpoint="localhost:0",
                run_id=uuid.uuid4().hex,
                max_restarts=0,
                monitor_interval=0.5,
            )
            os.environ.setdefault("OMP_NUM_THREADS", str(max(1, 2 // nproc)))
            out = elastic_launch(config, _worker)(folder, params, args.row_exchange)
            os.environ.pop("OMP_NUM_THREADS")
        runs = [out[r] for r in sorted(out)]
        stats = runs[0]["stats"]
        n_iter = stats["n_iter"]
        sweep = max(r["stats"]["bytes_received"].get("share_rows", 0) for r in runs)
        setup = max(
            sum(
                v
                for kind, v in r["stats"]["bytes_received"].items()
                if kind != "share_rows"
            )
            for r in runs
        )
        model = _model_bytes_per_sweep(stats, codes_u, codes_i, k, 4, nproc)
        modes = stats.get("row_exchange", {})
        modes = ", ".join(modes.get(side, "-") for side in ("user", "item"))
        print(
            f"| {nproc} | {modes} | {max(r['peak_mb'] for r in runs):,.0f} "
            f"| {max(r['peak_mb'] - r['base_mb'] for r in runs):,.0f} "
            f"| {sweep / n_iter / 1e6:.2f} | {model / 1e6:.2f} "
            f"| {setup / 1e6:.1f} | {max(r['seconds'] for r in runs) / n_iter:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
