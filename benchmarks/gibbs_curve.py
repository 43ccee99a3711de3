"""Test RMSE of the Gibbs sampler against fit time, sweep by sweep.

Each variant fits once per split with ``max_iter`` sweeps; after every sweep
the script records the seconds since ``fit`` was called (setup included,
its own evaluation excluded) and the test RMSE of the model the fit would
return if it stopped there (the average of the samples kept so far, the
current sample during the burn-in). Variants::

    python benchmarks/gibbs_curve.py --dataset ml-100k --max-iter 200
    python benchmarks/gibbs_curve.py --dataset ml-1m --max-iter 200 \\
        --variants old,new,new-svdpp,defaults

* ``old``: the sampler of the commit ``--baseline`` (spectral start,
  burn-in of a quarter of ``max_iter``, the samples averaged), loaded from
  git; its curve is that of one fit of ``max_iter`` sweeps.
* ``new``: the current sampler (``MFRegressor(solver="gibbs")``); its burn-in
  does not depend on ``max_iter``, so the point after n sweeps is the fit
  with ``max_iter=n``.
* ``new-svdpp``: ``implicit_feedback=True, solver="gibbs"`` (Bayesian SVD++).
* ``samples``: the current sampler averaging the samples instead of their
  conditional means; ``als-start``: started from ALS sweeps (``START_SWEEPS``).
* ``defaults``, ``svdpp-als``: ``MFRegressor()`` and
  ``MFRegressor(implicit_feedback=True)``, one point each.

Prints the RMSE after selected sweeps, the seconds to reach the old
sampler's final RMSE, and writes ``docs/benchmarks_results/
gibbs-curve-<dataset>-cpu.json``. Every variant runs with ``--threads``
torch threads, side by side in one run; ML-100K figures are means over the
splits u1..u5 (``--folds``), times medians.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
import warnings

import numpy as np
import torch
from _common import REPO_DIR, default_data_dir, load_splits, machine_info, write_json

from skmf import MFRegressor
from skmf._solvers import _engine, _gibbs
from skmf._solvers._engine import rating_units

BASELINE = "6650b59"  # the sampler before the RMSE-per-second work


def _old_gibbs(rev: str):
    """The GibbsStep class of ``_gibbs.py`` at git revision ``rev``."""
    source = subprocess.run(
        ["git", "show", f"{rev}:skmf/_solvers/_gibbs.py"], cwd=REPO_DIR,
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    module = types.ModuleType("skmf_old_gibbs")
    exec(compile(source, f"{rev}:_gibbs.py", "exec"), module.__dict__)
    return module.GibbsStep


def _running_model(step):
    """(P, Q, bu, bi, mu, Y) the fit would return now, in the step's units."""
    F, S = step.F, step.sum
    names = ["P", "Q", "bu", "bi", "mu"] + (["Y"] if hasattr(F, "Y") else [])
    if step.n_kept:
        S = types.SimpleNamespace(**{n: getattr(S, n) for n in names[:5]},
                                  Y=getattr(step, "sum_Y", None))  # fmt: skip
        out = [getattr(S, n).double() / step.n_kept for n in names]
    else:
        out = [getattr(F, n).double() for n in names]
    return out if len(out) == 6 else [*out, None]


class _Curve:
    """Records (seconds, test RMSE) after each sweep of a Gibbs step class."""

    def __init__(self, base, split, step_kwargs=None):
        self.points, self.eval_seconds, self.t0 = [], 0.0, None
        curve, kwargs = self, dict(step_kwargs or {})
        users = np.unique(split.train_u)
        items = np.unique(split.train_i)
        tu = np.searchsorted(users, split.test_u)
        ti = np.searchsorted(items, split.test_i)
        known_u = (tu < len(users)) & (users[np.minimum(tu, len(users) - 1)]
                                       == split.test_u)  # fmt: skip
        known_i = (ti < len(items)) & (items[np.minimum(ti, len(items) - 1)]
                                       == split.test_i)  # fmt: skip
        self.tu = torch.from_numpy(np.where(known_u, tu, len(users)))
        self.ti = torch.from_numpy(np.where(known_i, ti, len(items)))
        self.y = split.test_r
        self.units = rating_units(split.train_r, None, True)

        class Recording(base):
            def __init__(self, *args, **kw):
                super().__init__(*args, **{**kw, **kwargs})

            def __call__(self, iteration):
                out = super().__call__(iteration)
                curve.record(self)
                return out

        self.step_class = Recording

    def record(self, step):
        now = time.perf_counter()
        seconds = now - self.t0 - self.eval_seconds
        P, Q, bu, bi, mu, Y = _running_model(step)
        if Y is not None:
            P = P + step.sets.user_sums(Y.to(step.F.P.dtype)).double()
        pad = [torch.cat([t, t.new_zeros(1, *t.shape[1:])]) for t in (P, Q, bu, bi)]
        P, Q, bu, bi = pad
        s = step.scale
        pred = mu + bu[self.tu] + bi[self.ti] + (P[self.tu] * Q[self.ti]).sum(1)
        pred = self.units[0] + self.units[1] * s * pred.numpy()
        rmse = float(np.sqrt(np.mean((pred - self.y) ** 2)))
        self.points.append((seconds, rmse))
        self.eval_seconds += time.perf_counter() - now


def _fit_curve(split, params, base=None, step_kwargs=None):
    """The (seconds, RMSE) points of one Gibbs fit."""
    # The SVD++ step is looked up in _gibbs when the fit starts.
    module, name = ((_gibbs, "ImplicitGibbsStep") if params.get("implicit_feedback")
                    else (_engine, "GibbsStep"))  # fmt: skip
    original = getattr(module, name)
    curve = _Curve(base or original, split, step_kwargs)
    setattr(module, name, curve.step_class)
    try:
        X = np.column_stack([split.train_u, split.train_i])
        curve.t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            MFRegressor(**params).fit(X, split.train_r)
    finally:
        setattr(module, name, original)
    return curve.points


def _fit_point(split, params):
    X = np.column_stack([split.train_u, split.train_i])
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MFRegressor(**params).fit(X, split.train_r)
    seconds = time.perf_counter() - t0
    pred = model.predict(np.column_stack([split.test_u, split.test_i]))
    return [(seconds, float(np.sqrt(np.mean((pred - split.test_r) ** 2))))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("ml-100k", "ml-1m"), default="ml-100k")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--n-components", type=int, default=32)
    parser.add_argument(
        "--old-max-iter",
        type=int,
        default=None,
        help="max_iter of the old sampler (default --max-iter)",
    )
    parser.add_argument(
        "--svdpp-max-iter",
        type=int,
        default=None,
        help="max_iter of new-svdpp (default --max-iter)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default="old,new,defaults")
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data_dir = args.data_dir or default_data_dir()
    splits = list(load_splits(args.dataset, data_dir, folds=args.folds))
    k, n = args.n_components, args.max_iter
    gibbs = {"solver": "gibbs", "n_components": k, "max_iter": n, "random_state": 0,
             "n_jobs": args.threads}  # fmt: skip
    runs = {
        "old": lambda s: _fit_curve(
            s,
            {**gibbs, "max_iter": args.old_max_iter or n},
            _old_gibbs(args.baseline),
        ),
        "new": lambda s: _fit_curve(s, gibbs),
        "new-svdpp": lambda s: _fit_curve(
            s,
            {
                **gibbs,
                "implicit_feedback": True,
                "max_iter": args.svdpp_max_iter or n,
            },
        ),  # fmt: skip
        "samples": lambda s: _fit_curve(s, gibbs, None, {"rao_blackwell": False}),
        "als-start": lambda s: _fit_curve(
            s, gibbs, None, {"start_sweeps": _gibbs.START_SWEEPS}
        ),
        "defaults": lambda s: _fit_point(
            s, {"random_state": 0, "n_jobs": args.threads}
        ),
        "svdpp-als": lambda s: _fit_point(
            s, {"implicit_feedback": True, "random_state": 0, "n_jobs": args.threads}
        ),
    }
    variants = args.variants.split(",")
    curves = {v: [] for v in variants}
    # Side by side: every variant on a split before the next split.
    for split in splits:
        for v in variants:
            points = runs[v](split)
            curves[v].append(points)
            print(f"{split.name:12s} {v:10s} {points[-1][1]:.4f} "
                  f"{points[-1][0]:.2f} s", file=sys.stderr, flush=True)  # fmt: skip
    # Mean RMSE over the splits, median seconds, after each sweep.
    summary = {}
    n = max(n, args.old_max_iter or 0, args.svdpp_max_iter or 0)
    for v, per_split in curves.items():
        length = min(len(p) for p in per_split)
        secs = np.median([[p[j][0] for j in range(length)] for p in per_split], 0)
        rmse = np.mean([[p[j][1] for j in range(length)] for p in per_split], 0)
        summary[v] = {"seconds": secs.tolist(), "rmse": rmse.tolist()}
    marks = [m for m in (5, 10, 20, 30, 40, 50, 60, 80, 100, 150, 200, 300, 400)
             if m <= n]  # fmt: skip
    print(f"\n{args.dataset}, k={k}, {args.threads} threads: test RMSE "
          "(seconds) after n sweeps")  # fmt: skip
    print(f"{'variant':10s} " + " ".join(f"{m:>15d}" for m in marks))
    for v, c in summary.items():
        if len(c["rmse"]) == 1:
            print(f"{v:10s} {c['rmse'][0]:.4f} ({c['seconds'][0]:.2f} s)")
            continue
        print(f"{v:10s} " + " ".join(
            f"{c['rmse'][m - 1]:.4f} ({c['seconds'][m - 1]:5.2f})"
            if m <= len(c["rmse"]) else f"{'-':>15s}" for m in marks
        ))  # fmt: skip
    reach = {}
    if "old" in summary:
        old = summary["old"]["rmse"]
        targets = {f"old after {len(old)}": old[-1]}
        for name, target in targets.items():
            reach[name] = {"rmse": target}
            for v, c in summary.items():
                hit = [j for j, r in enumerate(c["rmse"]) if r <= target]
                reach[name][v] = (
                    {"sweeps": hit[0] + 1, "seconds": c["seconds"][hit[0]]}
                    if hit else None
                )  # fmt: skip
            print(f"\nto reach {name} sweeps ({target:.4f}): " + ", ".join(
                f"{v} {r['sweeps']} sweeps {r['seconds']:.2f} s"
                for v, r in reach[name].items() if isinstance(r, dict)
            ))  # fmt: skip
    if not args.no_json:
        path = (REPO_DIR / "docs" / "benchmarks_results"
                / f"gibbs-curve-{args.dataset}-cpu.json")  # fmt: skip
        write_json(path, {
            "header": {**machine_info(), "torch_threads": args.threads},
            "dataset": args.dataset, "splits": [s.name for s in splits],
            "n_components": k, "max_iter": n, "baseline": args.baseline,
            "curves": summary, "reach": reach,
        })  # fmt: skip
        print(f"\nwrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
