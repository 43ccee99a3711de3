"""Test RMSE of skmf's penalty scalings and tuned recipes on MovieLens.

Reproduces the measurements behind the default ``alpha_scaling="sqrt"``,
``alpha=1.2`` (each scaling at its best ``alpha`` from a small grid) and the
tuned recipes of the accuracy page (including Bayesian MF by Gibbs sampling)::

    python benchmarks/accuracy.py                   # both data sets
    python benchmarks/accuracy.py --dataset ml-1m
    python benchmarks/accuracy.py --peers           # beside Surprise and LIBMF
    python benchmarks/accuracy.py --shapes          # other scales and shapes

``--peers`` and ``--shapes`` need the benchmark environment (Surprise, LIBMF;
see benchmarks/README.md) and run every system with ``--threads`` threads
(default 1), timing the median of ``--repeats`` fits per split.

ML-100K: mean over the official splits u1..u5. ML-1M: random 90/10 split,
seed 0 (the splits of ``run.py``). Prints a table and writes JSON to
``docs/benchmarks_results/accuracy-<dataset>-cpu.json``.
"""

from __future__ import annotations

import argparse
import sys
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
    # SVD++ (implicit feedback) and non-negative factors, each solver.
    ("implicit_feedback=True (SVD++, ALS)", {"implicit_feedback": True}),
    ('implicit_feedback=True, solver="sgd"',
     {"implicit_feedback": True, "solver": "sgd"}),
    ('implicit_feedback=True, solver="adam"',
     {"implicit_feedback": True, "solver": "adam"}),
    ("positive=True (ALS)", {"positive": True}),
    ('positive=True, solver="sgd"', {"positive": True, "solver": "sgd"}),
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


# ------------------------------------------------- side by side with peers
class _Skmf:
    def __init__(self, params, threads):
        self.params, self.threads = params, threads

    def fit(self, u, i, r):
        self.model = MFRegressor(random_state=0, n_jobs=self.threads, **self.params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model.fit(np.column_stack([u, i]), r)

    def predict(self, u, i):
        return self.model.predict(np.column_stack([u, i]))


class _Surprise:
    """A Surprise algorithm with its defaults (random_state=0)."""

    def __init__(self, name, threads):
        self.name = name

    def fit(self, u, i, r):
        import pandas as pd
        import surprise

        df = pd.DataFrame({"user": u, "item": i, "rating": r})
        reader = surprise.Reader(rating_scale=(float(r.min()), float(r.max())))
        trainset = surprise.Dataset.load_from_df(df, reader).build_full_trainset()
        self.algo = getattr(surprise, self.name)(random_state=0)
        self.algo.fit(trainset)

    def predict(self, u, i):
        test = [(a, b, 0.0) for a, b in zip(u.tolist(), i.tolist())]
        return np.array([p.est for p in self.algo.test(test)], dtype=np.float64)


class _Libmf:
    """LIBMF (the ``libmf`` binding's ``MF()`` defaults: k=8, 20 iterations,
    eta=0.1), on ratings centred on the training mean, ``threads`` threads."""

    def __init__(self, options, threads):
        self.options, self.threads = options, threads

    def fit(self, u, i, r):
        import contextlib
        import io

        import pandas as pd

        with contextlib.redirect_stdout(io.StringIO()):
            from libmf import mf
        uc, self.uindex = pd.factorize(u, sort=True)
        ic, self.iindex = pd.factorize(i, sort=True)
        self.uindex, self.iindex = pd.Index(self.uindex), pd.Index(self.iindex)
        # Centred like skmf's mu, except for NMF (non-negative ratings needed).
        self.mean = 0.0 if self.options.get("do_nmf") else float(r.mean())
        data = np.column_stack([uc, ic, r - self.mean]).astype(np.float32)
        self.model = mf.MF(nr_threads=self.threads, quiet=True, **self.options)
        self.model.fit(data)

    def predict(self, u, i):
        uc, ic = self.uindex.get_indexer(u), self.iindex.get_indexer(i)
        pairs = np.asfortranarray(np.column_stack([uc, ic]).astype(np.float32))
        return self.model.predict(pairs).astype(np.float64) + self.mean


#: (system, settings, factory(threads)) of the side-by-side runs.
PEERS = [
    ("skmf", "defaults", lambda t: _Skmf({}, t)),
    ("skmf", "implicit_feedback=True (SVD++, ALS)",
     lambda t: _Skmf({"implicit_feedback": True}, t)),
    ("skmf", 'implicit_feedback=True, solver="sgd"',
     lambda t: _Skmf({"implicit_feedback": True, "solver": "sgd"}, t)),
    ("skmf", 'implicit_feedback=True, solver="adam"',
     lambda t: _Skmf({"implicit_feedback": True, "solver": "adam"}, t)),
    ("skmf", "positive=True (ALS)", lambda t: _Skmf({"positive": True}, t)),
    ("surprise", "SVD() defaults", lambda t: _Surprise("SVD", t)),
    ("surprise", "SVDpp() defaults", lambda t: _Surprise("SVDpp", t)),
    ("surprise", "NMF() defaults", lambda t: _Surprise("NMF", t)),
    ("libmf", "MF() defaults, centred", lambda t: _Libmf({}, t)),
    ("libmf", "MF(do_nmf=True), raw ratings",
     lambda t: _Libmf({"do_nmf": True}, t)),
]  # fmt: skip


def _run_systems(systems, splits, threads: int, repeats: int) -> list[dict]:
    """Fit every system on every split ``repeats`` times: RMSE and median time."""
    rows = []
    for system, label, factory in systems:
        rmses, seconds = [], []
        for split in splits:
            times = []
            for _ in range(repeats):
                runner = factory(threads)
                start = time.perf_counter()
                runner.fit(split.train_u, split.train_i, split.train_r)
                times.append(time.perf_counter() - start)
            pred = runner.predict(split.test_u, split.test_i)
            rmses.append(float(np.sqrt(np.mean((pred - split.test_r) ** 2))))
            seconds.append(float(np.median(times)))
        row = {
            "system": system,
            "settings": label,
            "rmse": float(np.mean(rmses)),
            "rmse_per_fold": rmses,
            "fit_s": float(np.median(seconds)),
            "fit_s_per_fold": seconds,
        }
        rows.append(row)
        print(
            f"{system:9s} {label:42s} RMSE {row['rmse']:.4f}  fit {row['fit_s']:.2f} s",
            flush=True,
        )
    return rows


#: Synthetic data of other scales and shapes (``make_ratings``, rank 10,
#: noise an eighth of the scale's width, 90/10 split of seed 0):
#: (name, n_users, n_items, n_ratings, rating_scale, half_stars).
SHAPES = [
    ("ratings -10..10", 2000, 1000, 100_000, (-10.0, 10.0), False),
    ("ratings 1..100", 2000, 1000, 100_000, (1.0, 100.0), False),
    ("ratings 0.5..5 in half stars", 2000, 1000, 100_000, (0.5, 5.0), True),
    ("dense, few items: 2000 x 50, 60 % rated", 2000, 50, 60_000, (1.0, 5.0), False),
    ("very sparse, cold users: 20000 x 2000, 3 per user", 20_000, 2000, 60_000,
     (1.0, 5.0), False),
]  # fmt: skip


def _shape_split(name, n_users, n_items, n_ratings, scale, half_stars):
    from _common import random_split

    from skmf.datasets import make_ratings

    lo, hi = scale
    data = make_ratings(
        n_users=n_users, n_items=n_items, n_ratings=n_ratings, n_components=10,
        noise=(hi - lo) / 8, rating_scale=scale, random_state=0,
    )  # fmt: skip
    y = data.y
    if half_stars:  # make_ratings does not round: half stars here
        y = np.clip(np.round(y * 2) / 2, lo, hi)
    return random_split(name, data.X[:, 0], data.X[:, 1], y, seed=0)


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
    parser.add_argument(
        "--peers",
        action="store_true",
        help="skmf's defaults, SVD++ and positive=True side by side with Surprise "
        "(SVD, SVDpp, NMF) and LIBMF on the data sets (accuracy-peers-*.json)",
    )
    parser.add_argument(
        "--shapes",
        action="store_true",
        help="skmf defaults, Surprise SVD and LIBMF on make_ratings data of other "
        "scales and shapes (accuracy-shapes-cpu.json)",
    )
    parser.add_argument(
        "--systems", default=None, help="with --peers: comma-separated systems"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch/LIBMF threads")
    parser.add_argument("--repeats", type=int, default=1, help="fits per split")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or default_data_dir()
    if args.peers or args.shapes:
        return _side_by_side(args, data_dir)
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


def _side_by_side(args, data_dir) -> int:
    import torch

    torch.set_num_threads(args.threads)
    columns = [
        ("system", "system", str),
        ("settings", "settings", str),
        ("test RMSE", "rmse", lambda v: fmt(v, 4)),
        ("fit s (median)", "fit_s", fmt),
    ]
    runs = []
    if args.peers:
        datasets = ["ml-100k", "ml-1m"] if args.dataset == "both" else [args.dataset]
        peers = PEERS
        if args.systems:
            wanted = set(args.systems.split(","))
            peers = [p for p in PEERS if p[0] in wanted or p[1] in wanted]
        for dataset in datasets:
            print(f"== {dataset}")
            splits = list(load_splits(dataset, data_dir, folds=args.folds))
            split = "u1..u5 mean" if dataset == "ml-100k" else "random 90/10, seed 0"
            runs.append((dataset, split, _run_systems(peers, splits, args.threads,
                                                      args.repeats)))  # fmt: skip
    if args.shapes:
        rows = []
        systems = [p for p in PEERS if p[1] in (
            "defaults", "SVD() defaults", "MF() defaults, centred")]  # fmt: skip
        for shape in SHAPES:
            print(f"== {shape[0]}")
            for row in _run_systems(
                systems, [_shape_split(*shape)], args.threads, args.repeats
            ):
                row["data"] = shape[0]
                row["settings"] = f"{shape[0]}: {row['settings']}"
                rows.append(row)
        runs.append(("shapes", "make_ratings, rank 10, 90/10 seed 0", rows))
    for name, split, rows in runs:
        print(render_table(columns, rows))
        header = machine_info()
        header.update(
            dataset=f"peers {name}" if name != "shapes" else "make_ratings shapes",
            split=split, device="cpu", threads=args.threads, repeats=args.repeats,
            script="benchmarks/accuracy.py",
            command="python benchmarks/accuracy.py " + " ".join(
                a for a in (sys.argv[1:] if sys.argv else [])),
        )  # fmt: skip
        stem = f"accuracy-peers-{name}" if name != "shapes" else "accuracy-shapes"
        out = REPO_DIR / "docs" / "benchmarks_results" / f"{stem}-cpu.json"
        write_json(out, {"header": header, "rows": rows})
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
