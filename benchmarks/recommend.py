"""How long serving a fitted model takes: top-n for every user, fold-in.

Fits ``MFRegressor()`` (defaults) on a data set's training ratings, then
times, each as the median of ``--repeats`` runs:

- ``recommend`` of the top 10 items for every user, seen items excluded
  (skmf: blocked scores and ``torch.topk``), next to the plain NumPy recipe
  that forms the whole users x items score matrix, masks the rated pairs and
  takes ``argpartition`` (the reference whose result skmf must equal);
- ``similar_items`` for every item (cosine, top 10);
- serving one new user from 20 ratings without retraining:
  ``recommend(user, ratings={item: rating})`` (fold-in + top 10) and
  ``partial_fit`` (fold-in that keeps the user) followed by ``recommend``;
  against refitting the whole model with the new user's ratings added.

It checks that skmf's top-10 lists equal the NumPy recipe's (same items, up
to ties) and reports the peak RSS increase of each step.

Examples
--------
::

    python benchmarks/recommend.py --dataset ml-1m
    python benchmarks/recommend.py --dataset ml-100k --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BENCH_DIR,
    PeakMemory,
    default_data_dir,
    fmt,
    load_splits,
    machine_info,
    render_table,
    write_json,
)

from skmf import MFRegressor  # noqa: E402

N_TOP = 10
N_NEW_RATINGS = 20


def timed(function, repeats):
    """(median seconds, peak RSS increase in MiB of the first run, result)."""
    times, peak, result = [], None, None
    for r in range(repeats):
        with PeakMemory() as mem:
            start = time.perf_counter()
            result = function()
            times.append(time.perf_counter() - start)
        if r == 0:
            peak = mem.peak_increase_mib
    return statistics.median(times), peak, result


def numpy_top_n(model, seen, n):
    """The whole score matrix, rated pairs masked, argpartition + argsort."""
    scores = model.user_factors_ @ model.item_factors_.T
    scores += model.user_bias_[:, None]
    scores += (model.intercept_ + model.item_bias_)[None, :]
    scores[seen] = -np.inf
    top = np.argpartition(-scores, n, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
    return np.take_along_axis(top, order, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-1m", choices=["ml-100k", "ml-1m"])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder holding ml-100k/ and ml-1m/ (default: $SKMF_DATA, else "
        "~/skmf_data; downloaded there when absent)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    data_dir = args.data_dir or default_data_dir()
    split = next(load_splits(args.dataset, data_dir, folds=1))
    X = np.column_stack([split.train_u, split.train_i])
    y = split.train_r.astype(np.float64)
    model = MFRegressor(device=args.device, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_s, _, _ = timed(lambda: model.fit(X, y), 1)
    users, items = model.users_, model.items_
    rows = []

    # Top 10 for every user.
    model.recommend(users[:2], n=N_TOP)  # builds the rated-pairs matrix once
    sec, peak, (rec_ids, _) = timed(
        lambda: model.recommend(users, n=N_TOP), args.repeats
    )
    rows.append({
        "task": f"recommend top {N_TOP}, all {len(users):,} users",
        "system": "skmf", "seconds": sec, "peak_mib": peak,
        "per_item": f"{sec / len(users) * 1e6:.1f} us/user",
    })  # fmt: skip
    seen = model._seen_matrix().toarray()
    sec_np, peak_np, top = timed(lambda: numpy_top_n(model, seen, N_TOP), 1)
    rows.append({
        "task": f"recommend top {N_TOP}, all {len(users):,} users",
        "system": "NumPy: full score matrix + argpartition",
        "seconds": sec_np, "peak_mib": peak_np,
        "per_item": f"{sec_np / len(users) * 1e6:.1f} us/user",
    })  # fmt: skip
    same = np.mean([set(a) == set(b) for a, b in zip(items[top], rec_ids)])

    # Similar items for every item.
    sec, peak, _ = timed(lambda: model.similar_items(items, n=N_TOP), args.repeats)
    rows.append({
        "task": f"similar_items top {N_TOP}, all {len(items):,} items",
        "system": "skmf", "seconds": sec, "peak_mib": peak,
        "per_item": f"{sec / len(items) * 1e6:.1f} us/item",
    })  # fmt: skip

    # One new user with 20 ratings of popular items.
    rng = np.random.RandomState(0)
    counts = np.bincount(np.searchsorted(items, split.train_i), minlength=len(items))
    popular = items[np.argsort(-counts)[:500]]
    new_items = rng.choice(popular, N_NEW_RATINGS, replace=False)
    new_ratings = rng.randint(1, 6, N_NEW_RATINGS).astype(float)
    new_user = int(np.max(users)) + 1
    liked = dict(zip(new_items.tolist(), new_ratings.tolist()))
    sec, peak, _ = timed(
        lambda: model.recommend(new_user, n=N_TOP, ratings=liked), args.repeats
    )
    rows.append({
        "task": f"new user, {N_NEW_RATINGS} ratings: fold-in + top {N_TOP}",
        "system": "skmf recommend(ratings=...)", "seconds": sec, "peak_mib": peak,
    })  # fmt: skip
    X_new = np.column_stack([np.full(N_NEW_RATINGS, new_user), new_items])

    def partial_then_recommend():
        m = MFRegressor(**model.get_params())
        for name, value in vars(model).items():
            if name.endswith("_") or name.startswith("_"):
                setattr(m, name, value)
        start = time.perf_counter()
        m.partial_fit(X_new, new_ratings)
        m.recommend(new_user, n=N_TOP)
        return time.perf_counter() - start

    inner = [partial_then_recommend() for _ in range(args.repeats)]
    rows.append({
        "task": f"new user, {N_NEW_RATINGS} ratings: fold-in + top {N_TOP}",
        "system": "skmf partial_fit + recommend", "seconds": statistics.median(inner),
    })  # fmt: skip
    X_all, y_all = np.vstack([X, X_new]), np.concatenate([y, new_ratings])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sec, peak, _ = timed(
            lambda: MFRegressor(device=args.device, random_state=0).fit(X_all, y_all),
            1,
        )
    rows.append({
        "task": f"new user, {N_NEW_RATINGS} ratings: fold-in + top {N_TOP}",
        "system": "refit MFRegressor() on all ratings", "seconds": sec,
        "peak_mib": peak,
    })  # fmt: skip

    columns = [
        ("task", "task", str),
        ("system", "system", str),
        ("seconds", "seconds", lambda v: fmt(v, 4)),
        ("per query", "per_item", lambda v: v or ""),
        ("peak MiB", "peak_mib", lambda v: fmt(v, 0)),
    ]
    table = render_table(columns, rows)
    info = machine_info()
    print(
        f"{args.dataset}: {len(y):,} training ratings, {len(users):,} users x "
        f"{len(items):,} items; MFRegressor() fit {fit_s:.2f} s on {args.device}"
    )
    print(table)
    print(
        f"skmf's top-{N_TOP} lists equal the NumPy recipe's for {same:.2%} of "
        "the users (differences are ties)."
    )
    print(f"{info['cpu']}, {info['logical_cores']} cores, {info['date']}")
    output = args.output or BENCH_DIR / "results" / f"recommend-{args.dataset}.json"
    write_json(output, {
        "header": {"dataset": args.dataset, "device": args.device,
                   "repeats": args.repeats, "fit_s": fit_s,
                   "same_top_lists": same, "machine": info, "table": table},
        "rows": rows,
    })  # fmt: skip
    print(f"written: {output}")


if __name__ == "__main__":
    main()
