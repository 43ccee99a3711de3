"""Test RMSE of skmf's penalty scalings and tuned recipes on MovieLens.

Reproduces the measurements behind the default ``alpha_scaling="sqrt"``,
``alpha=1.2`` (each scaling at its best ``alpha`` from a small grid) and the
tuned recipes of the accuracy page (including Bayesian MF by Gibbs sampling)::

    python benchmarks/accuracy.py                   # both data sets
    python benchmarks/accuracy.py --dataset ml-1m

ML-100K: mean over the official splits u1..u5. ML-1M: random 90/10 split,
seed 0 (the splits of ``run.py``). Prints a table and writes JSON to
``docs/benchmarks_results/accuracy-<dataset>-cpu.json``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import (
    REPO_DIR,
    default_data_dir,
    fmt,
    load_splits,
    machine_info,
    render_table,
    write_json,
)

from skmf import MFRegressor

#: (label, parameters): every row is fitted on every split of the data set.
CONFIGS = [
    ("defaults", {}),
    ('defaults with init="random"', {"init": "random"}),
    # The penalty scalings, each near its best alpha on these data sets
    # (converged: tol=1e-4).
    ('alpha_scaling="none" (textbook), alpha=15, alpha_bias=5, tol=1e-4',
     {"alpha_scaling": "none", "alpha": 15.0, "alpha_bias": 5.0, "tol": 1e-4,
      "max_iter": 60}),
    ('alpha_scaling="count" (ALS-WR), alpha=0.1, alpha_bias=0.05, tol=1e-4',
     {"alpha_scaling": "count", "alpha": 0.1, "alpha_bias": 0.05, "tol": 1e-4,
      "max_iter": 60}),
    ('alpha_scaling="sqrt", alpha=1.2, tol=1e-4',
     {"alpha": 1.2, "tol": 1e-4, "max_iter": 60}),
    # Tuned recipes: a lighter bias penalty; ALS run to tol=1e-3; Adam.
    ("recipe: k=32, alpha_bias=0.6, tol=1e-3",
     {"n_components": 32, "alpha_bias": 0.6, "tol": 1e-3}),
    ('recipe: solver="adam", k=64, alpha_bias=0.6',
     {"solver": "adam", "n_components": 64, "alpha_bias": 0.6, "max_iter": 100}),
    # Bayesian MF: the posterior mean of the factors (learned penalties).
    ('recipe: solver="gibbs", k=32, max_iter=100',
     {"solver": "gibbs", "n_components": 32, "max_iter": 100}),
    ('recipe: solver="gibbs", k=32, max_iter=200',
     {"solver": "gibbs", "n_components": 32, "max_iter": 200}),
]  # fmt: skip


def evaluate(dataset: str, data_dir, folds: int) -> list[dict]:
    splits = list(load_splits(dataset, data_dir, folds=folds))
    rows = []
    for label, params in CONFIGS:
        rmses, seconds = [], []
        for split in splits:
            model = MFRegressor(random_state=0, **params)
            X = np.column_stack([split.train_u, split.train_i])
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(X, split.train_r)
            seconds.append(time.perf_counter() - start)
            pred = model.predict(np.column_stack([split.test_u, split.test_i]))
            rmses.append(float(np.sqrt(np.mean((pred - split.test_r) ** 2))))
        row = {
            "system": "skmf",
            "settings": label,
            "rmse": float(np.mean(rmses)),
            "rmse_per_fold": rmses,
            "fit_s": float(np.mean(seconds)),
        }
        rows.append(row)
        print(
            f"{label:70s} RMSE {row['rmse']:.4f}  fit {row['fit_s']:.2f} s", flush=True
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", choices=["ml-100k", "ml-1m", "both"], default="both"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder holding ml-100k/ and ml-1m/ (default: $SKMF_DATA, else "
        "~/skmf_data; downloaded there when absent)",
    )
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    data_dir = args.data_dir or default_data_dir()
    datasets = ["ml-100k", "ml-1m"] if args.dataset == "both" else [args.dataset]
    for dataset in datasets:
        print(f"== {dataset}")
        rows = evaluate(dataset, data_dir, args.folds)
        columns = [
            ("settings", "settings", str),
            ("test RMSE", "rmse", lambda v: fmt(v, 4)),
            ("fit s", "fit_s", fmt),
        ]
        print(render_table(columns, rows))
        header = machine_info()
        header.update(
            dataset=dataset,
            split="u1..u5 mean" if dataset == "ml-100k" else "random 90/10, seed 0",
            device="cpu",
            script="benchmarks/accuracy.py",
        )
        out = REPO_DIR / "docs" / "benchmarks_results" / f"accuracy-{dataset}-cpu.json"
        write_json(out, {"header": header, "rows": rows})
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
