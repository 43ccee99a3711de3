"""Accuracy regression tests on MovieLens (skipped without the shared data)."""

import numpy as np
import pandas as pd
import pytest

from skmf import MFRegressor

# Surprise's SVD with its defaults reaches 0.934 (ML-100K, 5-fold) and about
# 0.95 on the harder u1 split; skmf's defaults must stay clearly below.
SURPRISE_ML100K = 0.934


def _read_100k(folder, name):
    df = pd.read_csv(folder / "ml-100k" / name, sep="\t", header=None)
    return df[[0, 1]].to_numpy(), df[2].to_numpy(dtype=float)


@pytest.mark.movielens
def test_default_rmse_on_movielens_100k_u1(movielens_dir):
    X_train, y_train = _read_100k(movielens_dir, "u1.base")
    X_test, y_test = _read_100k(movielens_dir, "u1.test")
    model = MFRegressor(random_state=0).fit(X_train, y_train)
    rmse = np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2))
    # Measured 0.9190-0.9213 over seeds 0-4 (2 CPU cores, torch 2.13, float32).
    assert rmse < 0.924 < SURPRISE_ML100K, rmse


@pytest.mark.movielens
def test_gibbs_recipe_rmse_on_movielens_100k_u1(movielens_dir):
    X_train, y_train = _read_100k(movielens_dir, "u1.base")
    X_test, y_test = _read_100k(movielens_dir, "u1.test")
    model = MFRegressor(solver="gibbs", n_components=32, max_iter=100, random_state=0)
    model.fit(X_train, y_train)
    rmse = np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2))
    # Measured 0.9074-0.9103 over seeds 0-4; the best recipe of the other
    # solvers (Adam, k=64) reaches 0.919 on u1, the defaults 0.920.
    assert rmse < 0.913, rmse


@pytest.mark.movielens
def test_default_rmse_on_movielens_1m_random_split(movielens_dir):
    path = movielens_dir / "ml-1m" / "ratings_no_timestamp.dat.gz"
    df = pd.read_csv(path, sep=":", header=None, usecols=[0, 2, 4]).to_numpy()
    perm = np.random.RandomState(0).permutation(len(df))
    n_train = int(0.9 * len(df))
    train, test = df[perm[:n_train]], df[perm[n_train:]]
    model = MFRegressor(random_state=0).fit(train[:, :2], train[:, 2].astype(float))
    rmse = np.sqrt(np.mean((model.predict(test[:, :2]) - test[:, 2]) ** 2))
    # Surprise SVD defaults: 0.864 on this split; LIBMF (k 64, 20 iterations):
    # 0.8420. Measured 0.8413-0.8416 over seeds 0-4.
    assert rmse < 0.8425, rmse
