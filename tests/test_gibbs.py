"""The Gibbs sampler (solver="gibbs"), checked against closed forms."""

import warnings

import numpy as np
import pytest
import torch
from _reference import predict_np

from skmf import MFRegressor
from skmf._solvers import Ratings, _engine, group_ratings
from skmf._solvers._gibbs import A0, B0, BETA0, _sample_hyper, draw_rows
from skmf.datasets import make_ratings


def _identical_users(n_users, items, ratings, weights, n_items):
    """n_users users who all rate the same items with the same ratings."""
    u = np.repeat(np.arange(n_users), len(items))
    i = np.tile(items, n_users)
    r = np.tile(ratings, n_users)
    w = None if weights is None else torch.tensor(np.tile(weights, n_users))
    return Ratings(
        torch.tensor(u), torch.tensor(i), torch.tensor(r), w, n_users, n_items
    )


@pytest.mark.parametrize("weighted", [False, True])
def test_draw_is_the_gaussian_conditional(weighted):
    """Many users with the same ratings: their draws are iid from one Gaussian
    whose mean and covariance are computed here with NumPy."""
    rng = np.random.default_rng(0)
    n_users, n_items, k = 4000, 7, 3
    items = np.array([0, 2, 3, 5, 6])
    ratings = rng.normal(3, 1, len(items))
    weights = rng.uniform(0.5, 2, len(items)) if weighted else None
    data = _identical_users(n_users, items, ratings, weights, n_items)
    by_user, _ = group_ratings(data, k)
    Y = torch.tensor(rng.normal(0, 1, (n_items, k)))
    by = torch.tensor(rng.normal(0, 0.3, n_items))
    mu = torch.tensor(3.2, dtype=torch.float64)
    reg = torch.tensor([0.7, 1.3, 2.0, 0.4], dtype=torch.float64)
    shift = torch.tensor([0.2, -0.1, 0.0, 0.3], dtype=torch.float64)
    noise = 0.6
    X = torch.zeros(n_users, k, dtype=torch.float64)
    bx = torch.zeros(n_users, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    sse, se = draw_rows(
        by_user, X, bx, Y, by, mu, reg, shift, noise, gen, stats=True
    )  # fmt: skip

    # Reference: S = sum w z z^T + diag(reg), mean = S^-1 (sum w t z + shift),
    # covariance = noise^2 S^-1.
    w = np.ones(len(items)) if weights is None else weights
    Z = np.column_stack([Y.numpy()[items], np.ones(len(items))])
    t = ratings - 3.2 - by.numpy()[items]
    S = (Z * w[:, None]).T @ Z + np.diag(reg.numpy())
    mean = np.linalg.solve(S, (Z * w[:, None]).T @ t + shift.numpy())
    cov = noise**2 * np.linalg.inv(S)
    draws = np.column_stack([X.numpy(), bx.numpy()])
    se_mean = np.sqrt(np.diag(cov) / n_users)
    assert np.all(np.abs(draws.mean(0) - mean) < 5 * se_mean)
    # Whitened draws are N(0, I): their covariance is I up to sampling error.
    white = np.linalg.solve(np.linalg.cholesky(cov), (draws - mean).T).T
    np.testing.assert_allclose(np.cov(white.T), np.eye(k + 1), atol=0.1)

    # The residual statistics of the draw, by brute force over the ratings.
    pred = 3.2 + bx.numpy()[:, None] + by.numpy()[items] + X.numpy() @ Z[:, :k].T
    e = np.tile(ratings, (n_users, 1)) - pred
    np.testing.assert_allclose(float(sse), (w * e**2).sum(), rtol=1e-9)
    np.testing.assert_allclose(float(se), (w * e).sum(), rtol=1e-9, atol=1e-8)


def test_hyperparameter_draw_is_the_normal_gamma_posterior():
    """Draws of (m, lam) for fixed values have the moments of the conjugate
    Normal-Gamma posterior (Murphy 2007, section 3)."""
    rng = np.random.default_rng(1)
    X = rng.normal(0.5, 2.0, (40, 2))
    n = X.shape[0]
    xbar = X.mean(0)
    a_n = A0 + n / 2
    b_n = B0 + 0.5 * ((X - xbar) ** 2).sum(0) + BETA0 * n * xbar**2 / (2 * (BETA0 + n))
    beta_n = BETA0 + n
    mu_n = n * xbar / beta_n
    draws = [_sample_hyper(torch.tensor(X), np.random.RandomState(s)) for s in
             range(4000)]  # fmt: skip
    m = np.array([d[0] for d in draws])
    lam = np.array([d[1] for d in draws])
    # E[lam] = a_n / b_n, sd = sqrt(a_n) / b_n; m is Student-t with mean mu_n
    # and variance b_n / (beta_n (a_n - 1)).
    np.testing.assert_allclose(lam.mean(0), a_n / b_n, rtol=5 / np.sqrt(a_n * 4000))
    var_m = b_n / (beta_n * (a_n - 1))
    assert np.all(np.abs(m.mean(0) - mu_n) < 5 * np.sqrt(var_m / 4000))
    np.testing.assert_allclose(m.var(0), var_m, rtol=0.1)


def test_fitted_factors_are_the_mean_of_the_kept_samples(small_ratings, monkeypatch):
    """The model is the average of the samples after the burn-in (the first
    quarter of max_iter), in the units of the ratings."""
    samples = []
    class Recording(_engine.GibbsStep):
        def __call__(self, iteration):
            out = super().__call__(iteration)
            root = self.scale**0.5
            samples.append(
                (self.F.P.double() * root, self.F.bu.double() * self.scale,
                 float(self.F.mu) * self.scale)
            )  # fmt: skip
            return out

    monkeypatch.setattr(_engine, "GibbsStep", Recording)
    X, y = small_ratings.X, small_ratings.y
    model = MFRegressor(
        solver="gibbs", max_iter=8, n_components=3, dtype="float64", random_state=0
    ).fit(X, y)
    kept = samples[2:]  # burn-in: 8 // 4 sweeps
    # The samples are in the units of the standardized ratings (the scale of
    # the fit): back in the ratings' units, factors take its root.
    centre, scale = model._units
    kept = [(P * scale**0.5, b * scale, centre + scale * mu) for P, b, mu in kept]
    assert len(samples) == 8 and model.n_iter_ == 8
    np.testing.assert_allclose(
        model.user_factors_, np.mean([s[0] for s in kept], 0), rtol=1e-10,
        atol=1e-12,
    )  # fmt: skip
    np.testing.assert_allclose(
        model.user_bias_, np.mean([s[1] for s in kept], 0), atol=1e-12
    )
    np.testing.assert_allclose(model.intercept_, np.mean([s[2] for s in kept]))
    # loss_curve_: the mean squared training error of each sample.
    assert len(model.loss_curve_) == 8


def test_runs_max_iter_sweeps_without_convergence_warning(small_ratings):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = MFRegressor(solver="gibbs", max_iter=12, tol=0.5, random_state=0)
        model.fit(small_ratings.X, small_ratings.y)
    assert model.n_iter_ == 12 and len(model.loss_curve_) == 12
    assert np.all(np.isfinite(model.loss_curve_))


def test_predict_is_the_documented_formula(small_ratings):
    X = small_ratings.X
    model = MFRegressor(solver="gibbs", max_iter=10, random_state=0)
    model.fit(X, small_ratings.y)
    query = np.vstack([X[:50], [[10**6, 3], [4, 10**6]]])
    np.testing.assert_allclose(
        model.predict(query), predict_np(model, *query.T), rtol=1e-5, atol=1e-5
    )


def test_invariant_to_the_units_of_the_ratings(small_ratings):
    """The sampler works on r / std(r): ratings in other units give the same
    model in those units (same seed, float64)."""
    X, y = small_ratings.X, small_ratings.y
    params = {"solver": "gibbs", "max_iter": 20, "dtype": "float64", "random_state": 3}
    a = MFRegressor(**params).fit(X, y)
    b = MFRegressor(**params).fit(X, 1000.0 * y)
    np.testing.assert_allclose(b.predict(X), 1000.0 * a.predict(X), rtol=1e-6)


def test_is_more_accurate_than_als_on_sparse_noisy_data():
    """Few ratings per user (20): the posterior mean beats the point estimate
    of ALS with its defaults (the reason for the solver). With noise as large
    as the signal (noise=1.0) both are within the chains' spread (~0.002) of
    each other; here the margin is ~0.03."""
    data = make_ratings(
        n_users=600, n_items=400, n_ratings=12000, n_components=5, noise=0.5,
        random_state=2,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    test = rng.random(len(data.y)) < 0.2
    X, y = data.X, data.y

    def test_rmse(model):
        model.fit(X[~test], y[~test])
        return np.sqrt(np.mean((model.predict(X[test]) - y[test]) ** 2))

    gibbs = test_rmse(MFRegressor(solver="gibbs", max_iter=100, random_state=0))
    als = test_rmse(MFRegressor(random_state=0))
    assert gibbs < als


def test_early_stopping_is_rejected(small_ratings):
    model = MFRegressor(solver="gibbs", early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping=True is not available"):
        model.fit(small_ratings.X, small_ratings.y)


def test_partial_fit_of_a_gibbs_model_folds_in_new_users(small_ratings):
    X, y = small_ratings.X, small_ratings.y
    model = MFRegressor(solver="gibbs", max_iter=10, random_state=0).fit(X, y)
    model.partial_fit([[10**6, 0], [10**6, 1]], [5.0, 1.0])
    assert model.users_[-1] == 10**6
    assert np.all(np.isfinite(model.predict([[10**6, 2]])))
