"""The engine boundary: one solver entry point, plain NumPy state, serving anywhere."""

import ast
import copy
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

import skmf
from skmf import MFRegressor
from skmf._solvers import _engine
from skmf.datasets import make_ratings

SKMF = Path(skmf.__file__).parent


def test_the_estimator_module_holds_no_torch_code():
    """All tensor work is behind the solvers' entry point and the serving code."""
    tree = ast.parse((SKMF / "_estimator.py").read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert "torch" not in modules and "torch" not in names


@pytest.mark.parametrize("partial", [False, True])
def test_fit_and_partial_fit_go_through_the_one_entry_point(
    small_ratings, monkeypatch, partial
):
    calls = []
    real = _engine.fit_model

    def spy(*args, **kwargs):
        calls.append(kwargs.get("partial", False))
        return real(*args, **kwargs)

    monkeypatch.setattr("skmf._estimator.fit_model", spy)
    X, y = small_ratings.X, small_ratings.y
    model = MFRegressor(n_components=3, max_iter=2, tol=0.5, random_state=0)
    model.fit(X, y)
    model.set_params(warm_start=True).fit(X, y)
    model.partial_fit(X[:10], y[:10])
    MFRegressor(n_components=3, random_state=0).partial_fit(X, y)
    assert calls == [False, False, True, False]


def test_convergence_warning_points_at_the_callers_line(small_ratings):
    model = MFRegressor(max_iter=1, tol=0.0)
    with pytest.warns(ConvergenceWarning, match="max_iter=1") as record:
        model.fit(small_ratings.X, small_ratings.y)
    assert [Path(w.filename).name for w in record] == [Path(__file__).name]


def test_the_first_partial_fit_does_not_warn_about_convergence(small_ratings):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MFRegressor(random_state=0).partial_fit(small_ratings.X, small_ratings.y)


def test_partial_fit_after_changing_n_components_is_a_clear_error(small_ratings):
    X, y = small_ratings.X, small_ratings.y
    model = MFRegressor(n_components=3, max_iter=2, tol=0.5).fit(X, y)
    model.set_params(n_components=5)
    with pytest.raises(ValueError, match="n_components=3.*n_components=5"):
        model.partial_fit(X[:5], y[:5])
    with pytest.raises(ValueError, match="n_components=3.*n_components=5"):
        model.set_params(warm_start=True).fit(X, y)


def test_the_pickle_holds_the_parameters_and_about_4_bytes_per_rating():
    data = make_ratings(n_users=2000, n_items=1000, n_ratings=200_000, random_state=0)
    model = MFRegressor(n_components=8, max_iter=2, tol=0.5, random_state=0)
    model.fit(data.X, data.y)
    params = sum(
        a.nbytes
        for a in (
            model.user_factors_, model.item_factors_, model.user_bias_,
            model.item_bias_, model.users_, model.items_, model._user_n,
            model._item_n, model._rated[0],
        )
    )  # fmt: skip
    size = len(pickle.dumps(model))
    assert size <= params + 4.5 * len(data.y)
    lean = copy.deepcopy(model).set_params(keep_rated_pairs=False)
    lean.fit(data.X, data.y)
    assert len(pickle.dumps(lean)) < params - model._rated[0].nbytes + 0.01 * len(
        data.y
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "params",
    [
        {},  # ALS: the pairs come from the fit's own grouping
        {"solver": "gibbs", "max_iter": 3},
        {"solver": "sgd", "max_iter": 2},  # grouped for the spectral start only
        {"early_stopping": True, "max_iter": 3},  # grouped a subset: recomputed
        {"init": "random", "solver": "adam", "max_iter": 2},  # never grouped
    ],
)
def test_the_rated_pairs_are_every_training_pair_in_input_order(params):
    """model._rated against a stable argsort of the (user, item) codes, whether
    the fit's grouping supplied it or it was built apart; repeated pairs
    kept, and warm start keeps the pairs of its own call."""
    data = make_ratings(n_users=50, n_items=30, n_ratings=600, random_state=3)
    X = np.vstack([data.X, data.X[:40]])  # repeated pairs
    y = np.concatenate([data.y, data.y[:40]])
    model = MFRegressor(random_state=0, **params)

    def check(Xf):
        u = np.searchsorted(model.users_, Xf[:, 0])
        i = np.searchsorted(model.items_, Xf[:, 1])
        indptr, indices = model._rated
        counts = np.bincount(u, minlength=len(model.users_))
        np.testing.assert_array_equal(indptr, np.r_[0, np.cumsum(counts)])
        np.testing.assert_array_equal(indices, i[np.argsort(u, kind="stable")])
        assert indptr.dtype == np.int64 and indices.dtype == np.int32

    model.fit(X, y)
    check(X)
    model.set_params(warm_start=True).fit(X[::2], y[::2])
    check(X[::2])


def test_without_rated_pairs_recommend_takes_the_exclusions_from_the_caller(
    small_ratings,
):
    X, y = small_ratings.X, small_ratings.y
    kept = MFRegressor(n_components=3, random_state=0).fit(X, y)
    lean = MFRegressor(n_components=3, random_state=0, keep_rated_pairs=False)
    lean.fit(X, y)
    assert lean._rated is None
    users = kept.users_[:5]
    with pytest.raises(ValueError, match="keep_rated_pairs=False.*exclude="):
        lean.recommend(users, n=5)
    ids, scores = lean.recommend(users, n=5, exclude=X)
    ref_ids, ref_scores = kept.recommend(users, n=5)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores)
    # exclude adds to the training pairs of a model that keeps them.
    first = ref_ids[:, 0]
    ids2, _ = kept.recommend(users, n=5, exclude=np.column_stack([users, first]))
    assert not (ids2 == first[:, None]).any()


def test_reading_methods_do_not_change_the_model(small_ratings):
    X, y = small_ratings.X, small_ratings.y
    model = MFRegressor(n_components=3, random_state=0).fit(X, y)
    before = pickle.dumps(model)
    model.predict(X)
    model.score(X, y)
    model.recommend(model.users_[:4], n=3)
    model.recommend("new", n=3, ratings={model.items_[0]: 5.0})
    model.similar_items(model.items_[:3], n=2)
    assert pickle.dumps(model) == before


def test_a_model_whose_device_is_missing_serves_on_the_cpu(small_ratings, monkeypatch):
    """A model fitted on a GPU and loaded where there is none still serves, with
    one warning that names the fix (CUDA is patched off here)."""
    X, y = small_ratings.X, small_ratings.y
    model = MFRegressor(n_components=3, random_state=0).fit(X, y)
    gpu = copy.deepcopy(model).set_params(device="cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    users = model.users_[:4]
    for call in (
        lambda m: m.recommend(users, n=3),
        lambda m: m.similar_items(model.items_[:2], n=3),
        lambda m: copy.deepcopy(m).partial_fit(X[:20], y[:20]).user_factors_,
    ):
        with pytest.warns(UserWarning, match="set_params\\(device=") as record:
            got = call(gpu)
        assert len(record) == 1
        expected = call(model)
        for a, b in zip(np.atleast_1d(got), np.atleast_1d(expected)):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(gpu.predict(X), model.predict(X))
    with pytest.raises(ValueError, match="not supported|must be"):
        copy.deepcopy(model).set_params(device="tpu").recommend(users)


def test_a_fit_too_large_for_memory_is_refused_before_any_allocation(monkeypatch):
    """n_components=10**5 on 4 ratings would ask for ~10^11 bytes of Gram matrices."""
    allocated = []
    real_zeros = torch.zeros

    def zeros(*args, **kwargs):
        allocated.append(args)
        return real_zeros(*args, **kwargs)

    monkeypatch.setattr(torch, "zeros", zeros)
    model = MFRegressor(n_components=10**5)
    with pytest.raises(ValueError, match="n_components=100000.*GiB"):
        model.fit([[0, 0], [0, 1], [1, 0], [1, 1]], [1.0, 2.0, 3.0, 4.0])
    assert allocated == []


def test_memory_estimate_grows_with_the_model():
    settings = _engine.Settings.from_params(MFRegressor().get_params())
    small = _engine.estimate_bytes(6040, 3706, 10**6, settings, 4)
    assert 10**6 * 64 < small < 2**30  # ML-1M defaults: well under 1 GiB
    big = _engine.Settings.from_params(MFRegressor(n_components=256).get_params())
    assert _engine.estimate_bytes(6040, 3706, 10**6, big, 4) > 4 * small


# ------------------------------------------------------------ threads and load
@pytest.mark.parametrize(
    "others, cores, limit, expected",
    [
        (0, 2, 2, 2),
        (1, 2, 2, 1),
        (5, 2, 2, 1),
        (1, 8, 4, 4),
        (3, 8, 8, 5),
        (None, 2, 4, 4),
        (10**6, 2, 4, 4),
    ],
)
def test_default_threads_leave_busy_cores_alone(
    monkeypatch, others, cores, limit, expected
):
    """n_jobs=None: torch's threads, lowered to the idle cores (at least 1);
    unknown or implausible load counters leave torch's setting."""
    from skmf import _device

    monkeypatch.setattr(_device, "_others_running", lambda: others)
    monkeypatch.setattr(_device.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert _device.idle_threads(limit) == expected


def test_torch_threads_uses_the_idle_cores_and_restores(monkeypatch):
    from skmf import _device

    monkeypatch.setattr(_device, "idle_threads", lambda limit: 1)
    before = torch.get_num_threads()
    with _device.torch_threads(None):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with _device.torch_threads(1):
        assert torch.get_num_threads() == 1
    with pytest.raises(ValueError, match="n_jobs"):
        with _device.torch_threads(0):
            pass


@pytest.mark.load
def test_others_running_reads_this_machine():
    from skmf._device import _others_running

    value = _others_running()
    assert value is None or value >= 0
