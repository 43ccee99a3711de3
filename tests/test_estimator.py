"""MFRegressor's behaviour, checked against NumPy references."""

import numpy as np
import pytest
import torch
from _reference import predict_np
from sklearn.exceptions import ConvergenceWarning

from skmf import MFRegressor
from skmf.datasets import make_ratings

# Many fits here stop at max_iter on purpose (short runs).
pytestmark = pytest.mark.usefixtures("quiet_short_fits")


@pytest.mark.parametrize("solver", ["als", "sgd", "adam"])
def test_predict_is_the_documented_formula(small_ratings, solver):
    X, y = small_ratings.X, small_ratings.y
    model = MFRegressor(solver=solver, max_iter=5, random_state=0).fit(X, y)
    query = np.vstack([X[:50], [[10**6, 3], [4, 10**6], [10**6, 10**6]]])
    np.testing.assert_allclose(
        model.predict(query), predict_np(model, *query.T), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("solver", ["als", "sgd", "adam"])
def test_learns_the_true_model_better_than_the_mean(solver):
    data = make_ratings(
        n_users=400, n_items=300, n_ratings=20000, n_components=4, noise=0.2,
        rating_scale=None, random_state=1,
    )  # fmt: skip
    model = MFRegressor(solver=solver, random_state=0).fit(data.X, data.y)
    rmse = np.sqrt(np.mean((model.predict(data.X) - data.y_true) ** 2))
    baseline = np.std(data.y_true)
    assert rmse < 0.5 * baseline


@pytest.mark.parametrize("solver", ["als", "sgd"])
def test_zero_weight_is_the_same_as_leaving_the_rating_out(small_ratings, solver):
    X, y = small_ratings.X, small_ratings.y
    w = np.ones(len(y))
    w[::7] = 0
    params = {"solver": solver, "max_iter": 4, "random_state": 0, "dtype": "float64"}
    a = MFRegressor(**params).fit(X, y, sample_weight=w)
    b = MFRegressor(**params).fit(X[w > 0], y[w > 0])
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-10)


def test_integer_weight_is_the_same_as_repeating_the_rating(small_ratings):
    X, y = small_ratings.X, small_ratings.y
    w = np.ones(len(y), dtype=int)
    w[::5] = 3
    params = {"max_iter": 4, "random_state": 0, "dtype": "float64"}
    a = MFRegressor(**params).fit(X, y, sample_weight=w)
    b = MFRegressor(**params).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-8)


def test_fit_intercept_false_is_the_textbook_model(small_ratings):
    model = MFRegressor(fit_intercept=False, max_iter=5, random_state=0)
    model.fit(small_ratings.X, small_ratings.y)
    assert model.intercept_ == 0.0
    X = small_ratings.X[:20]
    np.testing.assert_allclose(model.predict(X), predict_np(model, *X.T), rtol=1e-5)


def test_early_stopping_keeps_the_best_iteration(small_ratings):
    X, y = small_ratings.X, small_ratings.y
    model = MFRegressor(
        solver="sgd", early_stopping=True, max_iter=40, n_iter_no_change=3,
        tol=0.0, alpha=0.01, learning_rate=0.05, random_state=0,
    ).fit(X, y)  # fmt: skip
    scores = model.validation_scores_
    assert len(scores) == model.n_iter_ == len(model.loss_curve_)
    assert model.best_iteration_ == int(np.argmin(scores)) + 1
    assert model.n_iter_ == model.best_iteration_ + 3 or model.n_iter_ == 40
    # The kept model is the best one: recompute its validation RMSE.
    rng = np.random.RandomState()
    rng.set_state(np.random.RandomState(0).get_state())
    rng.randint(2**31 - 1)  # the torch seed is drawn first
    perm = rng.permutation(len(y))
    val = np.sort(perm[: int(round(0.1 * len(y)))])
    rmse = np.sqrt(np.mean((model.predict(X[val]) - y[val]) ** 2))
    assert rmse == pytest.approx(min(scores), rel=1e-4)


@pytest.mark.parametrize("solver, tol", [("als", 1e-2), ("sgd", 1e-3), ("adam", 1e-3)])
def test_auto_tol_stops_at_the_first_iteration_gaining_less_than_tol(
    small_ratings, solver, tol
):
    model = MFRegressor(solver=solver, max_iter=100, random_state=0)
    model.fit(small_ratings.X, small_ratings.y)
    curve = np.array(model.loss_curve_)
    best_before = np.minimum.accumulate(curve)[:-1]
    gains = (best_before - curve[1:]) / best_before
    assert model.n_iter_ < 100
    assert gains[-1] <= tol  # the last iteration gained less than tol...
    assert np.all(gains[:-1] > tol)  # ...and it is the first one (n_iter_no_change=1)


def test_a_diverging_learning_rate_raises_and_names_the_fix(small_ratings):
    model = MFRegressor(solver="sgd", learning_rate=50.0, max_iter=5)
    with pytest.raises(ValueError, match="diverged.*learning_rate"):
        model.fit(small_ratings.X, small_ratings.y)


def test_warm_start_continues_and_appends_new_ids(small_ratings):
    X, y = small_ratings.X, small_ratings.y
    model = MFRegressor(max_iter=3, tol=0, warm_start=True, random_state=0)
    with pytest.warns(ConvergenceWarning):
        model.fit(X, y)
    first = model.loss_curve_[-1]
    users_before = model.users_.copy()
    X_new = np.vstack([X, [[1000, 0], [1000, 1], [1001, 2]]])
    y_new = np.concatenate([y, [5.0, 4.0, 1.0]])
    with pytest.warns(ConvergenceWarning):
        model.fit(X_new, y_new)
    np.testing.assert_array_equal(model.users_[: len(users_before)], users_before)
    assert list(model.users_[-2:]) == [1000, 1001]
    assert model.loss_curve_[0] < first + 1e-3  # starts where it stopped
    cold = MFRegressor(max_iter=1, random_state=0).fit(X_new, y_new)
    assert model.loss_curve_[0] < cold.loss_curve_[0]


def test_verbose_shows_a_progress_bar(small_ratings, capsys):
    MFRegressor(max_iter=2, verbose=1).fit(small_ratings.X, small_ratings.y)
    err = capsys.readouterr().err
    assert "MFRegressor[als]" in err and "loss=" in err
    MFRegressor(max_iter=2).fit(small_ratings.X, small_ratings.y)
    assert "MFRegressor[" not in capsys.readouterr().err
    # An early stop ends the bar at the iterations run, not at max_iter.
    model = MFRegressor(max_iter=100, verbose=1).fit(small_ratings.X, small_ratings.y)
    n = model.n_iter_
    assert n < 100 and f"{n}/{n}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "dtype, expected",
    [("float32", np.float32), ("float64", np.float64), (np.float64, np.float64),
     (torch.float32, np.float32)],
)  # fmt: skip
def test_fitted_state_is_numpy_in_the_chosen_dtype(small_ratings, dtype, expected):
    model = MFRegressor(max_iter=2, dtype=dtype).fit(small_ratings.X, small_ratings.y)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        value = getattr(model, name)
        assert isinstance(value, np.ndarray) and value.dtype == expected
    assert isinstance(model.intercept_, float)
    assert model.predict(small_ratings.X[:3]).dtype == np.float64


def test_clip_limits_predictions_to_the_training_range():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [2, 2]])
    y = np.array([1.0, 5.0, 5.0, 1.0, 5.0])
    model = MFRegressor(n_components=2, alpha=0, max_iter=50, clip=True, random_state=0)
    pred = model.fit(X, y).predict(
        np.column_stack([np.arange(3).repeat(3), np.tile(np.arange(3), 3)])
    )
    assert pred.min() >= 1.0 and pred.max() <= 5.0
    assert model.rating_range_ == (1.0, 5.0)


def test_n_jobs_sets_and_restores_torch_threads(small_ratings):
    before = torch.get_num_threads()
    MFRegressor(max_iter=1, n_jobs=1).fit(small_ratings.X, small_ratings.y)
    assert torch.get_num_threads() == before


def test_alpha_zero_with_singular_systems_stays_finite():
    # Users with fewer ratings than k + 1 give singular Gram matrices when alpha=0.
    X = np.array([[0, 0], [0, 1], [1, 1], [2, 2], [2, 0]])
    y = np.array([4.0, 3.0, 5.0, 2.0, 1.0])
    model = MFRegressor(n_components=4, alpha=0.0, max_iter=3).fit(X, y)
    assert np.all(np.isfinite(model.predict(X)))


@pytest.mark.cuda
def test_cuda_fit_matches_cpu_and_unpickles_without_cuda(small_ratings, monkeypatch):
    import pickle

    X, y = small_ratings.X, small_ratings.y
    params = {"max_iter": 10, "random_state": 0, "dtype": "float64"}
    gpu = MFRegressor(device="cuda", **params).fit(X, y)
    cpu = MFRegressor(device="cpu", **params).fit(X, y)
    rmse_gpu = np.sqrt(np.mean((gpu.predict(X) - y) ** 2))
    rmse_cpu = np.sqrt(np.mean((cpu.predict(X) - y) ** 2))
    assert abs(rmse_gpu - rmse_cpu) < 1e-4
    blob = pickle.dumps(gpu)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = pickle.loads(blob)
    np.testing.assert_array_equal(loaded.predict(X), gpu.predict(X))


@pytest.mark.cuda
@pytest.mark.parametrize("solver", ["sgd", "adam", "gibbs"])
def test_cuda_stochastic_solvers_reach_the_cpu_quality(small_ratings, solver):
    # The two devices shuffle or draw with different generators: compare the
    # quality.
    X, y = small_ratings.X, small_ratings.y
    params = {"solver": solver, "max_iter": 30, "random_state": 0}
    gpu = MFRegressor(device="cuda", **params).fit(X, y)
    cpu = MFRegressor(device="cpu", **params).fit(X, y)
    assert isinstance(gpu.user_factors_, np.ndarray)
    rmse_gpu = np.sqrt(np.mean((gpu.predict(X) - y) ** 2))
    rmse_cpu = np.sqrt(np.mean((cpu.predict(X) - y) ** 2))
    assert abs(rmse_gpu - rmse_cpu) < 0.02 * rmse_cpu


_DEVICE_CASES = {
    "defaults": ({}, False),
    "float64-random": ({"dtype": "float64", "fit_intercept": False, "init": "random"},
                       False),
    "weighted-warm": ({"alpha_scaling": "count", "warm_start": True}, True),
    "early-stopping": ({"early_stopping": True}, False),
}  # fmt: skip


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "solver, case",
    [
        (solver, case)
        for solver in ["als", "sgd", "adam", "gibbs"]
        for case in _DEVICE_CASES
        if not (solver == "gibbs" and case == "early-stopping")  # not available
    ],
)
def test_no_tensor_is_made_off_the_chosen_device(small_ratings, solver, case):
    # The CUDA check that runs without a GPU: with "meta" as torch's default
    # device, a tensor made without an explicit device (which on a GPU fit
    # would land on the CPU and meet CUDA tensors) is a meta tensor, and any
    # use of it with the real ones raises (or, in place, leaves the result
    # different). The results must equal those of a plain fit.
    params, weighted = _DEVICE_CASES[case]
    X, y = small_ratings.X, small_ratings.y
    sample_weight = None
    if weighted:
        sample_weight = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    params = {"solver": solver, "max_iter": 3, "random_state": 0, **params}

    def run():
        model = MFRegressor(device="cpu", **params)
        model.fit(X, y, sample_weight=sample_weight)
        if params.get("warm_start"):
            model.fit(X, y, sample_weight=sample_weight)
        if not params.get("early_stopping"):
            # Known rows take SGD steps; a new user and a new item are folded in.
            new = np.array([[10**6, 0], [10**6, 1], [0, 10**6], [1, 10**6]])
            model.partial_fit(np.vstack([X[:100], new]), np.r_[y[:100], 4, 2, 3, 5])
        pred = model.predict(np.vstack([X[:50], [[10**6, 0]]]))
        top = model.recommend([0, 1], n=5)
        new = model.recommend(["new"], n=3, ratings=[["new", 1, 4.0], ["new", 2, 2.0]])
        return pred, top, new

    expected = run()
    with torch.device("meta"):
        got = run()
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_svd_start_with_more_factors_than_the_matrix_rank():
    # 3 users x 2 items: the SVD fills 2 of the 5 columns, the rest are random.
    X = np.array([[0, 0], [0, 1], [1, 0], [2, 1]])
    y = np.array([4.0, 2.0, 5.0, 3.0])
    model = MFRegressor(n_components=5, max_iter=0, random_state=0).fit(X, y)
    R = np.array([[4.0, 2.0], [5.0, 0.0], [0.0, 3.0]])
    R[R > 0] -= y.mean()
    U, S, Vt = np.linalg.svd(R)
    # max_iter=0 keeps the start: its first 2 columns are the exact SVD.
    P, Q = model.user_factors_[:, :2], model.item_factors_[:, :2]
    np.testing.assert_allclose(P @ Q.T, (U[:, :2] * S) @ Vt, atol=1e-5)
    assert np.all(model.user_factors_[:, 2:] != 0)
    assert np.all(np.isfinite(MFRegressor(n_components=5).fit(X, y).predict(X)))


def test_svd_start_leaves_rows_without_weight_at_zero(small_ratings):
    X, y = small_ratings.X, small_ratings.y
    w = np.ones(len(y))
    w[X[:, 0] == X[0, 0]] = 0  # every rating of one user weighs 0
    model = MFRegressor(max_iter=0, random_state=0).fit(X, y, sample_weight=w)
    # Weight 0 is the same as absent: the user is not in the model at all.
    assert X[0, 0] not in model.users_
    other = MFRegressor(max_iter=0, random_state=0).fit(X[w > 0], y[w > 0])
    np.testing.assert_allclose(model.item_factors_, other.item_factors_, rtol=1e-5)
