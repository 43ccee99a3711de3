"""Accuracy regression tests on MovieLens.

The data is read with :mod:`skmf.datasets` from the data home (``SKMF_DATA``);
the tests skip, saying so, without it.
"""

import numpy as np
import pytest

from skmf import MFRegressor
from skmf.datasets import load_movielens, load_movielens_split

# Surprise's SVD with its defaults reaches 0.934 (ML-100K, 5-fold) and about
# 0.95 on the harder u1 split; skmf's defaults must stay clearly below.
SURPRISE_ML100K = 0.934


def _u1_split(data_home):
    """(X_train, y_train, X_test, y_test) of the official split u1 of ML-100K."""
    train, test = load_movielens_split(
        "u1", data_home=data_home, download_if_missing=False
    )
    return (
        train[["user", "item"]].to_numpy(),
        train["rating"].to_numpy(),
        test[["user", "item"]].to_numpy(),
        test["rating"].to_numpy(),
    )


@pytest.mark.movielens
def test_default_rmse_on_movielens_100k_u1(movielens_dir):
    X_train, y_train, X_test, y_test = _u1_split(movielens_dir)
    model = MFRegressor(random_state=0).fit(X_train, y_train)
    rmse = np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2))
    # Measured 0.9190-0.9213 over seeds 0-4 (2 CPU cores, torch 2.13, float32).
    assert rmse < 0.924 < SURPRISE_ML100K, rmse


@pytest.mark.movielens
def test_gibbs_recipe_rmse_on_movielens_100k_u1(movielens_dir):
    X_train, y_train, X_test, y_test = _u1_split(movielens_dir)
    model = MFRegressor(solver="gibbs", n_components=32, max_iter=40, random_state=0)
    model.fit(X_train, y_train)
    rmse = np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2))
    # Measured 0.9059-0.9066 over seeds 0-2 (the sampler before the
    # Rao-Blackwellized means: 0.9074-0.9103 with 100 sweeps); the best recipe
    # of the other solvers (Adam, k=64) reaches 0.919 on u1, the defaults 0.920.
    assert rmse < 0.911, rmse


@pytest.mark.movielens
def test_bayesian_svdpp_rmse_on_movielens_100k_u1(movielens_dir):
    X_train, y_train, X_test, y_test = _u1_split(movielens_dir)
    model = MFRegressor(
        solver="gibbs", implicit_feedback=True, n_components=32, max_iter=30,
        random_state=0,
    )  # fmt: skip
    model.fit(X_train, y_train)
    rmse = np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2))
    # Measured 0.9054-0.9058 over seeds 0-2; SVD++ with ALS: 0.9119.
    assert rmse < 0.909, rmse


@pytest.mark.movielens
def test_default_rmse_on_movielens_1m_random_split(movielens_1m_dir):
    ratings = load_movielens(
        "1m", data_home=movielens_1m_dir, download_if_missing=False
    )
    X, y = ratings[["user", "item"]].to_numpy(), ratings["rating"].to_numpy()
    # A seeded 90/10 split of the rows in file order; the numbers below are for
    # ratings_no_timestamp.dat.gz (the official ratings.dat orders its lines
    # differently, so its split differs).
    perm = np.random.RandomState(0).permutation(len(y))
    n_train = int(0.9 * len(y))
    train, test = perm[:n_train], perm[n_train:]
    model = MFRegressor(random_state=0).fit(X[train], y[train])
    rmse = np.sqrt(np.mean((model.predict(X[test]) - y[test]) ** 2))
    # Surprise SVD defaults: 0.864 on this split; LIBMF (k 64, 20 iterations):
    # 0.8420. Measured 0.8413-0.8416 over seeds 0-4.
    assert rmse < 0.8425, rmse
