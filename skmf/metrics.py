"""Metrics for explicit ratings: scorers and ranking metrics.

:func:`get_scorer` gives scikit-learn's scorers (``"neg_root_mean_squared_error"``
and the others) for every input form of :class:`skmf.MFRegressor`: on (user,
item, rating) triples and sparse rating matrices the ratings are read from
``X``, where scikit-learn's own scorers get ``y=None`` and score NaN.

Ranking metrics: precision, recall and NDCG at k.

A fitted model ranks, for each user of held-out ratings, a set of candidate
items; the held-out ratings say which items are relevant (rating at or above a
threshold). Two candidate sets are offered:

* ``candidates="test"`` (the default, the usual protocol for explicit
  ratings): each user's own held-out items, ranked by predicted rating. Every
  candidate has a known rating, so no unrated item is taken for irrelevant.
* ``candidates="all"``: every item of the model the user did not rate in
  training, ranked by :meth:`skmf.MFRegressor.recommend`; held-out items
  that are not relevant, and unrated items, count as irrelevant.

:func:`make_ranking_scorer` turns any of them into a scorer for
:class:`~sklearn.model_selection.GridSearchCV` or
:func:`~sklearn.model_selection.cross_val_score`.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.metrics import get_scorer as _sklearn_get_scorer
from sklearn.metrics._scorer import _BaseScorer
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_params,
)

from skmf._data import factorize_ids, parse_ratings

__all__ = [
    "get_scorer",
    "make_ranking_scorer",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
]

_METRICS = ("precision", "recall", "ndcg")

_CONSTRAINTS = {
    "estimator": [HasMethods(["predict"])],
    "X": ["array-like", "sparse matrix"],
    "y": ["array-like", None],
    "k": [Interval(Integral, 1, None, closed="left")],
    "threshold": [Interval(Real, None, None, closed="neither")],
    "candidates": [StrOptions({"test", "all"})],
}


def _per_user(estimator, X, y, k, threshold, candidates, gain, caller):
    """Per-user hits, normalizers and DCGs for the users with a relevant item.

    Returns
    -------
    hits : ndarray of shape (n_users,)
        Relevant items among the top k.
    n_ranked : ndarray of shape (n_users,)
        Items in the top k: min(k, number of candidates).
    n_relevant : ndarray of shape (n_users,)
        Relevant held-out items.
    dcg, idcg : ndarray of shape (n_users,)
        Discounted cumulative gain of the top k and of the ideal top k.
    """
    data = parse_ratings(X, y, None, need_ratings=True, caller=caller)
    ratings = data.ratings
    relevant = ratings >= threshold
    if gain == "rating":
        if (ratings < 0).any():
            raise ValueError(
                "gain='rating' uses the held-out ratings as gains, which must be "
                f"non-negative; got a rating of {ratings.min()}. Use gain='binary'."
            )
        gains = ratings
    else:
        gains = relevant.astype(np.float64)
    users, uniques = factorize_ids(data.users)
    n_users = len(uniques)
    n_relevant = np.bincount(users, weights=relevant, minlength=n_users)

    # The ideal DCG: the user's held-out gains, best first.
    order = np.lexsort((-gains, users))
    rank = _rank_within(users[order], n_users)
    discount = np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0)
    idcg = np.bincount(users[order], weights=gains[order] * discount, minlength=n_users)

    if candidates == "test":
        pred = np.asarray(estimator.predict(X), dtype=np.float64)
        # Ties in the predictions are broken by the order of the ratings.
        order = np.lexsort((np.arange(len(pred)), -pred, users))
        su = users[order]
        rank = _rank_within(su, n_users)
        top = rank < k
        discount = np.where(top, 1.0 / np.log2(rank + 2.0), 0.0)
        hits = np.bincount(su, weights=top & relevant[order], minlength=n_users)
        dcg = np.bincount(su, weights=gains[order] * discount, minlength=n_users)
        n_ranked = np.minimum(k, np.bincount(users, minlength=n_users))
    else:
        if not hasattr(estimator, "recommend"):
            raise TypeError(
                f"candidates='all' ranks every item with estimator.recommend, which "
                f"{type(estimator).__name__} does not have. Use candidates='test'."
            )
        item_ids, scores = estimator.recommend(uniques, n=k, exclude_seen=True)
        valid = ~np.isnan(scores)
        # Look the recommended (user, item) pairs up among the held-out ones.
        n_test = len(ratings)
        rows = np.broadcast_to(np.arange(n_users)[:, None], valid.shape)[valid]
        codes, _ = pd.factorize(
            np.concatenate([np.asarray(data.items, dtype=object),
                            np.asarray(item_ids[valid], dtype=object)])
        )  # fmt: skip
        width = int(codes.max()) + 1
        test_keys = users * width + codes[:n_test]
        table = pd.DataFrame(
            {"key": test_keys, "gain": gains, "rel": relevant.astype(np.float64)}
        )
        table = table.groupby("key").max()  # a pair rated twice: its best rating
        found = table.reindex(rows * width + codes[n_test:])
        hit = found["rel"].fillna(0.0).to_numpy(dtype=np.float64) > 0
        got = found["gain"].fillna(0.0).to_numpy(dtype=np.float64)
        rank = np.broadcast_to(np.arange(valid.shape[1]), valid.shape)[valid]
        discount = 1.0 / np.log2(rank + 2.0)
        hits = np.bincount(rows, weights=hit, minlength=n_users)
        dcg = np.bincount(rows, weights=got * discount, minlength=n_users)
        n_ranked = valid.sum(axis=1)
    keep = n_relevant > 0
    return hits[keep], n_ranked[keep], n_relevant[keep], dcg[keep], idcg[keep]


def _rank_within(sorted_groups: np.ndarray, n_groups: int) -> np.ndarray:
    """0-based position of each entry within its group (groups contiguous)."""
    counts = np.bincount(sorted_groups, minlength=n_groups)
    starts = np.cumsum(counts) - counts
    return np.arange(len(sorted_groups)) - starts[sorted_groups]


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


_SHARED_DOC = """
    Parameters
    ----------
    estimator : fitted estimator
        The model, e.g. a fitted :class:`~skmf.MFRegressor`: its ``predict``
        ranks the held-out items (``candidates="test"``), its ``recommend``
        ranks all items (``candidates="all"``).

    X : array-like of shape (n_ratings, 2) or (n_ratings, 3), DataFrame, \
or sparse matrix
        Held-out ratings in any form :meth:`skmf.MFRegressor.fit` accepts:
        (user, item) pairs with ``y``, (user, item, rating) triples, or a
        sparse rating matrix.

    y : array-like of shape (n_ratings,), default=None
        The held-out ratings of (user, item) pairs; None for triples and
        sparse matrices.

    k : int, default=10
        Number of top-ranked items considered per user.

    threshold : float, default=4.0
        A held-out item is relevant when its rating is at least
        ``threshold``.

    candidates : {"test", "all"}, default="test"
        The items ranked for each user: "test", the user's held-out items,
        by predicted rating (ties broken by the order of the ratings);
        "all", every item of the model not rated by the user in training,
        by :meth:`~skmf.MFRegressor.recommend`.
"""


@validate_params(_CONSTRAINTS, prefer_skip_nested_validation=True)
def precision_at_k(estimator, X, y=None, *, k=10, threshold=4.0, candidates="test"):
    """Mean precision at k of the items a model ranks first for each user.

    For each user with at least one relevant held-out item, precision at k
    is the number of relevant items among the ``k`` top-ranked candidates,
    divided by ``min(k, number of candidates)`` (so a user with fewer than
    ``k`` candidates can still reach 1). The result is the mean over these
    users.

    {shared}

    Returns
    -------
    precision : float
        Mean precision at k, in [0, 1]; NaN if no user has a relevant
        held-out item.

    See Also
    --------
    recall_at_k : Share of the relevant items found in the top k.
    ndcg_at_k : Normalized discounted cumulative gain at k.
    make_ranking_scorer : The metric as a scorer for model selection.

    Examples
    --------
    >>> import numpy as np
    >>> from skmf import MFRegressor
    >>> from skmf.metrics import precision_at_k
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 2], [2, 1], [2, 2]])
    >>> y = np.array([5.0, 3.0, 4.0, 1.0, 2.0, 4.0])
    >>> model = MFRegressor(n_components=2, random_state=0).fit(X, y)

    Each user has one relevant item of two: with ``k=2`` both are ranked.

    >>> precision_at_k(model, X, y, k=2)
    0.5
    """
    hits, n_ranked, _, _, _ = _per_user(
        estimator, X, y, k, threshold, candidates, "binary", "precision_at_k"
    )
    return _mean(hits / np.maximum(n_ranked, 1))


@validate_params(_CONSTRAINTS, prefer_skip_nested_validation=True)
def recall_at_k(estimator, X, y=None, *, k=10, threshold=4.0, candidates="test"):
    """Mean recall at k: the share of each user's relevant items ranked in the top k.

    For each user with at least one relevant held-out item, recall at k is
    the number of relevant items among the ``k`` top-ranked candidates,
    divided by the number of the user's relevant held-out items. The result
    is the mean over these users. With ``candidates="all"``, relevant items
    the model cannot rank (rated in training, or unknown to the model) count
    as missed.

    {shared}

    Returns
    -------
    recall : float
        Mean recall at k, in [0, 1]; NaN if no user has a relevant held-out
        item.

    See Also
    --------
    precision_at_k : Share of the top k that is relevant.
    ndcg_at_k : Normalized discounted cumulative gain at k.
    make_ranking_scorer : The metric as a scorer for model selection.

    Examples
    --------
    >>> import numpy as np
    >>> from skmf import MFRegressor
    >>> from skmf.metrics import recall_at_k
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 2], [2, 1], [2, 2]])
    >>> y = np.array([5.0, 3.0, 4.0, 1.0, 2.0, 4.0])
    >>> model = MFRegressor(n_components=2, random_state=0).fit(X, y)
    >>> recall_at_k(model, X, y, k=2)
    1.0
    """
    hits, _, n_relevant, _, _ = _per_user(
        estimator, X, y, k, threshold, candidates, "binary", "recall_at_k"
    )
    return _mean(hits / n_relevant)


@validate_params(
    {**_CONSTRAINTS, "gain": [StrOptions({"binary", "rating"})]},
    prefer_skip_nested_validation=True,
)
def ndcg_at_k(
    estimator, X, y=None, *, k=10, threshold=4.0, candidates="test", gain="binary"
):
    """Mean normalized discounted cumulative gain at k over users.

    For each user with at least one relevant held-out item, the DCG at k of
    the ranked candidates is :math:`\\sum_{r=1}^{\\min(k, n)} g_r /
    \\log_2(r + 1)`, with :math:`g_r` the gain of the candidate at rank
    :math:`r` (0 for a candidate without a held-out rating); NDCG at k
    divides it by the DCG at k of the user's held-out gains sorted in
    decreasing order. The result is the mean over these users. With
    ``candidates="test"``, each user's term is what
    :func:`sklearn.metrics.ndcg_score` gives for the user's held-out gains
    and predicted ratings when the predictions have no ties.

    {shared}

    gain : {{"binary", "rating"}}, default="binary"
        The gain of a held-out item: "binary", 1 if relevant and 0 otherwise;
        "rating", its rating (graded relevance; ratings must be
        non-negative). Either way only users with a relevant item count.

    Returns
    -------
    ndcg : float
        Mean NDCG at k, in [0, 1]; NaN if no user has a relevant held-out
        item.

    See Also
    --------
    precision_at_k : Share of the top k that is relevant.
    recall_at_k : Share of the relevant items found in the top k.
    sklearn.metrics.ndcg_score : NDCG of rows of true and predicted scores.

    Examples
    --------
    >>> import numpy as np
    >>> from skmf import MFRegressor
    >>> from skmf.metrics import ndcg_at_k
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 2], [2, 1], [2, 2]])
    >>> y = np.array([5.0, 3.0, 4.0, 1.0, 2.0, 4.0])
    >>> model = MFRegressor(n_components=2, random_state=0).fit(X, y)
    >>> 0.0 <= ndcg_at_k(model, X, y, k=2) <= 1.0
    True
    """
    _, _, _, dcg, idcg = _per_user(
        estimator, X, y, k, threshold, candidates, gain, "ndcg_at_k"
    )
    return _mean(dcg / np.where(idcg > 0, idcg, 1.0))


for _function in (precision_at_k, recall_at_k, ndcg_at_k):
    _function.__doc__ = _function.__doc__.replace("{shared}", _SHARED_DOC.strip())
    _function.__doc__ = _function.__doc__.replace("{{", "{").replace("}}", "}")
del _function


class _RankingScorer:
    """A scorer ``scorer(estimator, X, y)`` calling a ranking metric.

    Greater is better, as scikit-learn's model selection expects.
    """

    def __init__(self, metric: str, kwargs: dict):
        self.metric = metric
        self.kwargs = kwargs

    def __call__(self, estimator, X, y=None, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(
                "Ranking scorers do not take sample weights; every held-out user "
                "counts the same."
            )
        function = {
            "precision": precision_at_k,
            "recall": recall_at_k,
            "ndcg": ndcg_at_k,
        }[self.metric]
        return function(estimator, X, y, **self.kwargs)

    def __repr__(self) -> str:
        args = "".join(f", {key}={value!r}" for key, value in self.kwargs.items())
        return f"make_ranking_scorer({self.metric!r}{args})"


@validate_params(
    {
        "metric": [StrOptions(set(_METRICS))],
        "k": [Interval(Integral, 1, None, closed="left")],
        "threshold": [Interval(Real, None, None, closed="neither")],
        "candidates": [StrOptions({"test", "all"})],
        "gain": [StrOptions({"binary", "rating"})],
    },
    prefer_skip_nested_validation=True,
)
def make_ranking_scorer(
    metric, *, k=10, threshold=4.0, candidates="test", gain="binary"
):
    """Make a scorer from a ranking metric, for model selection.

    The scorer is called as ``scorer(estimator, X, y)`` on held-out ratings
    and returns the metric (greater is better), so it can be passed as
    ``scoring=`` to :class:`~sklearn.model_selection.GridSearchCV`,
    :func:`~sklearn.model_selection.cross_val_score` and the like.

    Parameters
    ----------
    metric : {"precision", "recall", "ndcg"}
        :func:`precision_at_k`, :func:`recall_at_k` or :func:`ndcg_at_k`.

    k : int, default=10
        Number of top-ranked items considered per user.

    threshold : float, default=4.0
        A held-out item is relevant when its rating is at least ``threshold``.

    candidates : {"test", "all"}, default="test"
        The items ranked for each user (see :func:`precision_at_k`).

    gain : {"binary", "rating"}, default="binary"
        The gains of :func:`ndcg_at_k` (ignored by the other metrics).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None)`` returns the metric as a float.

    See Also
    --------
    sklearn.metrics.make_scorer : Scorers from prediction metrics.

    Examples
    --------
    >>> from sklearn.model_selection import KFold, cross_val_score
    >>> from skmf import MFRegressor
    >>> from skmf.datasets import make_ratings
    >>> from skmf.metrics import make_ranking_scorer
    >>> data = make_ratings(n_users=50, n_items=40, n_ratings=600, random_state=0)
    >>> scorer = make_ranking_scorer("ndcg", k=5, threshold=3.5)
    >>> scorer
    make_ranking_scorer('ndcg', k=5, threshold=3.5, candidates='test', gain='binary')
    >>> cv = KFold(3, shuffle=True, random_state=0)
    >>> model = MFRegressor(max_iter=10, random_state=0)
    >>> scores = cross_val_score(model, data.X, data.y, scoring=scorer, cv=cv)
    >>> scores.shape
    (3,)
    """
    kwargs = {"k": k, "threshold": threshold, "candidates": candidates}
    if metric == "ndcg":
        kwargs["gain"] = gain
    return _RankingScorer(metric, kwargs)


class _RatingScorer(_BaseScorer):
    """A scikit-learn scorer that reads the true ratings from ``X`` when y is None.

    It wraps a scorer of scikit-learn (a ``_BaseScorer``, as
    ``sklearn.metrics.get_scorer`` and ``make_scorer`` return) and behaves as
    it does, metadata routing and prediction caching in
    :func:`~sklearn.model_selection.cross_validate` included.
    """

    def __init__(self, scorer: _BaseScorer, name: str | None = None):
        super().__init__(
            scorer._score_func, scorer._sign, scorer._kwargs, scorer._response_method
        )
        self._scorer = scorer
        self._name = name

    def __call__(self, estimator, X, y_true=None, sample_weight=None, **kwargs):
        """Score ``estimator`` on ``X``; the ratings of ``X`` if ``y_true`` is None."""
        return super().__call__(
            estimator, X, y_true, sample_weight=sample_weight, **kwargs
        )

    def _score(self, method_caller, estimator, X, y_true=None, **kwargs):
        # cross_validate passes no y_true at all when y is None.
        if y_true is None:
            # Triples, a DataFrame with a rating column, a sparse matrix: the
            # ratings are in X, in the order in which predict reads X.
            weight = kwargs.get("sample_weight")
            data = parse_ratings(X, None, weight, need_ratings=True, caller="score")
            y_true = data.ratings
            if weight is not None:
                kwargs["sample_weight"] = data.weights
        return self._scorer._score(method_caller, estimator, X, y_true, **kwargs)

    def __repr__(self) -> str:
        inner = repr(self._name) if self._name is not None else repr(self._scorer)
        return f"get_scorer({inner})"


@validate_params({"scoring": [str, callable]}, prefer_skip_nested_validation=True)
def get_scorer(scoring):
    """Get a scikit-learn scorer that also scores triples and sparse matrices.

    scikit-learn's scorers compare ``estimator.predict(X)`` with ``y``. For
    (user, item, rating) triples, a DataFrame with a rating column or a
    sparse rating matrix, ``y`` is None: the ratings are in ``X``, so those
    scorers score NaN (``cross_val_score`` and ``GridSearchCV`` report it with
    a warning). The scorer returned here reads the ratings from ``X`` when
    ``y`` is None, in the order in which :meth:`skmf.MFRegressor.predict`
    reads ``X`` (for a sparse matrix, its stored entries in the order of
    ``X.tocoo()``; ``sample_weight`` in the same order), and is otherwise
    the scikit-learn scorer itself.

    Parameters
    ----------
    scoring : str or callable
        The name of a scikit-learn scorer, any of
        :func:`sklearn.metrics.get_scorer_names` (e.g.
        ``"neg_root_mean_squared_error"``, ``"neg_mean_absolute_error"``,
        ``"r2"``); or a scorer made by :func:`sklearn.metrics.make_scorer`,
        which is wrapped likewise. Any other callable is returned as it is
        (it gets ``y=None`` for triples and sparse matrices, as, for
        example, the scorers of :func:`make_ranking_scorer` expect).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None, sample_weight=None)``: the score,
        greater is better, for ``scoring=`` of
        :func:`~sklearn.model_selection.cross_val_score`,
        :class:`~sklearn.model_selection.GridSearchCV` and the like, alone
        or in a dict of scorers.

    Raises
    ------
    ValueError
        If ``scoring`` is not the name of a scikit-learn scorer.

    See Also
    --------
    sklearn.metrics.get_scorer : The scorers wrapped here.
    make_ranking_scorer : Ranking metrics as scorers.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import KFold, cross_val_score
    >>> from skmf import MFRegressor
    >>> from skmf.datasets import make_ratings
    >>> from skmf.metrics import get_scorer
    >>> data = make_ratings(n_users=50, n_items=40, n_ratings=600, random_state=0)
    >>> triples = np.column_stack([data.X, data.y])
    >>> rmse = get_scorer("neg_root_mean_squared_error")
    >>> rmse
    get_scorer('neg_root_mean_squared_error')

    The score is minus the RMSE of the predictions at the triples' ratings:

    >>> model = MFRegressor(max_iter=10, random_state=0).fit(triples)
    >>> error = model.predict(triples) - data.y
    >>> bool(np.isclose(rmse(model, triples), -np.sqrt(np.mean(error**2))))
    True

    It scores the folds of triples, where scikit-learn's scorer gives NaN:

    >>> cv = KFold(3, shuffle=True, random_state=0)
    >>> model = MFRegressor(max_iter=10, random_state=0)
    >>> scores = cross_val_score(model, triples, scoring=rmse, cv=cv)
    >>> bool(np.all(np.isfinite(scores)))
    True
    """
    if isinstance(scoring, _RatingScorer):
        return scoring
    if isinstance(scoring, str):
        return _RatingScorer(_sklearn_get_scorer(scoring), scoring)
    if isinstance(scoring, _BaseScorer):
        return _RatingScorer(scoring)
    return scoring
