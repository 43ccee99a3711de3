"""How skmf's fit time and memory grow with the number of ratings.

Fits skmf (``MFRegressor()`` defaults, and ``solver="sgd"``) on synthetic
ratings from ``skmf.datasets.make_ratings`` of 1M, 2.5M, 5M, 10M and 25M
ratings, each size and solver in a fresh process, and prints fit seconds,
seconds per million training ratings (also per iteration) and the peak RSS
increase of the fit, plus the fitted exponent of time ~ n^x.

Shapes follow MovieLens: (users, items) are interpolated log-linearly in the
number of ratings through ML-1M (6,040 x 3,706 at 1,000,209), ML-10M
(69,878 x 10,677 at 10,000,054) and ML-25M (162,541 x 59,047 at 25,000,095),
and extrapolated from the end segments. Each data set is split 90/10 at
random; the fit uses the 90 % and the RMSE is on the 10 %.

``--predict`` instead measures prediction throughput: it fits skmf briefly on
the ML-10M-shaped data and times ``predict`` on 10M (user, item) pairs.

Examples
--------
::

    python benchmarks/scaling.py --sizes 1m,2.5m,5m,10m
    python benchmarks/scaling.py --sizes 1m --variants '{}' '{"solver": "adam"}'
    python benchmarks/scaling.py --predict
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BENCH_DIR,
    ML_SHAPES,
    PeakMemory,
    Split,
    fmt,
    machine_info,
    make_synthetic,
    random_split,
    render_table,
    run_worker,
    wait_until_idle,
    write_json,
)

_ANCHORS = sorted((n, u, i) for u, i, n in ML_SHAPES.values())


def shape_for(n_ratings: int) -> tuple[int, int]:
    """(users, items) for ``n_ratings``, log-linear through the ML anchors."""
    x = math.log(n_ratings)
    j = 0 if n_ratings <= _ANCHORS[1][0] else 1
    (n0, u0, i0), (n1, u1, i1) = _ANCHORS[j], _ANCHORS[j + 1]
    t = (x - math.log(n0)) / (math.log(n1) - math.log(n0))
    users = math.exp(math.log(u0) + t * (math.log(u1) - math.log(u0)))
    items = math.exp(math.log(i0) + t * (math.log(i1) - math.log(i0)))
    return int(round(users)), int(round(items))


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1e3, "m": 1e6}.get(text[-1:], 1)
    return int(round(float(text.rstrip("km")) * scale))


def variant_label(params: dict) -> str:
    if not params:
        return "skmf"
    return "skmf[" + ",".join(f"{k}={v}" for k, v in params.items()) + "]"


def exponent(sizes, times):
    """Least-squares slope of log(time) against log(size)."""
    if len(sizes) < 2:
        return None
    x, y = np.log(np.asarray(sizes, float)), np.log(np.asarray(times, float))
    return float(np.polyfit(x, y, 1)[0])


# ------------------------------------------------------------------ fit mode
FIT_COLUMNS = [
    ("variant", "label", str),
    ("settings", "settings", lambda v: v or ""),
    ("ratings", "n_ratings", lambda v: f"{v / 1e6:.1f}M"),
    ("users", "n_users", lambda v: f"{v:,}"),
    ("items", "n_items", lambda v: f"{v:,}"),
    ("n_train", "n_train", lambda v: fmt(v) if v is None else f"{v:,}"),
    ("fit s", "fit_s", lambda v: fmt(v, 2)),
    ("iters", "n_iter", fmt),
    ("s/iter", "s_per_iter", lambda v: fmt(v, 3)),
    ("one iter s", "iter_s", lambda v: fmt(v, 4)),
    ("s per M", "s_per_m", lambda v: fmt(v, 3)),
    ("s per M per iter", "s_per_m_iter", lambda v: fmt(v, 4)),
    ("predict s", "predict_s", lambda v: fmt(v, 3)),
    ("peak MiB", "peak_mib", lambda v: fmt(v, 0)),
    ("peak RSS MiB", "peak_rss_mib", lambda v: fmt(v, 0)),
    ("MiB per M", "mib_per_m", lambda v: fmt(v, 0)),
    ("RMSE", "rmse", lambda v: fmt(v, 4)),
    ("other load %", "other_load_pct", lambda v: fmt(v, 0)),
]


def run_fit_scaling(args, header):
    tmp = Path(tempfile.mkdtemp(prefix="skmf-scaling-"))
    variants = [json.loads(v) for v in args.variants]
    rows = []
    try:
        for n in args.sizes:
            n_users, n_items = shape_for(n)
            start = time.perf_counter()
            data = make_synthetic(n_users, n_items, n, seed=0)
            split = random_split(f"synthetic {n:,}", *data, seed=0)
            del data
            gen_s = time.perf_counter() - start
            split_dir = split.save(tmp / f"n{n}")
            n_train = len(split.train_r)
            del split
            gc.collect()
            print(
                f"# {n:,} ratings: {n_users:,} users x {n_items:,} items "
                f"(generated in {gen_s:.1f} s)",
                flush=True,
            )
            for params in variants:
                label = variant_label(params)
                spec = {
                    "system": "skmf",
                    "label": f"{label}-{n}",
                    "params": {"device": args.device, **params},
                    "device": args.device,
                    "split_dir": str(split_dir),
                }
                busy = wait_until_idle(args.wait_idle)
                res = run_worker(spec, tmp / "runs", timeout=args.timeout, env=args.env)
                row = {
                    "label": label,
                    "params": params,
                    "n_ratings": n,
                    "n_users": n_users,
                    "n_items": n_items,
                    "n_train": n_train,
                    "generate_s": gen_s,
                    "busy_before": busy,
                    **res,
                }
                row["label"] = label
                if res.get("status") == "ok":
                    m = n_train / 1e6
                    row["s_per_m"] = res["fit_s"] / m
                    row["s_per_iter"] = res["fit_s"] / max(res["n_iter"], 1)
                    row["s_per_m_iter"] = row["s_per_iter"] / m
                    row["mib_per_m"] = res["peak_mib"] / m
                    frac = res.get("foreign_cpu_frac")
                    row["other_load_pct"] = None if frac is None else 100 * frac
                    print(
                        f"  {label:<24} fit {res['fit_s']:.2f} s "
                        f"({res['n_iter']} it, {row['s_per_m']:.3f} s/M), "
                        f"peak {res['peak_mib']:.0f} MiB, RMSE {res['rmse']:.4f}, "
                        f"other load {fmt(row['other_load_pct'], 0)}%",
                        flush=True,
                    )
                else:
                    print(f"  {label:<24} FAILED {res.get('error')}", flush=True)
                rows.append(row)
            shutil.rmtree(split_dir, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    table = render_table(FIT_COLUMNS, [r for r in rows if r.get("status") == "ok"])
    lines = [table, ""]
    for params in variants:
        label = variant_label(params)
        ok = [r for r in rows if r["label"] == label and r.get("status") == "ok"]
        sizes = [r["n_train"] for r in ok]

        def slope(key, rows=ok, sizes=sizes):
            return fmt(exponent(sizes, [max(r[key], 1e-9) for r in rows]), 2)

        parts = [
            f"{label}: fit time ~ n^{slope('fit_s')}",
            f"time per iteration ~ n^{slope('s_per_iter')}",
            f"peak memory ~ n^{slope('peak_mib')}",
        ]
        lines.append(", ".join(parts))
    return rows, "\n".join(lines)


# -------------------------------------------------------------- predict mode
def predict_worker(spec_path: str, out_path: str) -> None:
    """In a fresh process: fit briefly, then time predict on the pairs."""
    from skmf import MFRegressor

    spec = json.loads(Path(spec_path).read_text())
    split = Split.load(Path(spec["split_dir"]))
    X = np.column_stack([split.train_u, split.train_i])
    model = MFRegressor(device=spec["device"], random_state=0, **spec["params"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short fit: ConvergenceWarning
        model.fit(X, split.train_r)
    pairs = np.column_stack([split.test_u, split.test_i])
    times = []
    peak = None
    for _ in range(spec["repeats"]):
        gc.collect()
        with PeakMemory() as mem:
            start = time.perf_counter()
            pred = model.predict(pairs)
            times.append(time.perf_counter() - start)
        peak = (
            mem.peak_increase_mib if peak is None else max(peak, mem.peak_increase_mib)
        )
        del pred
    result = {
        "status": "ok",
        "n_predictions": int(len(pairs)),
        "predict_s": times,
        "best_s": min(times),
        "median_s": statistics.median(times),
        "predictions_per_s_best": len(pairs) / min(times),
        "predictions_per_s_median": len(pairs) / statistics.median(times),
        "peak_mib": peak,
        "fit_params": spec["params"],
        "n_components": model.n_components,
    }
    Path(out_path).write_text(json.dumps(result))


def run_predict(args, header):
    n = args.predict_n
    n_users, n_items = ML_SHAPES["ml-10m"][:2]
    tmp = Path(tempfile.mkdtemp(prefix="skmf-predict-"))
    try:
        # Fit on 1M ratings of the ML-10M shape, predict 10M distinct pairs.
        data = make_synthetic(n_users, n_items, n + 1_000_000, seed=0)
        users, items, ratings = data
        fit, new = slice(0, 1_000_000), slice(1_000_000, None)
        split = Split(
            "predict",
            users[fit],
            items[fit],
            ratings[fit],
            users[new],
            items[new],
            ratings[new],
        )
        del data, users, items, ratings
        split_dir = split.save(tmp / "split")
        del split
        spec = {
            "split_dir": str(split_dir),
            "device": args.device,
            "params": {"max_iter": 2},
            "repeats": args.repeats,
        }
        spec_path, out_path = tmp / "spec.json", tmp / "result.json"
        spec_path.write_text(json.dumps(spec))
        wait_until_idle(args.wait_idle)
        import subprocess

        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--predict-worker",
                str(spec_path),
                str(out_path),
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **args.env} if args.env else None,
        )
        if not out_path.exists():
            raise SystemExit(f"predict worker failed:\n{proc.stdout}\n{proc.stderr}")
        res = json.loads(out_path.read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res.update(n_users=n_users, n_items=n_items, device=args.device)
    text = (
        f"skmf predict on {args.device}: {res['n_predictions']:,} (user, item) pairs "
        f"(model of ML-10M shape {n_users:,} x {n_items:,}, k={res['n_components']}), "
        f"best of {args.repeats}: {res['best_s']:.3f} s = "
        f"{res['predictions_per_s_best'] / 1e6:.1f} M predictions/s "
        f"(median {res['predictions_per_s_median'] / 1e6:.1f} M/s), "
        f"peak RSS increase {res['peak_mib']:.0f} MiB"
    )
    return [res], text


# ---------------------------------------------------------------------- main
def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--predict-worker"]:
        predict_worker(argv[1], argv[2])
        return
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--sizes",
        default="1m,2.5m,5m,10m,25m",
        help="comma-separated numbers of ratings (k/m suffixes allowed)",
    )
    p.add_argument(
        "--variants",
        nargs="+",
        default=["{}", '{"solver": "sgd"}'],
        metavar="JSON",
        help="skmf parameter sets, one JSON object each (default: defaults, sgd)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--predict", action="store_true", help="measure predictions/s")
    p.add_argument("--predict-n", type=int, default=10_000_000)
    p.add_argument("--repeats", type=int, default=3, help="--predict: timed repeats")
    p.add_argument("--output", type=Path, default=None)
    p.add_argument("--timeout", type=float, default=None, help="seconds per fit")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment variable for the measured processes (repeatable), "
        "e.g. OMP_WAIT_POLICY=PASSIVE on a shared machine",
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for an idle machine",
    )
    args = p.parse_args(argv)
    args.env = dict(item.split("=", 1) for item in args.env)
    args.sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    mode = "predict" if args.predict else "scaling"
    output = args.output or BENCH_DIR / "results" / f"{mode}-{args.device}.json"

    header = {
        "mode": mode,
        "device": args.device,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "env": args.env,
        "machine": machine_info(),
        "data": "skmf.datasets.make_ratings(n_users, n_items, n_ratings, "
        "random_state=0): rank 10, noise 0.5, ratings clipped to [1, 5]; "
        "90/10 random split (RandomState(0).permutation)",
        "method": "each (size, variant) in a fresh process; fit_s = wall time of "
        "MFRegressor.fit on the 90 % (time.perf_counter); peak_mib = peak RSS "
        "increase of the process during fit (VmHWM reset before fit); "
        "s_per_m = fit_s per million training ratings",
    }
    m = header["machine"]
    print(
        f"# {mode} on {args.device} | {m['cpu']}, {m['logical_cores']} cores, "
        f"{m['ram_gib']} GiB | {m['os']} | Python {m['python']} | "
        f"torch {m['versions']['torch']} | {m['date']}",
        flush=True,
    )
    if args.predict:
        rows, text = run_predict(args, header)
    else:
        rows, text = run_fit_scaling(args, header)
    print()
    print(text)
    header["table"] = text.splitlines()
    write_json(output, {"header": header, "rows": rows})
    print(f"\nwrote {output}")


if __name__ == "__main__":
    main()
