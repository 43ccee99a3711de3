"""recommend, similar_items, fold-in and partial_fit against brute-force references."""

import copy
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from _reference import rating_std
from sklearn.exceptions import ConvergenceWarning

import skmf._recommend as recommend_module
from skmf import MFRegressor
from skmf._solvers import fold_in

pytestmark = pytest.mark.usefixtures("quiet_short_fits")


@pytest.fixture(scope="module")
def data(ratings_60x40):
    return ratings_60x40


@pytest.fixture(scope="module")
def model(data):
    return MFRegressor(
        n_components=4, max_iter=20, dtype="float64", n_jobs=1, random_state=0
    ).fit(data.X, data.y)


def _brute_force(model, users, n, *, seen=None, items=None):
    """Top-n (ids, scores) per user from predict on every (user, item) pair."""
    cand = model.items_ if items is None else np.asarray(items)
    out_ids, out_scores = [], []
    for user in users:
        scores = model.predict(np.column_stack([np.full(len(cand), user), cand]))
        if seen is not None:
            rated = seen.get(user, set())
            scores = np.where([c in rated for c in cand], -np.inf, scores)
        order = np.argsort(-scores, kind="stable")[:n]
        order = order[np.isfinite(scores[order])]
        out_ids.append(cand[order])
        out_scores.append(scores[order])
    return out_ids, out_scores


def _seen(X):
    seen = {}
    for u, i in X[:, :2].tolist():
        seen.setdefault(u, set()).add(i)
    return seen


def _rated_ids(model):
    """The (user id, item id) pairs the model keeps for recommend, as a set."""
    indptr, indices = model._rated
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return set(zip(model.users_[rows].tolist(), model.items_[indices].tolist()))


# ------------------------------------------------------------------ recommend
def test_recommend_is_the_top_of_predict_without_seen_items(data, model):
    users = model.users_
    ids, scores = model.recommend(users, n=7)
    ref_ids, ref_scores = _brute_force(model, users, 7, seen=_seen(data.X))
    assert ids.shape == scores.shape == (len(users), 7)
    np.testing.assert_array_equal(ids, np.array(ref_ids))
    np.testing.assert_allclose(scores, np.array(ref_scores), rtol=1e-12)
    # No recommended item was rated in training.
    seen = _seen(data.X)
    assert not any(i in seen[u] for u, row in zip(users, ids) for i in row)


def test_recommend_with_seen_items_is_the_argsort_of_predict(model):
    ids, scores = model.recommend(model.users_[:10], n=len(model.items_) + 5,
                                  exclude_seen=False)  # fmt: skip
    ref_ids, ref_scores = _brute_force(model, model.users_[:10], 10**6)
    assert ids.shape == (10, len(model.items_))  # min(n, n_candidates) columns
    np.testing.assert_array_equal(ids, np.array(ref_ids))
    np.testing.assert_allclose(scores, np.array(ref_scores), rtol=1e-12)


def test_candidate_items_restrict_the_ranking(data, model):
    cand = np.array([3, 17, 5, 999, 30, 17, 8])  # 999 is unknown, 17 repeated
    ids, scores = model.recommend(model.users_, n=4, items=cand)
    unique = pd.unique(cand)
    ref_ids, ref_scores = _brute_force(model, model.users_, 4, seen=_seen(data.X),
                                       items=unique)  # fmt: skip
    assert set(np.unique(ids[ids >= 0])) <= set(unique.tolist())
    for row, ref, s, rs in zip(ids, ref_ids, scores, ref_scores):
        k = len(ref)
        np.testing.assert_array_equal(row[:k], ref)
        np.testing.assert_allclose(s[:k], rs, rtol=1e-12)
        # Users with fewer candidates left are padded with -1 and NaN.
        assert np.all(row[k:] == -1) and np.all(np.isnan(s[k:]))
    # The unknown candidate is scored mu + b_u, as predict does.
    user = model.users_[0]
    i, s = model.recommend(user, n=6, items=[999], exclude_seen=False)
    assert s[0] == pytest.approx(model.intercept_ + model.user_bias_[0], rel=1e-12)


def test_unknown_users_get_the_best_items_by_mu_plus_item_bias(model):
    ids, scores = model.recommend(["stranger", 10**6], n=5)
    best = np.argsort(-(model.intercept_ + model.item_bias_), kind="stable")[:5]
    for row, s in zip(ids, scores):
        np.testing.assert_array_equal(row, model.items_[best])
        np.testing.assert_allclose(s, model.intercept_ + model.item_bias_[best])


def test_results_do_not_depend_on_the_block_size(model, monkeypatch):
    users = np.concatenate([model.users_, [-5]])
    ref = model.recommend(users, n=9)
    ref_sim = model.similar_items(model.items_, n=6)
    for budget in (1, 3 * 40 * 8, 17 * 40 * 8):  # 1, 3 and 17 rows per block
        monkeypatch.setattr(recommend_module, "_BLOCK_BYTES", budget)
        ids, scores = model.recommend(users, n=9)
        np.testing.assert_array_equal(ids, ref[0])
        np.testing.assert_allclose(scores, ref[1], rtol=1e-12)
        sim_ids, sims = model.similar_items(model.items_, n=6)
        np.testing.assert_array_equal(sim_ids, ref_sim[0])
        np.testing.assert_allclose(sims, ref_sim[1], rtol=1e-12)


def test_one_user_gives_1d_arrays_and_many_give_2d(model):
    ids, scores = model.recommend(model.users_[2], n=3)
    assert ids.shape == scores.shape == (3,)
    many_ids, many_scores = model.recommend(model.users_[[2]], n=3)
    assert many_ids.shape == (1, 3)
    np.testing.assert_array_equal(many_ids[0], ids)
    assert model.recommend(pd.Series(model.users_[:4]), n=2)[0].shape == (4, 2)


def test_padding_when_some_users_have_few_items_left():
    X = np.array([[0, 0], [0, 1], [0, 2], [1, 0], [2, 3]])
    y = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    model = MFRegressor(n_components=2, random_state=0).fit(X, y)
    ids, scores = model.recommend([0, 1, 2], n=10)
    assert ids.shape == (3, 3)  # user 1 has 3 items left: the most of anyone
    assert list(ids[0, 1:]) == [-1, -1] and np.isnan(scores[0, 1:]).all()
    assert ids[0, 0] == 3
    # One user: exactly its candidates, no padding.
    assert model.recommend(0, n=10)[0].tolist() == [3]
    # Ids of object dtype (strings from a DataFrame) are padded with None,
    # NumPy string ids with "".
    names = np.array(["a", "b", "c", "d"])
    str_model = MFRegressor(n_components=2, random_state=0)
    str_model.fit(pd.DataFrame({"user": X[:, 0], "item": names[X[:, 1]]}), y)
    str_ids, _ = str_model.recommend([0, 1], n=10)
    assert str_ids[0, 0] == "d" and str_ids[0, 1] is None
    str_ids, _ = str_model.recommend([0, 1], n=10, items=names)
    assert str_ids.dtype.kind == "U" and str_ids[0, 0] == "d" and str_ids[0, 1] == ""


@pytest.mark.parametrize(
    "items, dtype",
    [([-1, 0, 1, 2, 3], np.int64), ([-1.0, 0.5, 2.0], np.float64),
     (["", "a", "b"], None)],
)  # fmt: skip
def test_padding_is_never_one_of_the_ids(items, dtype):
    """An item may be -1 (or "" ...): the fill of padded rows is another value."""
    items = np.asarray(items) if dtype is None else np.asarray(items, dtype=dtype)
    X = pd.DataFrame({"user": [0] * (len(items) - 1) + [1], "item": items})
    y = np.linspace(1, 5, len(items))
    model = MFRegressor(n_components=2, random_state=0).fit(X, y)
    ids, scores = model.recommend([0, 1], n=10)
    pad = np.isnan(scores)
    assert pad.any() and not pad[1].any()
    for fill in ids[pad]:
        assert fill not in set(model.items_.tolist()) and not (
            isinstance(fill, str) and fill in set(items.tolist())
        )


@pytest.mark.parametrize(
    "users, expected",
    [("ab", ["ab"]), ((1, 2), [(1, 2)]), (np.int32(3), [3])],
)
def test_one_id_of_any_type_is_one_user(users, expected):
    X = pd.DataFrame({"user": pd.Series(["ab", (1, 2), 3], dtype=object),
                      "item": ["x", "y", "z"]})  # fmt: skip
    model = MFRegressor(n_components=2, random_state=0).fit(X, [1.0, 2.0, 3.0])
    ids, scores = model.recommend(users, n=3, exclude_seen=False)
    assert ids.shape == (3,)  # one user: 1-D
    ref = model.predict(pd.DataFrame({"user": expected * 3, "item": ids}))
    np.testing.assert_allclose(scores, ref, rtol=1e-5)  # float32 scores


def test_one_item_of_any_type_is_one_candidate(model):
    ids, _ = model.recommend(model.users_[0], n=3, items=3, exclude_seen=False)
    assert ids.tolist() == [3]
    m = MFRegressor(n_components=2, random_state=0).fit(
        pd.DataFrame({"user": [0, 0, 1], "item": ["ab", "a", "b"]}), [1.0, 2.0, 3.0]
    )
    ids, _ = m.recommend(1, n=3, items="ab", exclude_seen=False)
    assert ids.tolist() == ["ab"]


@pytest.mark.parametrize("user", [None, np.nan, float("inf")])
def test_missing_user_ids_are_refused_as_predict_refuses_them(model, user):
    with pytest.raises(ValueError, match="missing id|infinity"):
        model.recommend(user)
    with pytest.raises(ValueError, match="NaN|None|infinity"):
        model.predict(pd.DataFrame({"user": [user], "item": [0]}, dtype=object))


def test_fold_in_ratings_outside_the_float32_range_are_a_clear_error(model):
    m32 = MFRegressor(n_components=2, random_state=0).fit(_X1, _Y1)
    with pytest.raises(ValueError, match="float32"):
        m32.recommend(1000, ratings={0: 1e39})


def test_string_ids_and_dataframes(data):
    df = pd.DataFrame({
        "user": [f"u{u}" for u in data.X[:, 0]],
        "item": [f"i{i}" for i in data.X[:, 1]],
    })  # fmt: skip
    model = MFRegressor(n_components=3, max_iter=5, n_jobs=1, random_state=0)
    model.fit(df, data.y)
    ids, scores = model.recommend(["u1", "u2"], n=4)
    assert ids.dtype == model.items_.dtype and str(ids[0, 0]).startswith("i")
    ref = model.predict(pd.DataFrame({"user": ["u1"] * 4, "item": ids[0]}))
    np.testing.assert_allclose(scores[0], ref, rtol=1e-5)
    sim_ids, _ = model.similar_items("i3", n=2)
    assert "i3" not in sim_ids


def test_clip_applies_to_the_scores(data):
    model = MFRegressor(n_components=3, alpha=0.0, max_iter=10, clip=True,
                        n_jobs=1, random_state=0).fit(data.X, data.y)  # fmt: skip
    _, scores = model.recommend(model.users_, n=5)
    low, high = model.rating_range_
    assert scores.min() >= low and scores.max() <= high


def test_bad_arguments_raise_clear_errors(model):
    with pytest.raises(ValueError, match="'n' parameter of recommend"):
        model.recommend(0, n=0)
    with pytest.raises(TypeError, match="'n' parameter of similar_items"):
        model.similar_items(0, n=2.5)
    with pytest.raises(ValueError, match="not in items_"):
        model.similar_items([0, 12345])
    with pytest.raises(ValueError, match="single user"):
        model.recommend([0, 1], ratings={3: 4.0})
    with pytest.raises(ValueError, match="1-D"):
        model.recommend(np.zeros((2, 2)))
    with pytest.raises(Exception, match="not fitted"):
        MFRegressor().recommend(0)


def test_recommend_leaves_the_model_unchanged_and_survives_pickling(data, model):
    before = copy.deepcopy(model.__dict__)
    model.recommend(model.users_[:3], n=3, ratings=[(999, 0, 5.0), (999, 1, 1.0)])
    assert before.keys() == model.__dict__.keys()
    np.testing.assert_array_equal(before["user_factors_"], model.user_factors_)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(
        loaded.recommend(model.users_, n=4)[0], model.recommend(model.users_, n=4)[0]
    )


def test_rated_pairs_are_compact_csr_arrays(data, model):
    indptr, indices = model._rated
    assert indices.dtype == np.int32 and len(indptr) == len(model.users_) + 1
    assert len(indices) == len(data.X)  # one entry per distinct rated pair
    assert _rated_ids(model) == {tuple(p) for p in data.X[:, :2].tolist()}


def test_warm_start_new_users_have_their_items_excluded(data):
    X, y = data.X, data.y
    model = MFRegressor(
        n_components=3, max_iter=3, warm_start=True, n_jobs=1, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
        X_new = np.vstack([X, [[500, 0], [500, 1], [500, 2], [501, 39]]])
        model.fit(X_new, np.concatenate([y, [5.0, 4.0, 1.0, 3.0]]))
    assert len(model._rated[0]) == len(model.users_) + 1
    ids, _ = model.recommend([500, 501], n=len(model.items_))
    assert ids.shape == (2, len(model.items_) - 1)
    assert not {0, 1, 2} & set(ids[0].tolist()) and ids[0, -1] == -1
    assert 39 not in ids[1].tolist()


# --------------------------------------------------------------- similar_items
def test_similar_items_is_the_numpy_cosine_brute_force(model):
    Q = model.item_factors_
    unit = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    cos = unit @ unit.T
    np.fill_diagonal(cos, -np.inf)
    ids, sims = model.similar_items(model.items_, n=5)
    order = np.argsort(-cos, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(ids, model.items_[order])
    np.testing.assert_allclose(sims, np.take_along_axis(cos, order, 1), rtol=1e-12)
    one_ids, one_sims = model.similar_items(model.items_[4], n=100)
    assert one_ids.shape == (len(model.items_) - 1,)
    assert model.items_[4] not in one_ids


# --------------------------------------------------------------------- fold-in
@pytest.fixture(
    scope="module",
    params=[("sqrt", 0.5, 0.2), ("count", 0.1, 0.05), ("none", 2.0, 1.0)],
)
def converged(request, data):
    """An ALS model at its fixed point (float64, tol=0, many sweeps), with
    penalties that leave the factors well away from zero."""
    scaling, alpha, alpha_bias = request.param
    model = MFRegressor(
        n_components=3, alpha=alpha, alpha_bias=alpha_bias, alpha_scaling=scaling,
        max_iter=150, tol=0, n_iter_no_change=150, dtype="float64", n_jobs=1,
        random_state=0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(data.X, data.y)


def test_fold_in_of_a_trained_user_recovers_its_factors(data, converged):
    """At the ALS fixed point, each user row is the ridge solution given the
    items: folding the user in again from its ratings gives the same row."""
    model = converged
    X, y = data.X, data.y
    rows = np.searchsorted(model.users_, X[:, 0])
    cols = np.searchsorted(model.items_, X[:, 1])
    P, bu = fold_in(
        rows, cols, y, None, len(model.users_), model.item_factors_,
        model.item_bias_, model.intercept_, alpha=model.alpha,
        alpha_bias=model.alpha_bias, scaling=model.alpha_scaling,
        device=torch.device("cpu"), rating_scale=rating_std(y),
    )  # fmt: skip
    assert np.abs(model.user_factors_).max() > 0.5  # not the trivial zero model
    np.testing.assert_allclose(P, model.user_factors_, atol=1e-5)
    np.testing.assert_allclose(bu, model.user_bias_, atol=1e-5)
    # A fold-in that ignored the penalty scaling would be far off.
    wrong = "none" if model.alpha_scaling != "none" else "count"
    P_wrong, _ = fold_in(
        rows, cols, y, None, len(model.users_), model.item_factors_,
        model.item_bias_, model.intercept_, alpha=model.alpha,
        alpha_bias=model.alpha_bias, scaling=wrong, device=torch.device("cpu"),
        rating_scale=rating_std(y),
    )  # fmt: skip
    assert np.abs(P_wrong - model.user_factors_).max() > 1e-2


def test_recommend_from_ratings_serves_a_new_user_as_if_trained(data, converged):
    """Dropping a trained user's id and serving it from its ratings alone
    gives the trained user's recommendations (no refit)."""
    model = converged
    X, y = data.X, data.y
    for user in model.users_[:5]:
        mine = X[:, 0] == user
        ratings = [("ghost", i, r) for i, r in zip(X[mine, 1], y[mine])]
        ids, scores = model.recommend("ghost", n=8, ratings=ratings)
        ref_ids, ref_scores = model.recommend(user, n=8)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
        as_dict = dict(zip(X[mine, 1].tolist(), y[mine].tolist()))
        np.testing.assert_array_equal(model.recommend(10**9, n=8, ratings=as_dict)[0],
                                      ref_ids)  # fmt: skip


def test_fold_in_ignores_unknown_items_and_handles_no_ratings(model):
    with_unknown = model.recommend(
        "new", n=5, ratings=[("new", 0, 5.0), ("new", 1, 1.0), ("new", 777, 5.0)]
    )
    without = model.recommend("new", n=5, ratings=[("new", 0, 5.0), ("new", 1, 1.0)])
    np.testing.assert_array_equal(with_unknown[0], without[0])
    np.testing.assert_allclose(with_unknown[1], without[1])
    assert 0 not in without[0] and 1 not in without[0]
    only_unknown = model.recommend("new", n=5, ratings=[("new", 777, 5.0)])
    unknown_user = model.recommend("new", n=5)
    np.testing.assert_array_equal(only_unknown[0], unknown_user[0])


# ------------------------------------------------------------------ partial_fit
def _split(data):
    """Old ratings; new ones from known rows, new users (50-59), new items (36-39)."""
    X = data.X
    fresh = (X[:, 0] >= 50) | (X[:, 1] >= 36)
    rest = np.flatnonzero(~fresh)
    perm = np.random.RandomState(0).permutation(rest)
    old = perm[: int(0.8 * len(perm))]
    new = np.concatenate([perm[int(0.8 * len(perm)) :], np.flatnonzero(fresh)])
    return old, new


def _rmse(model, X, y):
    return float(np.sqrt(np.mean((model.predict(X) - y) ** 2)))


def test_partial_fit_lowers_the_error_on_new_ratings_not_on_old(data):
    X, y = data.X, data.y
    old, new = _split(data)
    model = MFRegressor(n_components=3, n_jobs=1, random_state=0).fit(X[old], y[old])
    known = new[(X[new, 0] < 50) & (X[new, 1] < 36)]
    parts = {"new": new, "old": old, "known": known}
    before = {name: _rmse(model, X[idx], y[idx]) for name, idx in parts.items()}
    mu = model.intercept_
    model.partial_fit(X[new], y[new])
    after = {name: _rmse(model, X[idx], y[idx]) for name, idx in parts.items()}
    assert after["new"] < 0.9 * before["new"]
    assert after["known"] < before["known"]  # the SGD epoch on known rows
    assert after["old"] < before["old"] + 0.02
    assert model.intercept_ == mu
    assert len(model.users_) == 60 and len(model.items_) == 40
    # A second pass over the same ratings lowers their error further.
    model.partial_fit(X[known], y[known])
    assert _rmse(model, X[known], y[known]) < after["known"]


def test_partial_fit_folds_new_users_in_exactly_and_updates_seen(data, model):
    m = copy.deepcopy(model)
    new = np.array([[100, 0], [100, 5], [100, 9], [101, 3]])
    r = np.array([5.0, 1.0, 4.0, 2.0])
    expected_P, expected_b = fold_in(
        np.array([0, 0, 0, 1]), np.searchsorted(m.items_, new[:, 1]), r, None, 2,
        m.item_factors_, m.item_bias_, m.intercept_, alpha=m.alpha,
        alpha_bias=m.alpha, scaling=m.alpha_scaling, device=torch.device("cpu"),
        rating_scale=rating_std(data.y),
    )  # fmt: skip
    m.partial_fit(new, r)
    assert list(m.users_[-2:]) == [100, 101]
    np.testing.assert_allclose(m.user_factors_[-2:], expected_P, rtol=1e-12)
    np.testing.assert_allclose(m.user_bias_[-2:], expected_b, rtol=1e-12)
    # Known users and the items of these ratings other than the rated ones
    # are left alone; the rated items took an SGD step.
    np.testing.assert_array_equal(m.user_factors_[:-2], model.user_factors_)
    untouched = np.setdiff1d(np.arange(len(m.items_)), [0, 3, 5, 9])
    np.testing.assert_array_equal(
        m.item_factors_[untouched], model.item_factors_[untouched]
    )
    assert not np.allclose(m.item_factors_[[0, 5]], model.item_factors_[[0, 5]])
    ids, _ = m.recommend([100, 101], n=len(m.items_))
    assert not {0, 5, 9} & set(ids[0].tolist()) and 3 not in ids[1].tolist()
    assert _rated_ids(m) == _rated_ids(model) | {tuple(p) for p in new.tolist()}
    np.testing.assert_allclose(m._user_n[-2:], [3.0, 1.0])


def test_partial_fit_folds_new_items_in_from_all_users(data, model):
    m = copy.deepcopy(model)
    new = np.array([[model.users_[0], 50], [model.users_[1], 50], [200, 50]])
    r = np.array([5.0, 4.0, 3.0])
    m.partial_fit(new, r)
    assert m.items_[-1] == 50 and m.users_[-1] == 200
    # The new user had no rating of a known item: zeros; the new item is the
    # ridge solution given all three users (the new one included).
    assert np.all(m.user_factors_[-1] == 0) and m.user_bias_[-1] == 0
    rows = np.searchsorted(m.users_, new[:, 0])
    Q, b = fold_in(
        np.zeros(3, dtype=np.int64), rows, r, None, 1,
        np.vstack([model.user_factors_, np.zeros((1, 4))]),
        np.append(model.user_bias_, 0.0), model.intercept_, alpha=m.alpha,
        alpha_bias=m.alpha, scaling=m.alpha_scaling, device=torch.device("cpu"),
        rating_scale=rating_std(data.y),
    )  # fmt: skip
    np.testing.assert_allclose(m.item_factors_[-1], Q[0], rtol=1e-12)
    np.testing.assert_allclose(m.item_bias_[-1], b[0], rtol=1e-12)


def test_first_partial_fit_is_fit_with_one_iteration(data):
    X, y = data.X, data.y
    params = {"n_components": 3, "n_jobs": 1, "random_state": 0}
    a = MFRegressor(**params).partial_fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        b = MFRegressor(**params, max_iter=1).fit(X, y)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert a.n_iter_ == 1 and a.max_iter == 30  # the parameter is untouched
    assert len(a._rated[1]) == len(X)


def test_partial_fit_with_weights_and_errors(data, model):
    m = copy.deepcopy(model)
    X = np.array([[0, 0], [300, 1], [300, 2]])
    m.partial_fit(X, [5.0, 4.0, 2.0], sample_weight=[1.0, 0.0, 2.0])
    seen_300 = m.recommend(300, n=100)[0]
    assert 2 not in seen_300 and 1 in seen_300  # weight 0: not a rating
    with pytest.raises(ValueError, match="non-zero"):
        m.partial_fit(X, [5.0, 4.0, 2.0], sample_weight=[0, 0, 0])
    with pytest.raises(ValueError, match="early_stopping"):
        MFRegressor(early_stopping=True).partial_fit(data.X, data.y)


# ------------------------------------------------------------------------ CUDA
@pytest.mark.cuda
def test_cuda_recommend_matches_cpu(data, model):
    gpu = copy.deepcopy(model).set_params(device="cuda")
    users = np.concatenate([model.users_, [-1]])
    for args in ({}, {"items": [1, 4, 7, 999]}, {"exclude_seen": False}):
        ids_c, sc_c = model.recommend(users, n=6, **args)
        ids_g, sc_g = gpu.recommend(users, n=6, **args)
        np.testing.assert_array_equal(ids_g, ids_c)
        np.testing.assert_allclose(sc_g, sc_c, rtol=1e-10)
    ratings = [("new", 0, 5.0), ("new", 3, 1.0)]
    np.testing.assert_array_equal(
        gpu.recommend("new", ratings=ratings)[0],
        model.recommend("new", ratings=ratings)[0],
    )
    np.testing.assert_array_equal(
        gpu.similar_items(model.items_)[0], model.similar_items(model.items_)[0]
    )
    new = np.array([[100, 0], [100, 5], [3, 50]])
    a = copy.deepcopy(model).partial_fit(new, [5.0, 1.0, 4.0])
    b = copy.deepcopy(gpu).partial_fit(new, [5.0, 1.0, 4.0])
    np.testing.assert_allclose(b.user_factors_, a.user_factors_, atol=1e-10)
    np.testing.assert_allclose(b.item_factors_, a.item_factors_, atol=1e-10)


# ------------------------------------ warm start and partial_fit: edge cases
_X1 = np.array([[0, 0], [0, 1], [1, 0], [1, 2], [2, 1], [2, 2], [3, 0], [4, 1]])
_Y1 = np.array([5.0, 3.0, 4.0, 1.0, 2.0, 4.0, 3.0, 2.0])


def test_partial_fit_keeps_folded_in_rows_fixed_within_the_epoch():
    # Users 3 and 4 each rate the new item 50 once: their SGD steps depend only
    # on their own state and on item 50's folded-in (frozen) row, so one batch
    # of both ratings and two batches of one must give the same model.
    base = MFRegressor(
        n_components=2, random_state=0, dtype="float64", learning_rate=0.5
    ).fit(_X1, _Y1)
    fitted = []
    for batch_size in (1, 2):
        m = pickle.loads(pickle.dumps(base)).set_params(batch_size=batch_size)
        fitted.append(m.partial_fit([[3, 50], [4, 50]], [5.0, 1.0]))
    one, two = fitted
    np.testing.assert_allclose(one.user_factors_, two.user_factors_, rtol=1e-12)
    np.testing.assert_allclose(one.user_bias_, two.user_bias_, rtol=1e-12)
    np.testing.assert_allclose(one.item_factors_, two.item_factors_, rtol=1e-12)


@pytest.mark.parametrize("solver", ["als", "sgd"])
def test_warm_start_keeps_rows_absent_from_the_new_data(solver):
    m = MFRegressor(n_components=2, random_state=0, warm_start=True, solver=solver)
    m.fit(_X1, _Y1)
    P, bu = m.user_factors_[2].copy(), m.user_bias_[2]
    m.fit(np.array([[0, 2], [1, 1], [5, 0]]), np.array([2.0, 3.0, 5.0]))
    np.testing.assert_array_equal(m.user_factors_[2], P)  # user 2 is not in X
    assert m.user_bias_[2] == bu


def test_warm_start_with_another_n_components_is_a_clear_error():
    m = MFRegressor(n_components=2, warm_start=True).fit(_X1, _Y1)
    with pytest.raises(ValueError, match="warm_start=True.*n_components=2"):
        m.set_params(n_components=3).fit(_X1, _Y1)


@pytest.mark.parametrize(
    "X, new, dtype",
    [
        (_X1.astype(np.int32), [[9, 0]], np.int64),  # int32, then a list
        (_X1.astype(float), [[9, 0]], np.float64),  # float ids, then ints
    ],
)
def test_new_ids_keep_a_numeric_id_dtype(X, new, dtype):
    m = MFRegressor(n_components=2, random_state=0).fit(X, _Y1)
    m.partial_fit(new, [4.0])
    assert m.users_.dtype == dtype and m.users_[-1] == 9


def test_recommend_excludes_rated_candidates_unknown_to_the_model():
    m = MFRegressor(n_components=2, random_state=0).fit(_X1, _Y1)
    ids, _ = m.recommend(1000, n=5, items=[77, 0, 2], ratings={77: 5.0, 2: 1.0})
    np.testing.assert_array_equal(ids, [0])
    ids, _ = m.recommend(
        1000, n=5, items=[77, 0, 2], ratings={77: 5.0, 2: 1.0}, exclude_seen=False
    )
    assert set(ids) == {77, 0, 2}


def test_recommend_with_empty_ratings_is_recommend_without():
    m = MFRegressor(n_components=2, random_state=0).fit(_X1, _Y1)
    a, b = m.recommend(1000, n=3, ratings={}), m.recommend(1000, n=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
