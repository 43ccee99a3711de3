"""Independent NumPy references used by the tests (no skmf code inside)."""

import numpy as np


def predict_np(model, users, items):
    """mu + b_u + b_i + p_u . q_i, computed with plain NumPy from the fitted arrays."""
    uidx = {u: j for j, u in enumerate(model.users_.tolist())}
    iidx = {i: j for j, i in enumerate(model.items_.tolist())}
    out = np.empty(len(users))
    for n, (u, i) in enumerate(zip(list(users), list(items))):
        pred = model.intercept_
        ju, ji = uidx.get(u), iidx.get(i)
        if ju is not None:
            pred += float(model.user_bias_[ju])
        if ji is not None:
            pred += float(model.item_bias_[ji])
        if ju is not None and ji is not None:
            pred += float(
                np.dot(
                    model.user_factors_[ju].astype(np.float64),
                    model.item_factors_[ji].astype(np.float64),
                )
            )
        out[n] = pred
    return out


def rating_std(ratings, weights=None, fit_intercept=True):
    """The weighted standard deviation of the ratings (root mean square without
    an intercept): the unit of the factors' penalty (see ``alpha``)."""
    r = np.asarray(ratings, dtype=float)
    w = np.ones(len(r)) if weights is None else np.asarray(weights, float)
    centre = np.sum(w * r) / np.sum(w) if fit_intercept else 0.0
    return float(np.sqrt(np.sum(w * (r - centre) ** 2) / np.sum(w)))


def objective_np(model, users, items, ratings, weights=None, scaling="sqrt"):
    """The documented objective L / sum(w), by brute force over the ratings.

    The factors' penalty is alpha times the ratings' standard deviation, the
    biases' alpha_bias (the objective in the ratings' own units).
    """
    w = np.ones(len(ratings)) if weights is None else np.asarray(weights, float)
    uidx = {u: j for j, u in enumerate(model.users_.tolist())}
    iidx = {i: j for j, i in enumerate(model.items_.tolist())}
    nu = np.zeros(len(model.users_))
    ni = np.zeros(len(model.items_))
    sse = 0.0
    pred = predict_np(model, users, items)
    for u, i, r, wt, p in zip(users, items, ratings, w, pred):
        sse += wt * (r - p) ** 2
        nu[uidx[u]] += wt
        ni[iidx[i]] += wt
    cu = {"none": np.ones_like(nu), "count": nu, "sqrt": np.sqrt(nu)}[scaling]
    ci = {"none": np.ones_like(ni), "count": ni, "sqrt": np.sqrt(ni)}[scaling]
    a = model.alpha * rating_std(ratings, weights, model.fit_intercept)
    ab = model.alpha if model.alpha_bias is None else model.alpha_bias
    P = model.user_factors_.astype(np.float64)
    Q = model.item_factors_.astype(np.float64)
    pen = a * (cu @ (P**2).sum(1) + ci @ (Q**2).sum(1))
    pen += ab * (cu @ model.user_bias_.astype(float) ** 2)
    pen += ab * (ci @ model.item_bias_.astype(float) ** 2)
    return (sse + pen) / w.sum()
