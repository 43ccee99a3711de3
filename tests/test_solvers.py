"""The torch kernels against independent references (NumPy closed forms, autograd)."""

import warnings

import numpy as np
import pytest
import torch
from _reference import objective_np, rating_std
from sklearn.exceptions import ConvergenceWarning

from skmf import MFRegressor
from skmf._solvers import Factors, Penalty, Ratings
from skmf._solvers._als import RowGroups, penalty_diagonal, solve_rows
from skmf._solvers._sgd import SGDStep

# Many fits here stop at max_iter on purpose (short runs).
pytestmark = pytest.mark.usefixtures("quiet_short_fits")


def _tiny(seed=0, n_users=7, n_items=5, n=25, weighted=False):
    rng = np.random.RandomState(seed)
    pairs = {(rng.randint(n_users), rng.randint(n_items)) for _ in range(4 * n)}
    pairs = sorted(pairs)[:n]
    u = np.array([p[0] for p in pairs])
    i = np.array([p[1] for p in pairs])
    r = rng.uniform(1, 5, size=len(u))
    w = rng.uniform(0.2, 2.0, size=len(u)) if weighted else None
    return u, i, r, w


def _ratings(u, i, r, w, n_users, n_items, dtype=torch.float64):
    return Ratings(
        torch.as_tensor(u),
        torch.as_tensor(i),
        torch.as_tensor(r, dtype=dtype),
        None if w is None else torch.as_tensor(w, dtype=dtype),
        n_users,
        n_items,
    )


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("scaling", ["none", "count", "sqrt"])
def test_als_user_update_is_numpy_ridge_solution(weighted, scaling):
    """One batched ALS half-sweep equals a per-user np.linalg.solve."""
    u, i, r, w = _tiny(weighted=weighted)
    n_users, n_items, k = 7, 5, 3
    rng = np.random.RandomState(1)
    Q, bi = rng.normal(size=(n_items, k)), rng.normal(size=n_items)
    mu, alpha, alpha_b = 3.0, 0.3, 0.1
    data = _ratings(u, i, r, w, n_users, n_items)
    pen = Penalty.build(data, alpha, alpha_b, scaling)
    P_t = torch.zeros(n_users, k, dtype=torch.float64)
    bu_t = torch.zeros(n_users, dtype=torch.float64)
    groups = RowGroups(
        data.user, data.item, data.rating, data.weight, n_users, n_items, k
    )
    solve_rows(
        groups, P_t, bu_t, torch.as_tensor(Q), torch.as_tensor(bi),
        torch.tensor(mu, dtype=torch.float64), pen.user_coef,
        penalty_diagonal(alpha, alpha_b, k, P_t),
    )  # fmt: skip

    wt = np.ones(len(r)) if w is None else w
    for user in range(n_users):
        m = u == user
        if not m.any():
            continue
        n_u = wt[m].sum()
        c = {"none": 1.0, "count": n_u, "sqrt": np.sqrt(n_u)}[scaling]
        Z = np.column_stack([Q[i[m]], np.ones(m.sum())])
        t = r[m] - mu - bi[i[m]]
        A = Z.T @ (wt[m, None] * Z) + c * np.diag([alpha] * k + [alpha_b])
        x = np.linalg.solve(A, Z.T @ (wt[m] * t))
        np.testing.assert_allclose(P_t[user].numpy(), x[:k], rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(float(bu_t[user]), x[k], rtol=1e-9, atol=1e-10)


def _autograd_objective(u, i, r, w, P, Q, bu, bi, mu, alpha, alpha_b, scaling):
    """The documented objective written directly with torch ops (sum form)."""
    wt = torch.ones_like(r) if w is None else w
    pred = mu + bu[u] + bi[i] + (P[u] * Q[i]).sum(1)
    nu = torch.zeros(P.shape[0], dtype=r.dtype).index_add_(0, u, wt)
    ni = torch.zeros(Q.shape[0], dtype=r.dtype).index_add_(0, i, wt)
    f = {"none": torch.ones_like, "count": lambda x: x, "sqrt": torch.sqrt}[scaling]
    cu, ci = f(nu), f(ni)
    return (
        (wt * (r - pred) ** 2).sum()
        + alpha * (cu @ (P**2).sum(1) + ci @ (Q**2).sum(1))
        + alpha_b * (cu @ bu**2 + ci @ bi**2)
    )


@pytest.mark.parametrize("scaling", ["none", "count", "sqrt"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_als_converges_to_a_stationary_point_of_the_objective(scaling, fit_intercept):
    """At ALS convergence the autograd gradient of the documented objective is ~0."""
    u, i, r, w = _tiny(seed=3, n_users=12, n_items=9, n=70, weighted=True)
    X = np.column_stack([u, i])
    model = MFRegressor(
        n_components=3, alpha=0.5, alpha_bias=0.2, alpha_scaling=scaling,
        max_iter=3000, tol=0, n_iter_no_change=3000, dtype="float64",
        fit_intercept=fit_intercept, random_state=0,
    )  # fmt: skip
    with pytest.warns(ConvergenceWarning):  # max_iter reached: tol=0 never converges
        model.fit(X, r, sample_weight=w)
    uc = np.searchsorted(model.users_, u)
    ic = np.searchsorted(model.items_, i)
    params = [
        torch.tensor(a, dtype=torch.float64, requires_grad=True)
        for a in (
            model.user_factors_, model.item_factors_, model.user_bias_,
            model.item_bias_, model.intercept_,
        )
    ]  # fmt: skip
    std = rating_std(r, w, fit_intercept)  # alpha is per unit of it
    loss = _autograd_objective(
        torch.as_tensor(uc), torch.as_tensor(ic), torch.as_tensor(r),
        torch.as_tensor(w), *params, 0.5 * std, 0.2, scaling,
    )  # fmt: skip
    grads = torch.autograd.grad(loss, params)
    if not fit_intercept:
        assert model.intercept_ == 0.0
        grads = grads[:4]
    for g in grads:
        assert float(g.abs().max()) < 1e-6
    # The reported objective is the documented one, per unit of weight.
    ref = objective_np(model, u, i, r, w, scaling=scaling)
    np.testing.assert_allclose(model.loss_curve_[-1], ref, rtol=1e-8)
    np.testing.assert_allclose(loss.item() / w.sum(), ref, rtol=1e-8)


def test_sgd_minibatch_gradients_match_autograd():
    """The hand-written per-rating gradients are those of the documented terms."""
    u, i, r, w = _tiny(seed=5, n_users=6, n_items=6, n=30, weighted=True)
    data = _ratings(u, i, r, w, 6, 6)
    rng = np.random.RandomState(0)
    F = Factors(
        torch.as_tensor(rng.normal(size=(6, 4))),
        torch.as_tensor(rng.normal(size=(6, 4))),
        torch.as_tensor(rng.normal(size=6)), torch.as_tensor(rng.normal(size=6)),
        torch.tensor(3.0, dtype=torch.float64),
    )  # fmt: skip
    pen = Penalty.build(data, 0.7, 0.3, "sqrt")
    step = SGDStep(
        F, data, pen, learning_rate=0.1, batch_size=30, fit_intercept=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    idx = torch.arange(len(r))
    g = step._gradients(idx)
    uu, ii, g_p, g_q, g_bu, g_bi, g_mu, loss = (
        g.u,
        g.i,
        g.g_p,
        g.g_q,
        g.g_bu,
        g.g_bi,
        g.g_mu,
        g.loss,
    )
    # Summed over the whole data set, the per-rating terms give L and grad L.
    params = [t.clone().requires_grad_(True) for t in (F.P, F.Q, F.bu, F.bi, F.mu)]
    ref = _autograd_objective(
        data.user, data.item, data.rating, data.weight, *params, 0.7, 0.3, "sqrt"
    )
    gP, gQ, gbu, gbi, gmu = torch.autograd.grad(ref, params)
    np.testing.assert_allclose(float(loss), ref.item(), rtol=1e-10)
    zeros = torch.zeros_like
    torch.testing.assert_close(zeros(F.P).index_add_(0, uu, g_p), gP)
    torch.testing.assert_close(zeros(F.Q).index_add_(0, ii, g_q), gQ)
    torch.testing.assert_close(zeros(F.bu).index_add_(0, uu, g_bu), gbu)
    torch.testing.assert_close(zeros(F.bi).index_add_(0, ii, g_bi), gbi)
    torch.testing.assert_close(g_mu, gmu)


def test_sgd_step_caps_use_the_rows_curvature():
    """Summed per-rating curvatures: exact for biases, a bound on lambda_max for
    factors (autograd Hessian of the documented objective)."""
    n_users, n_items, k = 5, 6, 3
    u, i, r, w = _tiny(seed=2, n_users=n_users, n_items=n_items, n=24, weighted=True)
    data = _ratings(u, i, r, w, n_users, n_items)
    rng = np.random.RandomState(1)
    F = Factors(
        torch.as_tensor(rng.normal(size=(n_users, k))),
        torch.as_tensor(rng.normal(size=(n_items, k))),
        torch.as_tensor(rng.normal(size=n_users)),
        torch.as_tensor(rng.normal(size=n_items)),
        torch.tensor(3.0, dtype=torch.float64),
    )
    alpha, alpha_b = 0.7, 0.3
    pen = Penalty.build(data, alpha, alpha_b, "sqrt")
    step = SGDStep(
        F, data, pen, learning_rate=0.1, batch_size=len(r), fit_intercept=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    g = step._gradients(torch.arange(len(r)), curvatures=True)

    def per_row(rows, h, n):
        return torch.zeros(n, dtype=h.dtype).index_add_(0, rows, h)

    H = {
        "P": per_row(g.u, g.h_p, n_users), "bu": per_row(g.u, g.h_bu, n_users),
        "Q": per_row(g.i, g.h_q, n_items), "bi": per_row(g.i, g.h_bi, n_items),
    }  # fmt: skip
    base = {"P": F.P, "Q": F.Q, "bu": F.bu, "bi": F.bi}

    def hessian(name, row):
        """Autograd Hessian of L in one row of one parameter, others fixed."""

        def loss(x):
            params = dict(base)
            params[name] = base[name].clone()
            params[name][row] = x
            return _autograd_objective(
                data.user, data.item, data.rating, data.weight, params["P"],
                params["Q"], params["bu"], params["bi"], F.mu, alpha, alpha_b,
                "sqrt",
            )  # fmt: skip

        return torch.autograd.functional.hessian(loss, base[name][row].clone())

    for factors, bias, n_rows in (("P", "bu", n_users), ("Q", "bi", n_items)):
        for row in range(n_rows):
            hess = hessian(factors, row)
            # lambda_max <= H <= trace: the cap is a tight, safe bound.
            assert torch.linalg.eigvalsh(hess).max() <= H[factors][row] + 1e-12
            assert H[factors][row] <= torch.trace(hess) + 1e-12
            torch.testing.assert_close(hessian(bias, row), H[bias][row])


def test_sgd_is_stable_with_large_batches_and_large_factors():
    """One popular item in every rating of a huge batch, factors of norm 10."""
    from skmf.datasets import make_ratings

    data = make_ratings(
        n_users=2000, n_items=50, n_ratings=40_000, random_state=0
    )  # fmt: skip
    model = MFRegressor(
        solver="sgd", batch_size=40_000, learning_rate=0.05, max_iter=5,
        init="random", init_std=10.0, tol=0, random_state=0,
    )  # fmt: skip
    model.fit(data.X, data.y)
    assert np.all(np.diff(model.loss_curve_) < 0), model.loss_curve_


def test_als_objective_never_increases(small_ratings):
    model = MFRegressor(solver="als", max_iter=15, tol=0, random_state=0)
    with pytest.warns(ConvergenceWarning):
        model.fit(small_ratings.X, small_ratings.y)
    curve = np.asarray(model.loss_curve_)
    assert np.all(np.diff(curve) <= 1e-6 * curve[:-1])
    ref = objective_np(model, *small_ratings.X.T, small_ratings.y)
    np.testing.assert_allclose(curve[-1], ref, rtol=1e-4)


@pytest.mark.parametrize("solver", ["als", "sgd", "adam"])
def test_every_solver_lowers_the_same_objective(small_ratings, solver):
    """Each solver ends well below the objective of the bias-free mean model,
    and near the ALS optimum (all three minimise one objective)."""
    X, y = small_ratings.X, small_ratings.y
    params = {
        "n_components": 5,
        "alpha": 1.0,
        "random_state": 0,
        "max_iter": 60,
        "tol": 1e-5,
    }
    ref_model = MFRegressor(**params, solver="als").fit(X, y)
    best = objective_np(ref_model, *X.T, y)
    model = MFRegressor(**params, solver=solver).fit(X, y)
    value = objective_np(model, *X.T, y)
    mean_model_value = np.var(y)  # P = Q = 0, b = 0, mu = mean: L / n = var(y)
    assert value < 0.7 * mean_model_value
    assert value < 1.1 * best


@pytest.mark.parametrize("weighted", [False, True])
def test_spectral_start_is_the_truncated_svd_of_the_centred_ratings(weighted):
    """init="svd": P Q^T is the best rank-k fit of R = w (r - mu) (NumPy SVD)."""
    from skmf._solvers import group_ratings, spectral_factors

    n_users, n_items, k = 9, 6, 3
    u, i, r, w = _tiny(
        seed=3, n_users=n_users, n_items=n_items, n=40, weighted=weighted
    )
    data = _ratings(u, i, r, w, n_users, n_items)
    mu = 3.1
    P, Q, rank = spectral_factors(
        *group_ratings(data, k), mu, k, torch.Generator().manual_seed(0)
    )
    R = np.zeros((n_users, n_items))
    np.add.at(R, (u, i), (1.0 if w is None else w) * (r - mu))
    U, S, Vt = np.linalg.svd(R)
    # The sketch (k + 8 columns) spans all 6 item columns: the SVD is exact.
    assert rank == k
    np.testing.assert_allclose(
        (P @ Q.T).numpy(), (U[:, :k] * S[:k]) @ Vt[:k], rtol=1e-9, atol=1e-10
    )
    # Balanced split P = U sqrt(S), Q = V sqrt(S).
    np.testing.assert_allclose((P.T @ P).numpy(), np.diag(S[:k]), atol=1e-9)
    np.testing.assert_allclose((Q.T @ Q).numpy(), np.diag(S[:k]), atol=1e-9)


def test_als_singular_system_gets_the_least_norm_solution():
    """alpha=0 and fewer ratings than k + 1: NumPy's least-squares minimum norm."""
    rng = np.random.RandomState(0)
    n_items, k = 6, 4
    Q, bi = rng.normal(size=(n_items, k)), rng.normal(size=n_items)
    u = np.array([0, 0, 1, 1, 1])  # 2 and 3 ratings for 5 unknowns
    i = np.array([0, 3, 1, 2, 5])
    r = np.array([4.0, 2.0, 5.0, 1.0, 3.0])
    mu = 3.0
    data = _ratings(u, i, r, None, 2, n_items)
    pen = Penalty.build(data, 0.0, 0.0, "none")
    groups = RowGroups(data.user, data.item, data.rating, None, 2, n_items, k)
    P = torch.zeros(2, k, dtype=torch.float64)
    bu = torch.zeros(2, dtype=torch.float64)
    solve_rows(
        groups, P, bu, torch.as_tensor(Q), torch.as_tensor(bi),
        torch.tensor(mu, dtype=torch.float64), pen.user_coef,
        penalty_diagonal(0.0, 0.0, k, P),
    )  # fmt: skip
    for user in range(2):
        m = u == user
        Z = np.column_stack([Q[i[m]], np.ones(m.sum())])
        x = np.linalg.lstsq(Z, r[m] - mu - bi[i[m]], rcond=None)[0]
        np.testing.assert_allclose(P[user].numpy(), x[:k], atol=1e-8)
        np.testing.assert_allclose(float(bu[user]), x[k], atol=1e-8)


@pytest.mark.parametrize("min_ratings", [1, 50, 10**9])
def test_merged_length_buckets_cover_every_rated_row_once(min_ratings):
    from skmf._solvers._als import _length_grid, _merge_buckets

    rng = np.random.RandomState(0)
    counts = torch.as_tensor(rng.zipf(1.5, size=300).clip(max=500))
    counts[::7] = 0  # rows without ratings are left out
    grid = torch.tensor(_length_grid(int(counts.max())))
    bucket = torch.bucketize(counts, grid)
    groups = _merge_buckets(bucket, counts, grid, min_ratings)
    rows = torch.cat([r for r, _ in groups])
    np.testing.assert_array_equal(
        np.sort(rows.numpy()), np.flatnonzero(counts.numpy() > 0)
    )
    for r, length in groups:
        assert torch.all(counts[r] <= length)  # each row fits its padding
    if min_ratings == 1:  # no merging: one group per distinct bucket
        assert len(groups) == len(torch.unique(bucket[counts > 0]))
    if min_ratings == 10**9:  # everything merged into one group
        assert len(groups) == 1


@pytest.mark.parametrize("n", [0, 1, 1000, 1_500_000])
def test_counting_sort_groups_pairs_as_a_stable_sort(n):
    """group_by_row against NumPy's stable argsort, at sizes below and above
    the one where its arrays go to a memory map (4 MiB), with int32 and int64
    codes, and the spare entry after the columns."""
    from skmf._data import group_by_row

    rng = np.random.default_rng(n)
    rows = rng.integers(0, 5000, n)
    cols = rng.integers(0, 3000, n)
    order = np.argsort(rows, kind="stable")
    for dtype in (np.int64, np.int32):
        indptr, out_cols, got = group_by_row(
            rows.astype(dtype), cols.astype(dtype), 5000, spare=1
        )
        np.testing.assert_array_equal(got, order)
        np.testing.assert_array_equal(out_cols[:n], cols[order])
        assert len(out_cols) == n + 1 and out_cols.dtype == np.int32
        np.testing.assert_array_equal(
            np.diff(indptr), np.bincount(rows, minlength=5000)
        )
        out_cols[-1] = -1  # the spare entry is the caller's


# Exact up to round-off for the deterministic solvers; the stochastic ones
# see the same standardized problem and the same random draws, so only
# round-off of the standardization separates them too.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["als", "sgd", "adam", "gibbs"])
@pytest.mark.parametrize(
    "scale, shift",
    [(1e-3, 0.0), (1e-3, 7.0), (0.5, -3.0), (64.0, 0.0), (40.0, 100.0), (1e3, -1e4)],
)
def test_every_solver_is_invariant_to_the_units_of_the_ratings(
    small_ratings, solver, scale, shift
):
    """Fitting a r + b with every parameter at its default gives a r_hat + b."""
    X, y = small_ratings.X, small_ratings.y
    params = {"solver": solver, "random_state": 0, "dtype": "float64"}
    if solver == "gibbs":
        params["max_iter"] = 20
    ref = MFRegressor(**params).fit(X, y)
    model = MFRegressor(**params).fit(X, scale * y + shift)
    pred, expected = model.predict(X), scale * ref.predict(X) + shift
    if solver == "gibbs" and np.log2(scale) % 1:
        # A Markov chain amplifies the round-off of the standardization (a
        # scale that is not a power of 2 changes the last bits of the
        # standardized ratings): the two chains end apart by Monte Carlo
        # noise, far below the ratings' spread.
        assert np.abs(pred - expected).max() < 0.05 * scale * y.std()
        return
    np.testing.assert_allclose(pred, expected, rtol=1e-7, atol=1e-7 * scale)
    assert model.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(
        model.loss_curve_, np.array(ref.loss_curve_) * scale**2, rtol=1e-6
    )


@pytest.mark.parametrize("scale", [1e-20, 1e-6, 1e7, 1e30])
def test_float32_fits_on_any_scale(small_ratings, scale):
    """float32 must not take well-posed systems for singular ones, nor
    overflow or underflow, whatever the units of the ratings."""
    X, y = small_ratings.X, small_ratings.y
    params = {"n_components": 8, "max_iter": 5, "tol": 0, "random_state": 0}
    with pytest.warns(ConvergenceWarning):  # max_iter reached
        ref = MFRegressor(**params).fit(X, y)
    with pytest.warns(ConvergenceWarning):
        model = MFRegressor(**params).fit(X, y * scale)
    np.testing.assert_allclose(
        np.array(model.loss_curve_) / scale**2, ref.loss_curve_, rtol=1e-5
    )
    # Factors are defined up to a rotation: compare the predictions.
    np.testing.assert_allclose(model.predict(X) / scale, ref.predict(X), atol=1e-4)


def test_accumulator_dtype_is_float32_only_on_mps():
    from skmf._solvers._common import accumulator_dtype

    assert accumulator_dtype(torch.device("mps")) == torch.float32
    for name in ("cpu", "cuda", "cuda:1", "meta"):
        assert accumulator_dtype(torch.device(name)) == torch.float64


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["als", "sgd", "adam", "gibbs"])
def test_fit_makes_no_float64_tensor_with_mps_accumulators(small_ratings, solver,
                                                           monkeypatch):  # fmt: skip
    # Apple's MPS has no float64: with its float32 accumulators, a float32 fit
    # must not make a single float64 tensor (on the CPU here, there); and the
    # fit must stay close to the one that sums in float64.
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_flatten

    from skmf._solvers import _als, _common, _gibbs, _sgd

    X, y = small_ratings.X, small_ratings.y
    params = {"solver": solver, "max_iter": 4, "random_state": 0}
    reference = MFRegressor(**params).fit(X, y)
    for module in (_als, _common, _gibbs, _sgd):
        monkeypatch.setattr(module, "accumulator_dtype", lambda device: torch.float32)
    made = []

    class RecordFloat64(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor) and t.dtype == torch.float64:
                    made.append(getattr(func, "__name__", str(func)))
            return out

    with RecordFloat64():
        model = MFRegressor(**params).fit(X, y)
    assert made == []
    np.testing.assert_allclose(model.loss_curve_, reference.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(model.predict(X), reference.predict(X), atol=1e-3)


# ------------------------------------------------- numerical robustness at extremes
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sgd_with_large_weights_or_repeated_pairs_fits(small_ratings, seed):
    """Weights up to 100, or every pair rated three times without an
    intercept, used to make SGD report a false divergence."""
    X, y = small_ratings.X, small_ratings.y
    w = np.random.default_rng(seed).uniform(1, 100, len(y))
    model = MFRegressor(solver="sgd", random_state=seed).fit(X, y, sample_weight=w)
    assert np.sqrt(np.average((model.predict(X) - y) ** 2, weights=w)) < y.std()
    X3, y3 = np.vstack([X, X, X]), np.concatenate([y, y + 0.5, y - 0.5])
    model = MFRegressor(solver="sgd", fit_intercept=False, random_state=seed)
    model.fit(X3, y3)
    assert np.sqrt(np.mean((model.predict(X) - y) ** 2)) < y.std()


@pytest.mark.parametrize("solver", ["als", "sgd", "adam", "gibbs"])
def test_constant_ratings_fit_exactly(solver):
    """All-zero (or all-equal) ratings used to make Adam report a divergence:
    every solver fits them, close to exactly in a few iterations."""
    for X, y in (([[0, 0]], [0.0]), ([[0, 0], [1, 1], [1, 0]], [3.0, 3.0, 3.0])):
        model = MFRegressor(solver=solver, max_iter=5, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        pred = model.predict(X)
        assert np.all(np.isfinite(pred))
        if solver != "gibbs":  # a posterior from 1-3 equal ratings is wide
            np.testing.assert_allclose(pred, y, atol=0.1)


def test_extreme_values_are_clear_errors(small_ratings):
    X, y = small_ratings.X, small_ratings.y
    with pytest.raises(ValueError, match="Ratings above 1e\\+150.*Rescale"):
        MFRegressor(dtype="float64").fit(X, y * 1e160)
    model = MFRegressor(dtype="float64", random_state=0).fit(X, y)
    before = model.predict(X[:5])
    with pytest.raises(ValueError, match="Rescale|standard deviations"):
        model.partial_fit([[7, 0]], [1e300])
    np.testing.assert_array_equal(model.predict(X[:5]), before)  # unchanged
    for params, match in (
        ({"alpha": 3.5e38}, "'alpha' parameter"),
        ({"alpha_bias": 1e39}, "'alpha_bias' parameter"),
        ({"init_std": 1e20, "init": "random"}, "'init_std' parameter"),
        ({"n_jobs": 0}, "'n_jobs' parameter"),
    ):
        with pytest.raises(ValueError, match=match):
            MFRegressor(**params).fit(X, y)
    with pytest.raises(ValueError, match="n_jobs"):
        model.set_params(n_jobs=0).predict(X[:5])
