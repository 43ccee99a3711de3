"""Fit times on a busy machine: how much each system slows down under load.

Runs each system's fit on the same split twice per repeat, each in a fresh
process: once on a quiet machine, once while ``--busy`` other processes spin
on the CPU (pure-Python loops, one core each), and prints the median times
and their ratio. With as many busy processes as cores plus one, a system
that shares the machine fairly slows by about (busy + 1) / cores: 2.0 with 3
busy processes on 2 cores, 2.5 counting the busy processes' own scheduling.

Usage::

    python benchmarks/load.py --dataset ml-1m --busy 3 --repeats 3
    python benchmarks/load.py --dataset ml-100k --systems skmf,libmf \\
        --skmf-params '{"n_jobs": 1}'

Options: ``--systems`` (subset of ``skmf,libmf,surprise,cornac``; default
``skmf,libmf``), ``--skmf-params`` (extra skmf rows, JSON, repeatable),
``--busy N`` (default 3), ``--repeats N`` (default 3), ``--data-dir``,
``--output`` (JSON, default ``benchmarks/results/load-<dataset>.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    default_data_dir,
    load_splits,
    machine_info,
    render_table,
    run_worker,
    wait_until_idle,
    write_json,
)
from _systems import ADAPTERS  # noqa: E402

_SPIN = "import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"


def _start_busy(n: int, seconds: float) -> list[subprocess.Popen]:
    """``n`` processes that each keep one core busy for ``seconds`` at most."""
    code = _SPIN.format(seconds=seconds)
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--systems", default="skmf,libmf")
    parser.add_argument("--skmf-params", action="append", default=[])
    parser.add_argument("--busy", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)

    entries = []
    for system in args.systems.split(","):
        if system not in ADAPTERS:
            parser.error(f"unknown system {system!r}; choose from {sorted(ADAPTERS)}")
        entries.append((system, system, None))
    for extra in args.skmf_params:
        entries.append(("skmf", f"skmf{extra}", json.loads(extra)))
    data_dir = args.data_dir or default_data_dir()
    split = next(load_splits(args.dataset, data_dir, folds=1))
    rows, runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        split_dir = split.save(tmp / "split")
        print(
            f"# {args.dataset}: {len(split.train_r):,} training ratings; "
            f"{args.busy} busy processes on {os.cpu_count()} cores",
            flush=True,
        )
        for system, label, params in entries:
            times = {"quiet": [], "busy": []}
            for rep in range(args.repeats):
                for state in ("quiet", "busy"):
                    spec = {
                        "system": system, "label": label, "params": params,
                        "device": "cpu", "split_dir": str(split_dir),
                        "fold": 0, "repeat": rep,
                    }  # fmt: skip
                    procs = []
                    if state == "quiet":
                        wait_until_idle(60)
                    else:
                        procs = _start_busy(args.busy, args.timeout)
                        time.sleep(0.5)  # let them take their cores
                    try:
                        res = run_worker(spec, tmp / "runs", timeout=args.timeout)
                    finally:
                        _stop(procs)
                    if res.get("status") != "ok":
                        print(f"  {label}: {res.get('error', res)}", flush=True)
                        break
                    times[state].append(res["fit_s"])
                    runs.append({**res, "state": state, "label": label})
                    print(
                        f"  {label:<28} {state:<5} rep {rep}: fit "
                        f"{res['fit_s']:.3f} s, RMSE {res['rmse']:.4f}",
                        flush=True,
                    )
            if times["quiet"] and times["busy"]:
                quiet = statistics.median(times["quiet"])
                busy = statistics.median(times["busy"])
                rows.append({
                    "system": label, "quiet": quiet, "busy": busy,
                    "slowdown": busy / quiet,
                })  # fmt: skip
    print()
    print(render_table([
        ("system", "system", str),
        ("quiet fit s", "quiet", lambda v: f"{v:.3f}"),
        (f"fit s, {args.busy} busy", "busy", lambda v: f"{v:.3f}"),
        ("slowdown", "slowdown", lambda v: f"{v:.1f}x"),
    ], rows))  # fmt: skip
    output = args.output or (
        Path(__file__).resolve().parent / "results" / f"load-{args.dataset}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json(output, {
        "machine": machine_info(), "dataset": args.dataset, "busy": args.busy,
        "rows": rows, "runs": runs,
    })  # fmt: skip
    print(f"\nresults: {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
