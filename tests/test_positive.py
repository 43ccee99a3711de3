"""Non-negative factors (positive=True) against an independent NNLS.

The reference is scipy.optimize.nnls, with the free bias split as
b = b+ - b- (two non-negative unknowns) and the ridge penalty written as extra
rows of the least-squares problem.
"""

import numpy as np
import pytest
import torch
from scipy.optimize import nnls
from sklearn.exceptions import ConvergenceWarning

from skmf import MFRegressor
from skmf._solvers import Penalty, Ratings, fold_in
from skmf._solvers._als import RowGroups, penalty_diagonal
from skmf._solvers._nnls import batched_nnls, nnls_rows, nonnegative_start

pytestmark = pytest.mark.usefixtures("quiet_short_fits")


@pytest.fixture(scope="module")
def data(ratings_60x40):
    return ratings_60x40


def _scipy_row(D, t, wt, reg):
    """argmin sum w (t - D v)^2 + sum reg v^2 with v[:-1] >= 0, v[-1] free."""
    M = np.vstack([np.sqrt(wt)[:, None] * D, np.diag(np.sqrt(reg))])
    d = np.concatenate([np.sqrt(wt) * t, np.zeros(len(reg))])
    split = np.column_stack([M, -M[:, -1]])  # b = b+ - b-
    x, _ = nnls(split, d, maxiter=1000)
    return np.concatenate([x[:-2], [x[-2] - x[-1]]])


@pytest.mark.parametrize("seed", range(5))
def test_batched_nnls_matches_scipy(seed):
    """Random SPD systems: 1/2 v'Av - v'h with v[:k] >= 0 (as least squares)."""
    rng = np.random.RandomState(seed)
    B, m = 40, 6
    Ms = rng.normal(size=(B, 10, m))
    ds = rng.normal(size=(B, 10)) + 0.5
    A = np.einsum("bij,bik->bjk", Ms, Ms)
    h = np.einsum("bij,bi->bj", Ms, ds)
    v = batched_nnls(torch.as_tensor(A), torch.as_tensor(h), m - 1).numpy()
    n_active = 0
    for b in range(B):
        split = np.column_stack([Ms[b], -Ms[b][:, -1]])
        x, _ = nnls(split, ds[b])
        ref = np.concatenate([x[:-2], [x[-2] - x[-1]]])
        np.testing.assert_allclose(v[b], ref, rtol=1e-8, atol=1e-10)
        n_active += int((ref[:-1] == 0).sum())
    assert n_active > 0  # the constraints matter in these systems
    assert np.all(v[:, :-1] >= 0)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("scaling", ["none", "sqrt"])
def test_nnls_rows_are_the_scipy_solutions_of_each_rows_problem(weighted, scaling):
    rng = np.random.RandomState(0)
    n_users, n_items, k = 8, 6, 3
    pairs = sorted({(rng.randint(n_users), rng.randint(n_items)) for _ in range(90)})
    u = np.array([p[0] for p in pairs])
    i = np.array([p[1] for p in pairs])
    r = rng.uniform(1, 5, size=len(u))
    w = rng.uniform(0.2, 2.0, size=len(u)) if weighted else None
    Q, bi, mu = np.abs(rng.normal(size=(n_items, k))), rng.normal(size=n_items), 3.0
    alpha, alpha_b = 0.3, 0.1
    data = Ratings(
        torch.as_tensor(u), torch.as_tensor(i), torch.as_tensor(r),
        None if w is None else torch.as_tensor(w), n_users, n_items,
    )  # fmt: skip
    pen = Penalty.build(data, alpha, alpha_b, scaling)
    groups = RowGroups(data.user, data.item, data.rating, data.weight, n_users,
                       n_items, k)  # fmt: skip
    P = torch.as_tensor(rng.uniform(size=(n_users, k)))  # warm start
    bu = torch.zeros(n_users, dtype=torch.float64)
    nnls_rows(
        groups, P, bu, torch.as_tensor(Q), torch.as_tensor(bi),
        torch.tensor(mu, dtype=torch.float64), pen.user_coef,
        penalty_diagonal(alpha, alpha_b, k, P),
    )  # fmt: skip
    wt = np.ones(len(r)) if w is None else w
    zeros = 0
    for user in range(n_users):
        sel = u == user
        if not sel.any():
            continue
        n_u = wt[sel].sum()
        c = {"none": 1.0, "sqrt": np.sqrt(n_u)}[scaling]
        D = np.column_stack([Q[i[sel]], np.ones(sel.sum())])
        ref = _scipy_row(D, r[sel] - mu - bi[i[sel]], wt[sel],
                         c * np.array([alpha] * k + [alpha_b]))  # fmt: skip
        np.testing.assert_allclose(P[user].numpy(), ref[:k], rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(float(bu[user]), ref[k], rtol=1e-8, atol=1e-10)
        zeros += int((ref[:k] == 0).sum())
    assert zeros > 0


def test_fold_in_with_positive_is_nnls():
    rng = np.random.RandomState(1)
    k, n_items = 3, 8
    Y, by = np.abs(rng.normal(size=(n_items, k))), rng.normal(size=n_items)
    rows = np.array([0, 0, 0, 0, 1, 1, 1])
    other = np.array([0, 2, 3, 7, 1, 2, 5])
    ratings = np.array([1.0, 5.0, 2.0, 1.0, 4.0, 4.5, 1.0])
    X, bx = fold_in(
        rows, other, ratings, None, 2, Y, by, 3.0, alpha=0.2, alpha_bias=0.1,
        scaling="none", device=torch.device("cpu"), positive=True,
    )  # fmt: skip
    for row in range(2):
        sel = rows == row
        D = np.column_stack([Y[other[sel]], np.ones(sel.sum())])
        ref = _scipy_row(D, ratings[sel] - 3.0 - by[other[sel]], np.ones(sel.sum()),
                         np.array([0.2] * k + [0.1]))  # fmt: skip
        np.testing.assert_allclose(X[row], ref[:k], rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(bx[row], ref[k], rtol=1e-8, atol=1e-10)


def test_nonnegative_start_keeps_the_larger_part_of_each_component():
    """NNDSVD on spectral columns, absolute values on random ones."""
    from skmf._solvers import Factors

    rng = np.random.RandomState(0)
    P0, Q0 = rng.normal(size=(10, 3)), rng.normal(size=(8, 3))
    F = Factors(torch.as_tensor(P0), torch.as_tensor(Q0), *(torch.zeros(n) for n in
                (10, 8)), torch.tensor(0.0))  # fmt: skip
    nonnegative_start(F, 2)
    for j in range(2):
        p, q = P0[:, j], Q0[:, j]
        pos = np.linalg.norm(p.clip(0)) * np.linalg.norm(q.clip(0))
        neg = np.linalg.norm((-p).clip(0)) * np.linalg.norm((-q).clip(0))
        ep, eq = (p.clip(0), q.clip(0)) if pos >= neg else ((-p).clip(0), (-q).clip(0))
        got_p, got_q = F.P[:, j].numpy(), F.Q[:, j].numpy()
        np.testing.assert_allclose(got_p[ep > 0], ep[ep > 0])
        np.testing.assert_allclose(got_q[eq > 0], eq[eq > 0])
        np.testing.assert_allclose(got_p[ep == 0], 0.01 * ep.mean())
    np.testing.assert_allclose(F.P[:, 2].numpy(), np.abs(P0[:, 2]))
    assert np.all(F.P.numpy() >= 0) and np.all(F.Q.numpy() >= 0)


# ------------------------------------------------------------- estimator
@pytest.mark.parametrize("solver", ["als", "sgd", "adam"])
@pytest.mark.parametrize("init", ["svd", "random"])
def test_every_solver_fits_non_negative_factors(data, solver, init):
    params = {"solver": solver, "init": init, "n_components": 4, "random_state": 0}
    model = MFRegressor(positive=True, **params).fit(data.X, data.y)
    assert np.all(model.user_factors_ >= 0) and np.all(model.item_factors_ >= 0)
    assert (model.user_factors_ > 0).any() and (model.item_factors_ > 0).any()
    # Fewer degrees of freedom than free factors, but a fit of the ratings.
    free = MFRegressor(**params).fit(data.X, data.y)
    rmse = np.sqrt(np.mean((model.predict(data.X) - data.y) ** 2))
    assert rmse < data.y.std()
    assert rmse < 1.5 * np.sqrt(np.mean((free.predict(data.X) - data.y) ** 2))


def test_als_objective_never_increases_and_ends_at_a_kkt_point(data):
    """Each ALS half-sweep is exact: at the end the users are the NNLS solutions
    given the items (scipy), and the objective went down at every sweep."""
    model = MFRegressor(
        positive=True, n_components=3, max_iter=40, tol=0, random_state=0,
        dtype="float64", alpha=1.05,  # converged enough after 40 sweeps
    )  # fmt: skip
    with pytest.warns(ConvergenceWarning):
        model.fit(data.X, data.y)
    curve = np.asarray(model.loss_curve_)
    assert np.all(np.diff(curve) <= 1e-10 * curve[:-1])
    u = np.searchsorted(model.users_, data.X[:, 0])
    i = np.searchsorted(model.items_, data.X[:, 1])
    Q, bi = model.item_factors_, model.item_bias_
    lam = model.alpha * data.y.std()
    for user in range(0, len(model.users_), 7):
        sel = u == user
        c = np.sqrt(sel.sum())
        D = np.column_stack([Q[i[sel]], np.ones(sel.sum())])
        t = data.y[sel] - model.intercept_ - bi[i[sel]]
        ref = _scipy_row(
            D, t, np.ones(sel.sum()), c * np.array([lam] * 3 + [model.alpha])
        )
        # The last sweep moved the items after the users: close, not exact.
        np.testing.assert_allclose(model.user_factors_[user], ref[:3], atol=2e-3)


@pytest.mark.parametrize("solver", ["als", "sgd", "adam"])
def test_every_solver_is_invariant_to_the_units_of_the_ratings(data, solver):
    params = {"positive": True, "solver": solver, "random_state": 0,
              "dtype": "float64", "max_iter": 8}  # fmt: skip
    ref = MFRegressor(**params).fit(data.X, data.y)
    for scale, shift in ((1e-3, 7.0), (40.0, 100.0)):
        model = MFRegressor(**params).fit(data.X, scale * data.y + shift)
        np.testing.assert_allclose(
            model.predict(data.X), scale * ref.predict(data.X) + shift,
            rtol=1e-7, atol=1e-7 * scale,
        )  # fmt: skip


def test_partial_fit_and_fold_in_keep_the_factors_non_negative(data):
    model = MFRegressor(positive=True, n_components=3, random_state=0)
    model.fit(data.X, data.y)
    model.partial_fit([[999, data.X[0, 1]], [999, data.X[1, 1]], [0, 5]],
                      [5.0, 1.0, 2.0])  # fmt: skip
    assert np.all(model.user_factors_ >= 0) and np.all(model.item_factors_ >= 0)
    items = model.items_[:4]
    ids, scores = model.recommend(
        1234, n=len(model.items_), ratings=dict(zip(items, [5.0, 1.0, 4.0, 2.0])),
        exclude_seen=False,
    )  # fmt: skip
    assert np.all(np.isfinite(scores))


def test_gibbs_is_a_clear_error(data):
    with pytest.raises(ValueError, match="positive=True is not available with "
                                         "solver='gibbs'"):  # fmt: skip
        MFRegressor(positive=True, solver="gibbs").fit(data.X, data.y)
