"""SVD++ (implicit_feedback=True) against independent references.

NumPy formulas and solves written from the documented objective, autograd for
the minibatch gradients, brute-force objectives for the conjugate-gradient
block, and the units invariance of every solver that runs it.
"""

import numpy as np
import pytest
import torch
from _reference import rating_std
from sklearn.exceptions import ConvergenceWarning

from skmf import MFRegressor
from skmf._persist import load_model, save_model
from skmf._solvers import Penalty, Ratings
from skmf._solvers._svdpp import (
    IMPLICIT_PENALTY,
    ImplicitALSStep,
    ImplicitFactors,
    ImplicitSets,
    ImplicitSGDStep,
    update_implicit,
    user_grams,
)
from skmf.datasets import make_ratings

pytestmark = pytest.mark.usefixtures("quiet_short_fits")


@pytest.fixture(scope="module")
def data():
    """50 users x 30 items, 600 distinct pairs, ratings 1-5."""
    return make_ratings(
        n_users=50, n_items=30, n_ratings=600, n_components=3, noise=0.3,
        random_state=0,
    )  # fmt: skip


def _tiny(seed=0, n_users=7, n_items=6, n=28, weighted=False):
    rng = np.random.RandomState(seed)
    pairs = sorted({(rng.randint(n_users), rng.randint(n_items)) for _ in range(4 * n)})
    pairs = pairs[:n]
    u = np.array([p[0] for p in pairs])
    i = np.array([p[1] for p in pairs])
    r = rng.uniform(1, 5, size=len(u))
    w = rng.uniform(0.2, 2.0, size=len(u)) if weighted else None
    return u, i, r, w


def _ratings(u, i, r, w, n_users, n_items):
    return Ratings(
        torch.as_tensor(u), torch.as_tensor(i),
        torch.as_tensor(r, dtype=torch.float64),
        None if w is None else torch.as_tensor(w, dtype=torch.float64),
        n_users, n_items,
    )  # fmt: skip


def _random_factors(rng, n_users, n_items, k):
    t = torch.as_tensor
    return ImplicitFactors(
        t(rng.normal(size=(n_users, k))), t(rng.normal(size=(n_items, k))),
        t(rng.normal(size=n_users)), t(rng.normal(size=n_items)),
        torch.tensor(3.0, dtype=torch.float64),
        t(rng.normal(size=(n_items, k))),
    )  # fmt: skip


def _sets_np(u, i, n_users, n_items):
    """N as a dense NumPy matrix of |N(u)|^(-1/2) on the distinct rated pairs."""
    N = np.zeros((n_users, n_items))
    N[u, i] = 1.0
    counts = N.sum(1)
    return N / np.sqrt(np.maximum(counts, 1))[:, None]


def _objective_np(F, u, i, r, w, N, alpha, alpha_b, scaling):
    """The documented SVD++ objective L, by brute force in NumPy."""
    P, Q, bu, bi, Y = (getattr(F, n).numpy() for n in ("P", "Q", "bu", "bi", "Y"))
    mu = float(F.mu)
    wt = np.ones(len(r)) if w is None else w
    Z = N @ Y
    pred = mu + bu[u] + bi[i] + np.sum((P[u] + Z[u]) * Q[i], 1)
    nu = np.bincount(u, wt, minlength=len(P))
    ni = np.bincount(i, wt, minlength=len(Q))
    f = {"none": np.ones_like, "count": lambda x: x, "sqrt": np.sqrt}[scaling]
    cu, ci = f(nu), f(ni)
    return (
        np.sum(wt * (r - pred) ** 2)
        + alpha * (cu @ (P**2).sum(1) + ci @ (Q**2).sum(1))
        + alpha_b * (cu @ bu**2 + ci @ bi**2)
        + alpha * IMPLICIT_PENALTY * (Y**2).sum()
    )


# ------------------------------------------------------------ the formula
@pytest.mark.parametrize("solver", ["als", "sgd", "adam"])
def test_predict_is_the_svdpp_formula_from_the_fitted_attributes(data, solver):
    X, y = data.X, data.y
    model = MFRegressor(
        implicit_feedback=True, solver=solver, n_components=3, max_iter=5,
        random_state=0, dtype="float64",
    ).fit(X, y)  # fmt: skip
    Y = model.implicit_factors_
    assert Y.shape == (len(model.items_), 3)
    # z_u by hand from the training pairs: |N(u)|^-1/2 sum of y_j.
    uidx = {v: j for j, v in enumerate(model.users_.tolist())}
    iidx = {v: j for j, v in enumerate(model.items_.tolist())}
    Z = np.zeros_like(model.user_factors_)
    for user in model.users_:
        items = {iidx[it] for uu, it in X if uu == user}
        Z[uidx[user]] = Y[sorted(items)].sum(0) / np.sqrt(len(items))
    np.testing.assert_allclose(model.user_implicit_factors_, Z, rtol=1e-10, atol=1e-12)
    # Known pairs, an unknown user (empty N(u)) and an unknown item.
    pairs = np.vstack([X[:50], [[999, X[0, 1]], [X[0, 0], 999]]])
    expected = []
    for uu, it in pairs:
        pred = model.intercept_
        if uu in uidx:
            pred += model.user_bias_[uidx[uu]]
        if it in iidx:
            pred += model.item_bias_[iidx[it]]
        if uu in uidx and it in iidx:
            pu = model.user_factors_[uidx[uu]] + Z[uidx[uu]]
            pred += pu @ model.item_factors_[iidx[it]]
        expected.append(pred)
    np.testing.assert_allclose(model.predict(pairs), expected, rtol=1e-10)


def test_without_implicit_feedback_the_attributes_are_none(data):
    model = MFRegressor(n_components=2, max_iter=2, random_state=0)
    model.fit(data.X, data.y)
    assert model.implicit_factors_ is None
    assert model.user_implicit_factors_ is None


# ------------------------------------------------------------- ALS blocks
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("scaling", ["none", "sqrt"])
def test_als_blocks_are_the_exact_numpy_solutions(weighted, scaling):
    """Users: the minimizer of L in (p_u, b_u) given Y and the items; items:
    in (q_i, b_i) given the users; Y with enough CG iterations: the minimizer
    of L in Y (NumPy solves of the normal equations)."""
    n_users, n_items, k = 7, 6, 2
    u, i, r, w = _tiny(weighted=weighted)
    data = _ratings(u, i, r, w, n_users, n_items)
    alpha, alpha_b = 0.3, 0.1
    pen = Penalty.build(data, alpha, alpha_b, scaling)
    F = _random_factors(np.random.RandomState(1), n_users, n_items, k)
    sets = ImplicitSets(data.user, data.item, n_users, n_items, torch.float64)
    step = ImplicitALSStep(
        F, data, pen, sets, fit_intercept=True, cg_iterations=n_items * k
    )
    N = _sets_np(u, i, n_users, n_items)
    wt = np.ones(len(r)) if w is None else w
    mu = float(F.mu)
    Q0, bi0 = F.Q.numpy().copy(), F.bi.numpy().copy()
    P0 = F.P.numpy().copy()

    # Y: exact minimizer of L in Y (n_items * k unknowns, dense NumPy solve).
    Y0 = F.Y.numpy().copy()
    A = user_grams(step.by_user, F.Q, F.bi, F.mu, n_users)
    step.update_implicit(A)

    # L is quadratic in vec(Y): gradient by finite differences is exact.
    def L_of_Y(Yv):
        F2 = ImplicitFactors(F.P, F.Q, F.bu, F.bi, F.mu, torch.as_tensor(Yv))
        return _objective_np(F2, u, i, r, w, N, alpha, alpha_b, scaling)

    m = n_items * k
    H = np.zeros((m, m))
    g0 = np.zeros(m)
    base = L_of_Y(np.zeros((n_items, k)))
    for a in range(m):
        ea = np.zeros(m)
        ea[a] = 1
        g0[a] = (L_of_Y(ea.reshape(n_items, k)) - L_of_Y(-ea.reshape(n_items, k))) / 2
        for b in range(m):
            eb = np.zeros(m)
            eb[b] = 1
            H[a, b] = (
                L_of_Y((ea + eb).reshape(n_items, k)) - L_of_Y(ea.reshape(n_items, k))
                - L_of_Y(eb.reshape(n_items, k)) + base
            )  # fmt: skip
    Y_star = np.linalg.solve(H, -g0).reshape(n_items, k)
    np.testing.assert_allclose(F.Y.numpy(), Y_star, rtol=1e-7, atol=1e-9)
    assert not np.allclose(Y0, Y_star)

    # Users given Y and the items: per-user ridge in (p_u, b_u).
    Z = N @ F.Y.numpy()
    step.update_users(A, torch.as_tensor(Z))
    for user in range(n_users):
        sel = u == user
        if not sel.any():  # rows without ratings keep their values
            continue
        n_u = wt[sel].sum()
        c = {"none": 1.0, "sqrt": np.sqrt(n_u)}[scaling]
        D = np.column_stack([Q0[i[sel]], np.ones(sel.sum())])
        t = r[sel] - mu - bi0[i[sel]] - Q0[i[sel]] @ Z[user]
        M = D.T @ (wt[sel, None] * D) + c * np.diag([alpha] * k + [alpha_b])
        x = np.linalg.solve(M, D.T @ (wt[sel] * t))
        np.testing.assert_allclose(F.P[user].numpy(), x[:k], rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(float(F.bu[user]), x[k], rtol=1e-9, atol=1e-10)
    assert not np.allclose(P0, F.P.numpy())

    # Items given the users' p_u + z_u.
    P1, bu1 = F.P.numpy().copy(), F.bu.numpy().copy()
    step.update_items(torch.as_tensor(Z))
    Pt = P1 + Z
    for item in range(n_items):
        sel = i == item
        if not sel.any():
            continue
        n_i = wt[sel].sum()
        c = {"none": 1.0, "sqrt": np.sqrt(n_i)}[scaling]
        D = np.column_stack([Pt[u[sel]], np.ones(sel.sum())])
        t = r[sel] - mu - bu1[u[sel]]
        M = D.T @ (wt[sel, None] * D) + c * np.diag([alpha] * k + [alpha_b])
        x = np.linalg.solve(M, D.T @ (wt[sel] * t))
        np.testing.assert_allclose(F.Q[item].numpy(), x[:k], rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(float(F.bi[item]), x[k], rtol=1e-9, atol=1e-10)


def test_cg_block_matches_a_numpy_reference_of_its_system():
    """H V = N^T (G_u (N V)_u) + lam V and B, built densely in NumPy: the CG
    iterates lower 1/2 <Y, HY> - <B, Y> at every iteration and converge to
    H^-1 B."""
    n_users, n_items, k = 9, 7, 3
    u, i, r, w = _tiny(seed=4, n_users=n_users, n_items=n_items, n=40, weighted=True)
    data = _ratings(u, i, r, w, n_users, n_items)
    pen = Penalty.build(data, 0.5, 0.2, "sqrt")
    F = _random_factors(np.random.RandomState(2), n_users, n_items, k)
    sets = ImplicitSets(data.user, data.item, n_users, n_items, torch.float64)
    step = ImplicitALSStep(F, data, pen, sets, fit_intercept=True)
    A = user_grams(step.by_user, F.Q, F.bi, F.mu, n_users)
    N = _sets_np(u, i, n_users, n_items)
    wt = w
    P, Q, bu, bi = (getattr(F, n).numpy() for n in ("P", "Q", "bu", "bi"))
    lam = 0.5 * IMPLICIT_PENALTY
    m = n_items * k
    H = lam * np.eye(m)
    Bm = np.zeros((n_items, k))
    for user in range(n_users):
        sel = u == user
        G = (Q[i[sel]].T * wt[sel]) @ Q[i[sel]]
        e = r[sel] - float(F.mu) - bu[user] - bi[i[sel]] - Q[i[sel]] @ P[user]
        b = Q[i[sel]].T @ (wt[sel] * e)
        n_row = N[user][:, None]  # (n_items, 1)
        H += np.kron(n_row @ n_row.T, G)
        Bm += n_row * b[None, :]
    B = Bm.reshape(-1)
    Y_ref = np.linalg.solve(H, B)

    def f(Yv):
        y = Yv.reshape(-1)
        return 0.5 * y @ H @ y - B @ y

    values = [f(F.Y.numpy())]
    Y0 = F.Y.clone()
    for n_iter in range(1, m + 1):
        F.Y.copy_(Y0)
        update_implicit(F, sets, A, torch.full((n_items,), lam, dtype=torch.float64),
                        n_iter)  # fmt: skip
        values.append(f(F.Y.numpy()))
    assert np.all(np.diff(values) <= 1e-10 * abs(values[0]))
    np.testing.assert_allclose(F.Y.numpy().reshape(-1), Y_ref, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("scaling", ["sqrt", "count"])
def test_als_objective_never_increases_and_is_the_documented_one(data, scaling):
    model = MFRegressor(
        implicit_feedback=True, n_components=3, alpha_scaling=scaling, max_iter=12,
        tol=0, random_state=0, dtype="float64",
    )  # fmt: skip
    with pytest.warns(ConvergenceWarning):
        model.fit(data.X, data.y)
    curve = np.asarray(model.loss_curve_)
    assert np.all(np.diff(curve) <= 1e-9 * curve[:-1])
    # The documented objective, in the ratings' units, from the fitted model.
    u = np.searchsorted(model.users_, data.X[:, 0])
    i = np.searchsorted(model.items_, data.X[:, 1])
    N = _sets_np(u, i, len(model.users_), len(model.items_))
    lam = model.alpha * rating_std(data.y)
    F = ImplicitFactors(
        *(torch.as_tensor(a) for a in (
            model.user_factors_, model.item_factors_, model.user_bias_,
            model.item_bias_, np.float64(model.intercept_), model.implicit_factors_,
        ))
    )  # fmt: skip
    value = _objective_np(F, u, i, data.y, None, N, lam, model.alpha, scaling)
    np.testing.assert_allclose(curve[-1], value / len(data.y), rtol=1e-8)


# ----------------------------------------------------- SGD/Adam gradients
def test_minibatch_gradients_match_autograd():
    n_users, n_items, k = 6, 7, 3
    u, i, r, w = _tiny(seed=5, n_users=n_users, n_items=n_items, n=30, weighted=True)
    data = _ratings(u, i, r, w, n_users, n_items)
    F = _random_factors(np.random.RandomState(0), n_users, n_items, k)
    pen = Penalty.build(data, 0.7, 0.3, "sqrt")
    sets = ImplicitSets(data.user, data.item, n_users, n_items, torch.float64)
    step = ImplicitSGDStep(
        F, data, pen, sets, learning_rate=0.1, batch_size=30, fit_intercept=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    g = step._implicit_gradients(torch.arange(len(r)))
    params = [t.clone().requires_grad_(True) for t in (F.P, F.Q, F.bu, F.bi, F.mu, F.Y)]
    P, Q, bu, bi, mu, Y = params
    Nt = torch.as_tensor(_sets_np(u, i, n_users, n_items))
    wt, uu, ii = data.weight, data.user, data.item
    pred = mu + bu[uu] + bi[ii] + ((P + Nt @ Y)[uu] * Q[ii]).sum(1)
    nu = torch.zeros(n_users, dtype=torch.float64).index_add_(0, uu, wt)
    ni = torch.zeros(n_items, dtype=torch.float64).index_add_(0, ii, wt)
    cu, ci = nu.sqrt(), ni.sqrt()
    ref = (
        (wt * (data.rating - pred) ** 2).sum()
        + 0.7 * (cu @ (P**2).sum(1) + ci @ (Q**2).sum(1))
        + 0.3 * (cu @ bu**2 + ci @ bi**2)
        + 0.7 * IMPLICIT_PENALTY * (Y**2).sum()
    )
    grads = torch.autograd.grad(ref, params)
    np.testing.assert_allclose(float(g["loss"]), float(ref.detach()), rtol=1e-10)
    zeros = torch.zeros_like
    torch.testing.assert_close(zeros(F.P).index_add_(0, g["u"], g["g_p"]), grads[0])
    torch.testing.assert_close(zeros(F.Q).index_add_(0, g["i"], g["g_q"]), grads[1])
    torch.testing.assert_close(zeros(F.bu).index_add_(0, g["u"], g["g_bu"]), grads[2])
    torch.testing.assert_close(zeros(F.bi).index_add_(0, g["i"], g["g_bi"]), grads[3])
    torch.testing.assert_close(g["g_mu"], grads[4])
    torch.testing.assert_close(g["g_y"], grads[5])


def test_minibatch_gradients_of_a_part_of_the_ratings_match_autograd():
    """The per-rating terms of a minibatch: their y gradient reaches N(u) of the
    batch's users only (N from all the ratings)."""
    n_users, n_items, k = 6, 7, 2
    u, i, r, w = _tiny(seed=6, n_users=n_users, n_items=n_items, n=30)
    data = _ratings(u, i, r, w, n_users, n_items)
    F = _random_factors(np.random.RandomState(3), n_users, n_items, k)
    pen = Penalty.build(data, 0.7, 0.3, "none")
    sets = ImplicitSets(data.user, data.item, n_users, n_items, torch.float64)
    step = ImplicitSGDStep(
        F, data, pen, sets, learning_rate=0.1, batch_size=10, fit_intercept=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    idx = torch.tensor([0, 3, 4, 11, 17, 25])
    g = step._implicit_gradients(idx)
    Y = F.Y.clone().requires_grad_(True)
    Nt = torch.as_tensor(_sets_np(u, i, n_users, n_items))
    uu, ii = data.user[idx], data.item[idx]
    pred = F.mu + F.bu[uu] + F.bi[ii] + ((F.P + Nt @ Y)[uu] * F.Q[ii]).sum(1)
    ni = torch.bincount(data.item, minlength=n_items).double()
    share = 0.7 * IMPLICIT_PENALTY / ni[ii]
    ref = ((data.rating[idx] - pred) ** 2).sum() + (share * (Y[ii] ** 2).sum(1)).sum()
    (gY,) = torch.autograd.grad(ref, [Y])
    torch.testing.assert_close(g["g_y"], gY)


# ------------------------------------------------------------------ units
@pytest.mark.parametrize("solver", ["als", "sgd", "adam"])
@pytest.mark.parametrize("scale, shift", [(1e-3, 7.0), (40.0, 100.0)])
def test_every_solver_is_invariant_to_the_units_of_the_ratings(
    data, solver, scale, shift
):
    X, y = data.X, data.y
    params = {
        "implicit_feedback": True, "solver": solver, "random_state": 0,
        "dtype": "float64", "max_iter": 8,
    }  # fmt: skip
    ref = MFRegressor(**params).fit(X, y)
    model = MFRegressor(**params).fit(X, scale * y + shift)
    np.testing.assert_allclose(
        model.predict(X), scale * ref.predict(X) + shift, rtol=1e-7, atol=1e-7 * scale
    )
    np.testing.assert_allclose(
        model.implicit_factors_, np.sqrt(scale) * ref.implicit_factors_,
        rtol=1e-6, atol=1e-9 * np.sqrt(scale),
    )  # fmt: skip
    assert model.n_iter_ == ref.n_iter_


@pytest.mark.parametrize("solver", ["als", "sgd", "adam"])
def test_every_solver_lowers_the_training_error_below_plain_mf(data, solver):
    """Y adds parameters: the training objective is lower than without them,
    and the fit is sound (test error below the spread of the ratings)."""
    X, y = data.X, data.y
    params = {"solver": solver, "n_components": 3, "random_state": 0, "max_iter": 30}
    model = MFRegressor(implicit_feedback=True, **params).fit(X, y)
    assert np.sqrt(np.mean((model.predict(X) - y) ** 2)) < 0.8 * y.std()


# --------------------------------------------------- fold-in and recommend
def _fold_in_np(model, items, ratings):
    """v = p + z and b of a user folded in from ``ratings`` of ``items`` (NumPy):
    N(u) = those items, the SVD++ user update with the items fixed."""
    iidx = {v: j for j, v in enumerate(model.items_.tolist())}
    codes = np.array([iidx[it] for it in items])
    Q = model.item_factors_.astype(float)[codes]
    bi = model.item_bias_.astype(float)[codes]
    z = model.implicit_factors_[np.unique(codes)].sum(0) / np.sqrt(len(set(codes)))
    k = Q.shape[1]
    n = len(codes)
    c = np.sqrt(n)  # alpha_scaling="sqrt"
    lam = model.alpha * model._units[1]
    D = np.column_stack([Q, np.ones(n)])
    t = np.asarray(ratings) - model.intercept_ - bi
    M = D.T @ D + c * np.diag([lam] * k + [model.alpha])
    rhs = D.T @ t
    rhs[:k] += c * lam * z
    x = np.linalg.solve(M, rhs)
    return x[:k], x[k]


def test_recommend_with_ratings_takes_n_u_from_those_ratings(data):
    model = MFRegressor(
        implicit_feedback=True, n_components=3, max_iter=5, random_state=0,
        dtype="float64",
    ).fit(data.X, data.y)  # fmt: skip
    items = model.items_[[0, 3, 5, 8]]
    ratings = [5.0, 1.0, 4.0, 2.0]
    v, b = _fold_in_np(model, items, ratings)
    expected = model.intercept_ + model.item_bias_ + model.item_factors_ @ v + b
    for user in (999, model.users_[0]):  # a new user, and a known one
        ids, scores = model.recommend(
            user, n=len(model.items_), ratings=dict(zip(items, ratings)),
            exclude_seen=False,
        )  # fmt: skip
        codes = np.searchsorted(model.items_, ids)
        np.testing.assert_allclose(scores, expected[codes], rtol=1e-9)
    # Triples for several users at once give the same.
    triples = [(999, it, rt) for it, rt in zip(items, ratings)]
    ids, scores = model.recommend([999], n=3, ratings=triples, exclude_seen=False)
    np.testing.assert_allclose(scores[0], np.sort(expected)[::-1][:3], rtol=1e-9)


def test_recommend_of_known_users_uses_p_plus_z(data):
    model = MFRegressor(
        implicit_feedback=True, n_components=3, max_iter=5, random_state=0,
        dtype="float64",
    ).fit(data.X, data.y)  # fmt: skip
    users = model.users_[:4]
    ids, scores = model.recommend(users, n=5, exclude_seen=False)
    for user, row_ids, row_scores in zip(users, ids, scores):
        pred = model.predict(np.column_stack([np.full(len(row_ids), user), row_ids]))
        np.testing.assert_allclose(row_scores, pred, rtol=1e-9)
        all_pred = model.predict(
            np.column_stack([np.full(len(model.items_), user), model.items_])
        )
        np.testing.assert_allclose(row_scores, np.sort(all_pred)[::-1][:5], rtol=1e-9)


# ------------------------------------------------------- state and errors
def test_warm_start_and_saved_models_keep_the_implicit_factors(data, tmp_path):
    model = MFRegressor(
        implicit_feedback=True, n_components=3, max_iter=3, random_state=0
    ).fit(data.X, data.y)
    path = tmp_path / "model.skmf"
    save_model(model, path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.implicit_factors_, model.implicit_factors_)
    np.testing.assert_array_equal(loaded.predict(data.X), model.predict(data.X))
    model.set_params(warm_start=True, max_iter=1).fit(data.X, data.y)
    assert model.implicit_factors_.shape == (len(model.items_), 3)
    plain = MFRegressor(n_components=2, max_iter=2).fit(data.X, data.y)
    save_model(plain, tmp_path / "plain.skmf")
    assert load_model(tmp_path / "plain.skmf").implicit_factors_ is None


@pytest.mark.parametrize(
    "params, match",
    [
        ({"positive": True}, "cannot be combined"),
        ({"early_stopping": True}, "early_stopping=True is not available"),
    ],
)  # fmt: skip
def test_unsupported_combinations_are_clear_errors(data, params, match):
    with pytest.raises(ValueError, match=match):
        MFRegressor(implicit_feedback=True, **params).fit(data.X, data.y)


def test_partial_fit_is_a_clear_error(data):
    model = MFRegressor(implicit_feedback=True, n_components=2, max_iter=2)
    with pytest.raises(ValueError, match="partial_fit does not support implicit"):
        model.partial_fit(data.X, data.y)
    model.fit(data.X, data.y)
    before = model.predict(data.X)
    with pytest.raises(ValueError, match="warm_start=True"):
        model.partial_fit([[999, data.X[0, 1]]], [3.0])
    np.testing.assert_array_equal(model.predict(data.X), before)
