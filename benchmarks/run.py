"""Side-by-side benchmark of skmf and its peers on one data set.

Every system fits the same training ratings and predicts the same test pairs,
one after another, each in a fresh Python process (so that memory peaks do
not mix). For each it reports the test RMSE, the fit and predict wall times
(``time.perf_counter``), the peak RSS increase during fit and the ratio of
skmf's time to the peer's.

Examples
--------
::

    python benchmarks/run.py --dataset ml-1m --device cpu
    python benchmarks/run.py --dataset ml-100k --folds 1 --systems skmf,libmf
    python benchmarks/run.py --dataset ml-1m --skmf-params '{"solver": "sgd"}'
    python benchmarks/run.py --dataset ratings.csv --systems skmf,surprise

See benchmarks/README.md for installing the peers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BENCH_DIR,
    DATASETS,
    dataset_label,
    default_data_dir,
    fmt,
    load_splits,
    machine_info,
    render_table,
    run_worker,
    wait_until_idle,
    write_json,
)
from _systems import SYSTEMS, availability  # noqa: E402

METHOD = {
    "fit_s": "wall seconds of fit, from in-memory NumPy arrays to a fitted model "
    "(library-specific data conversion included; imports and Spark session "
    "start-up excluded)",
    "predict_s": "wall seconds to predict the test pairs into a NumPy array",
    "startup_s": "SparkSession start-up (Spark only), not in fit_s",
    "peak_mib": "peak RSS increase of the Python process during fit (kernel "
    "VmHWM reset via /proc/self/clear_refs before fit); Spark's JVM is a "
    "child process, its peak RSS is in the notes",
    "ratios": "skmf_fit/peer_fit and skmf_predict/peer_predict use the skmf "
    "defaults row; < 1 means skmf is faster. d_rmse = skmf_rmse - peer_rmse "
    "(< 0: skmf is more accurate)",
    "aggregation": "each (system, fold, repeat) runs in a fresh process; times are "
    "the median over repeats, then the mean over folds; RMSE the mean over all "
    "runs; peak the max",
    "other_load_pct": "max over runs of the CPU share (of all cores) used by "
    "other processes while the run's process ran (machine busy time from "
    "/proc/stat minus the run's own CPU, JVM included); high values mean the "
    "timing was disturbed",
    "unknown_ids": "test users/items absent from training: mean + known bias "
    "(skmf, Surprise, Cornac, torch recipe), mean (LIBMF, Spark cold-start NaN)",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--dataset",
        default="ml-1m",
        help=f"one of {', '.join(DATASETS)}, or a ratings file "
        "(csv/tsv/'::'; columns user, item, rating by position)",
    )
    p.add_argument(
        "--device", default="cpu", help="device of skmf and the torch recipe"
    )
    p.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated subset of {','.join(SYSTEMS)} (default: all)",
    )
    p.add_argument(
        "--skmf-params",
        action="append",
        default=[],
        metavar="JSON",
        help='extra skmf variant, e.g. \'{"solver": "sgd"}\' (repeatable); '
        "labelled skmf[...]",
    )
    p.add_argument(
        "--repeats", type=int, default=1, help="runs per system (median time)"
    )
    p.add_argument("--folds", type=int, default=5, help="ml-100k: use splits u1..uN")
    p.add_argument("--seed", type=int, default=0, help="seed of the 90/10 split")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder holding ml-100k/ and ml-1m/ (default: $SKMF_DATA, else "
        "~/skmf_data; downloaded there when absent)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=None,
        help="JSON results path (default benchmarks/results/<dataset>-<device>.json)",
    )
    p.add_argument("--timeout", type=float, default=None, help="seconds per run")
    p.add_argument("--spark-driver-memory", default="4g")
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
        help="before each run, wait up to this long for the machine to be idle "
        "(< 15%% busy over 1-2 s); 0 to skip (default 120)",
    )
    p.add_argument("--keep-tmp", action="store_true", help="keep split files and logs")
    args = p.parse_args(argv)
    args.env = dict(item.split("=", 1) for item in args.env)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in args.systems:
        if s not in SYSTEMS:
            p.error(f"unknown system {s!r}; choose from {', '.join(SYSTEMS)}")
    if not 1 <= args.folds <= 5:
        p.error("--folds must be in 1..5")
    return args


def _pct(frac):
    return None if frac is None else 100.0 * frac


def variant_label(params: dict) -> str:
    return "skmf[" + ",".join(f"{k}={v}" for k, v in params.items()) + "]"


def build_entries(args):
    """(system, label, params) in run order."""
    entries = []
    for system in args.systems:
        if system == "skmf":
            entries.append(("skmf", "skmf", {}))
            for text in args.skmf_params:
                params = json.loads(text)
                entries.append(("skmf", variant_label(params), params))
        elif system == "spark":
            entries.append(
                ("spark", "spark", {"driver_memory": args.spark_driver_memory})
            )
        else:
            entries.append((system, system, {}))
    return entries


def aggregate(label, system, runs):
    ok = [r for r in runs if r.get("status") == "ok"]
    row = {"system": label, "base_system": system, "runs": runs}
    if not ok:
        row["status"] = "failed"
        row["notes"] = runs[0].get("error", "failed") if runs else "no run"
        return row
    by_fold: dict = {}
    for r in ok:
        by_fold.setdefault(r["fold"], []).append(r)

    def fold_mean(key):
        vals = [
            statistics.median(x[key] for x in rs)
            for rs in by_fold.values()
            if all(x.get(key) is not None for x in rs)
        ]
        return statistics.fmean(vals) if vals else None

    notes = []
    for r in ok:
        for note in r.get("notes", []):
            if note not in notes:
                notes.append(note)
    if any("n_iter" in r for r in ok):
        notes.insert(0, "n_iter " + "/".join(str(r["n_iter"]) for r in ok))
    foreign = [
        r["foreign_cpu_frac"] for r in ok if r.get("foreign_cpu_frac") is not None
    ]
    if foreign and max(foreign) > 0.10:
        notes.append(f"other processes took up to {100 * max(foreign):.0f}% CPU")
    if len(ok) < len(runs):
        notes.append(f"{len(runs) - len(ok)} run(s) failed")
    row.update(
        status="ok",
        settings=ok[0]["settings"],
        rmse=statistics.fmean(r["rmse"] for r in ok),
        rmse_per_fold=[
            statistics.fmean(x["rmse"] for x in rs) for rs in by_fold.values()
        ],
        fit_s=fold_mean("fit_s"),
        fit_s_min=statistics.fmean(
            min(x["fit_s"] for x in rs) for rs in by_fold.values()
        ),
        predict_s=fold_mean("predict_s"),
        startup_s=fold_mean("startup_s"),
        peak_mib=max(r["peak_mib"] for r in ok),
        peak_rss_mib=max(r["peak_rss_mib"] for r in ok),
        n_runs=len(ok),
        other_load_pct=_pct(max(foreign)) if foreign else None,
        notes="; ".join(notes),
    )
    if any("child_processes_peak_mib" in r for r in ok):
        row["child_processes_peak_mib"] = max(
            r.get("child_processes_peak_mib", 0) for r in ok
        )
        row["notes"] += f"; JVM peak RSS {row['child_processes_peak_mib']:.0f} MiB"
    if any("gpu_peak_mib" in r for r in ok):
        row["gpu_peak_mib"] = max(r.get("gpu_peak_mib", 0) for r in ok)
    return row


def add_ratios(rows):
    base = next(
        (r for r in rows if r["system"] == "skmf" and r.get("status") == "ok"), None
    )
    if base is None:
        base = next(
            (
                r
                for r in rows
                if r.get("base_system") == "skmf" and r.get("status") == "ok"
            ),
            None,
        )
    for row in rows:
        if base is None or row.get("status") != "ok":
            continue
        row["skmf_fit_ratio"] = base["fit_s"] / row["fit_s"]
        row["skmf_predict_ratio"] = base["predict_s"] / row["predict_s"]
        row["d_rmse"] = base["rmse"] - row["rmse"]


COLUMNS = [
    ("system", "system", str),
    ("settings", "settings", lambda v: v or ""),
    ("RMSE", "rmse", lambda v: fmt(v, 4)),
    ("d_RMSE", "d_rmse", lambda v: fmt(v, 4) if v is None else f"{v:+.4f}"),
    ("fit s", "fit_s", lambda v: fmt(v, 2)),
    ("predict s", "predict_s", lambda v: fmt(v, 3)),
    ("startup s", "startup_s", lambda v: fmt(v, 1)),
    ("peak MiB", "peak_mib", lambda v: fmt(v, 0)),
    ("other load %", "other_load_pct", lambda v: fmt(v, 0)),
    ("skmf/peer fit", "skmf_fit_ratio", lambda v: fmt(v, 2)),
    ("skmf/peer pred", "skmf_predict_ratio", lambda v: fmt(v, 2)),
    ("notes", "notes", lambda v: v or ""),
]


def main(argv=None):
    args = parse_args(argv)
    data_dir = args.data_dir or default_data_dir()
    label = dataset_label(args.dataset)
    output = args.output or BENCH_DIR / "results" / f"{label}-{args.device}.json"
    entries = build_entries(args)
    missing = {system: availability(system) for system, _, _ in entries}

    header = {
        "dataset": args.dataset,
        "device": args.device,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "env": args.env,
        "repeats": args.repeats,
        "method": METHOD,
        "machine": machine_info(),
        "splits": [],
    }
    m = header["machine"]
    print(
        f"# {label} on {args.device} | {m['cpu']}, {m['logical_cores']} cores, "
        f"{m['ram_gib']} GiB | {m['os']} | Python {m['python']} | "
        f"torch {m['versions']['torch']} | {m['date']}",
        flush=True,
    )

    tmp = Path(tempfile.mkdtemp(prefix="skmf-bench-"))
    runs: dict = {lbl: [] for _, lbl, _ in entries}
    try:
        for fold, split in enumerate(
            load_splits(args.dataset, data_dir, args.folds, args.seed)
        ):
            split_dir = split.save(tmp / f"split{fold}")
            desc = split.describe()
            header["splits"].append(desc)
            print(
                f"# split {desc['split']}: {desc['n_train']:,} train / "
                f"{desc['n_test']:,} test, {desc['n_users_train']:,} users x "
                f"{desc['n_items_train']:,} items (test: {desc['test_unknown_users']} "
                f"unknown users, {desc['test_unknown_items']} unknown items)",
                flush=True,
            )
            del split
            for system, lbl, params in entries:
                if missing[system]:
                    continue
                for rep in range(args.repeats):
                    spec = {
                        "system": system,
                        "label": lbl,
                        "params": params,
                        "device": args.device,
                        "split_dir": str(split_dir),
                        "fold": fold,
                        "repeat": rep,
                    }
                    busy = wait_until_idle(args.wait_idle)
                    res = run_worker(
                        spec, tmp / "runs", timeout=args.timeout, env=args.env
                    )
                    res.update(
                        fold=fold, repeat=rep, split=desc["split"], busy_before=busy
                    )
                    runs[lbl].append(res)
                    if res.get("status") == "ok":
                        print(
                            f"  {lbl:<22} fold {fold} rep {rep}: RMSE "
                            f"{res['rmse']:.4f}  fit {res['fit_s']:.2f} s  "
                            f"predict {res['predict_s']:.3f} s  peak "
                            f"{res['peak_mib']:.0f} MiB  other load "
                            f"{fmt(_pct(res.get('foreign_cpu_frac')), 0)}%",
                            flush=True,
                        )
                    else:
                        print(
                            f"  {lbl:<22} fold {fold} rep {rep}: FAILED "
                            f"{res.get('error')}",
                            flush=True,
                        )
            shutil.rmtree(split_dir, ignore_errors=True)
    finally:
        if args.keep_tmp:
            print(f"# kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    for system, lbl, _ in entries:
        if missing[system]:
            rows.append(
                {
                    "system": lbl,
                    "base_system": system,
                    "status": "not installed",
                    "notes": missing[system],
                }
            )
        else:
            rows.append(aggregate(lbl, system, runs[lbl]))
    add_ratios(rows)
    table = render_table(COLUMNS, rows)
    n_splits = len(header["splits"])
    print()
    print(
        f"{label}: test RMSE"
        + (f" (mean over {n_splits} folds)" if n_splits > 1 else ""),
        flush=True,
    )
    print(table)
    header["table"] = table.splitlines()
    write_json(output, {"header": header, "rows": rows})
    print(f"\nwrote {output}")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t0:.0f} s", file=sys.stderr)
