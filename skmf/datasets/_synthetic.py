"""Synthetic ratings drawn from a known low-rank biased model."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from skmf._device import available_bytes

__all__ = ["make_ratings"]


@validate_params(
    {
        "n_users": [Interval(Integral, 1, None, closed="left")],
        "n_items": [Interval(Integral, 1, None, closed="left")],
        "n_ratings": [Interval(Integral, 1, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "rating_scale": [tuple, None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_ratings(
    n_users=1000,
    n_items=500,
    n_ratings=20_000,
    n_components=10,
    noise=0.5,
    rating_scale=(1.0, 5.0),
    random_state=None,
):
    """Generate ratings from a known biased low-rank model.

    The true rating of user ``u`` for item ``i`` is
    ``mu + b_u + b_i + p_u . q_i`` with ``mu`` the middle of the rating
    scale of width ``W``, biases drawn from N(0, (W / 10)^2) and factor
    entries from N(0, W / (8 sqrt(k))), so that the interaction term has a
    standard deviation of W / 8, of the same order as the biases, whatever
    ``n_components``. Observed ratings add Gaussian noise of standard
    deviation ``noise`` and, when ``rating_scale`` is given, are clipped to
    it. Observed pairs are distinct and drawn with
    popularity skew (a Zipf-like law over items), like real rating data.

    Parameters
    ----------
    n_users : int, default=1000
        Number of users.
    n_items : int, default=500
        Number of items.
    n_ratings : int, default=20000
        Number of observed (user, item) pairs; at most ``n_users * n_items``.
    n_components : int, default=10
        Rank of the interaction term.
    noise : float, default=0.5
        Standard deviation of the Gaussian noise added to observed ratings.
    rating_scale : tuple of (float, float) or None, default=(1.0, 5.0)
        Range the observed ratings are clipped to; None for no clipping
        (then the model is centred on 0 with unit-scale biases).
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible output.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With ``frame``, a DataFrame of columns ``user``, ``item``, ``rating``
        (one row per observed pair, ids 0-based ints); ``X`` (n_ratings, 2)
        int64 pairs and ``y`` ratings; and the truth: ``user_factors``,
        ``item_factors``, ``user_bias``, ``item_bias``, ``intercept`` and
        ``y_true`` (the noiseless ratings of the observed pairs).

    Examples
    --------
    >>> from skmf.datasets import make_ratings
    >>> data = make_ratings(n_users=50, n_items=40, n_ratings=600, random_state=0)
    >>> data.X.shape, data.y.shape
    ((600, 2), (600,))
    >>> data.frame.columns.tolist()
    ['user', 'item', 'rating']
    """
    n_users, n_items, n_ratings = int(n_users), int(n_items), int(n_ratings)
    if n_ratings > n_users * n_items:  # Python ints: no overflow
        raise ValueError(
            f"n_ratings={n_ratings} is more than the n_users * n_items = "
            f"{n_users * n_items} possible (user, item) pairs."
        )
    # The truth (factors and biases) and about 12 arrays of n_ratings values.
    need = 8 * ((n_users + n_items) * (int(n_components) + 1) + 12 * n_ratings)
    have = available_bytes()
    if have is not None and need > have:
        raise ValueError(
            f"make_ratings(n_users={n_users}, n_items={n_items}, "
            f"n_ratings={n_ratings}, n_components={n_components}) needs about "
            f"{need / 2**30:.3g} GiB of memory, but only {have / 2**30:.3g} GiB is "
            "available. Lower the sizes."
        )
    if rating_scale is not None:
        try:
            lo, hi = (float(v) for v in rating_scale)
        except (TypeError, ValueError):
            raise ValueError(
                "rating_scale must be a pair (low, high) of numbers, or None; got "
                f"{rating_scale!r}."
            ) from None
        if not lo < hi:
            raise ValueError(
                f"rating_scale must be (low, high) with low < high; got {rating_scale}."
            )
        width, mu = hi - lo, (lo + hi) / 2
    else:
        width, mu = 4.0, 0.0
    rng = check_random_state(random_state)
    k = n_components
    P = rng.normal(0.0, np.sqrt(width / 8) / k**0.25, size=(n_users, k))
    Q = rng.normal(0.0, np.sqrt(width / 8) / k**0.25, size=(n_items, k))
    bu = rng.normal(0.0, width / 10, size=n_users)
    bi = rng.normal(0.0, width / 10, size=n_items)

    # Distinct pairs: users uniform, items Zipf-like (popularity skew).
    item_p = 1.0 / np.arange(1, n_items + 1) ** 0.6
    item_p = rng.permutation(item_p / item_p.sum())
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n_ratings:
        m = int((n_ratings - len(keys)) * 1.2) + 16
        u = rng.randint(n_users, size=m).astype(np.int64)
        i = rng.choice(n_items, size=m, p=item_p).astype(np.int64)
        keys = pd.unique(np.concatenate([keys, u * n_items + i]))
        if len(keys) < n_ratings and m < 64 and len(keys) > 0.9 * n_users * n_items:
            rest = np.setdiff1d(np.arange(n_users * n_items), keys)
            keys = np.concatenate([keys, rng.permutation(rest)])
    keys = keys[:n_ratings]
    users, items = keys // n_items, keys % n_items
    # The interaction term in chunks: P[users] and Q[items] whole would take
    # 16 k bytes per rating.
    y_true = mu + bu[users] + bi[items]
    for s in range(0, n_ratings, 1 << 20):
        part = slice(s, s + (1 << 20))
        y_true[part] += np.einsum("ij,ij->i", P[users[part]], Q[items[part]])
    y = y_true + rng.normal(0.0, noise, size=n_ratings)
    if rating_scale is not None:
        y = np.clip(y, lo, hi)
    X = np.column_stack([users, items])
    frame = pd.DataFrame({"user": users, "item": items, "rating": y})
    return Bunch(
        frame=frame,
        X=X,
        y=y,
        y_true=y_true,
        user_factors=P,
        item_factors=Q,
        user_bias=bu,
        item_bias=bi,
        intercept=mu,
    )
