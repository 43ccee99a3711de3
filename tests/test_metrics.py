"""Ranking metrics against brute-force loops and sklearn.metrics.ndcg_score."""

import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.metrics import make_scorer, mean_absolute_error, ndcg_score
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.utils._param_validation import InvalidParameterError

from skmf import MFRegressor
from skmf.datasets import make_ratings
from skmf.metrics import (
    get_scorer,
    make_ranking_scorer,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

pytestmark = [
    pytest.mark.usefixtures("quiet_short_fits"),
    # Scorers get DataFrames from models fitted on arrays, on purpose.
    pytest.mark.filterwarnings("ignore:X has feature names"),
]


@pytest.fixture(scope="module")
def split():
    data = make_ratings(
        n_users=80, n_items=50, n_ratings=2000, n_components=3, noise=0.5,
        random_state=0,
    )  # fmt: skip
    perm = np.random.RandomState(0).permutation(len(data.y))
    train, test = perm[:1500], perm[1500:]
    return data.X[train], data.y[train], data.X[test], data.y[test]


@pytest.fixture(scope="module")
def model(split):
    X, y = split[:2]
    model = MFRegressor(n_components=3, dtype="float64", n_jobs=1, random_state=0)
    return model.fit(X, y)


def _by_user(X, y, pred):
    """{user: (items, ratings, predictions)} in the order of the rows."""
    out = {}
    for (u, i), r, p in zip(X.tolist(), y.tolist(), pred.tolist()):
        items, ratings, preds = out.setdefault(u, ([], [], []))
        items.append(i)
        ratings.append(r)
        preds.append(p)
    return out


def _dcg(gains, k):
    return sum(g / np.log2(r + 2) for r, g in enumerate(gains[:k]))


def _brute_force_test(model, X, y, k, threshold, gain="binary"):
    """Precision, recall and NDCG at k ranking each user's test items."""
    precision, recall, ndcg = [], [], []
    for _, (items, ratings, preds) in _by_user(X, y, model.predict(X)).items():
        ratings = np.array(ratings)
        rel = ratings >= threshold
        if not rel.any():
            continue
        gains = ratings if gain == "rating" else rel.astype(float)
        order = sorted(range(len(items)), key=lambda j: (-preds[j], j))
        top = order[:k]
        hits = sum(rel[j] for j in top)
        precision.append(hits / min(k, len(items)))
        recall.append(hits / rel.sum())
        ideal = sorted(gains, reverse=True)
        ndcg.append(_dcg([gains[j] for j in order], k) / _dcg(ideal, k))
    return np.mean(precision), np.mean(recall), np.mean(ndcg)


def _brute_force_all(model, X_train, X, y, k, threshold):
    """The same, ranking every item not rated in training by predict."""
    seen = {}
    for u, i in X_train.tolist():
        seen.setdefault(u, set()).add(i)
    precision, recall, ndcg = [], [], []
    for user, (items, ratings, _) in _by_user(X, y, np.zeros(len(y))).items():
        rating_of = dict(zip(items, ratings))
        relevant = {i for i, r in rating_of.items() if r >= threshold}
        if not relevant:
            continue
        cand = [i for i in model.items_.tolist() if i not in seen.get(user, ())]
        pred = model.predict(np.column_stack([np.full(len(cand), user), cand]))
        order = np.argsort(-pred, kind="stable")[:k]
        top = [cand[j] for j in order]
        hits = len(relevant & set(top))
        precision.append(hits / min(k, len(cand)))
        recall.append(hits / len(relevant))
        gains = [1.0 if i in relevant else 0.0 for i in top]
        ndcg.append(_dcg(gains, k) / _dcg([1.0] * len(relevant), k))
    return np.mean(precision), np.mean(recall), np.mean(ndcg)


@pytest.mark.parametrize("k", [1, 3, 10])
@pytest.mark.parametrize("threshold", [3.5, 4.0])
def test_metrics_on_test_items_match_a_brute_force_loop(split, model, k, threshold):
    X_test, y_test = split[2:]
    p, r, n = _brute_force_test(model, X_test, y_test, k, threshold)
    kwargs = {"k": k, "threshold": threshold}
    assert precision_at_k(model, X_test, y_test, **kwargs) == pytest.approx(p)
    assert recall_at_k(model, X_test, y_test, **kwargs) == pytest.approx(r)
    assert ndcg_at_k(model, X_test, y_test, **kwargs) == pytest.approx(n)
    _, _, n_graded = _brute_force_test(model, X_test, y_test, k, threshold, "rating")
    graded = ndcg_at_k(model, X_test, y_test, gain="rating", **kwargs)
    assert graded == pytest.approx(n_graded)


@pytest.mark.parametrize("k", [2, 5])
def test_metrics_on_all_items_match_a_brute_force_loop(split, model, k):
    X_train, _, X_test, y_test = split
    p, r, n = _brute_force_all(model, X_train, X_test, y_test, k, 4.0)
    kwargs = {"k": k, "candidates": "all"}
    assert precision_at_k(model, X_test, y_test, **kwargs) == pytest.approx(p)
    assert recall_at_k(model, X_test, y_test, **kwargs) == pytest.approx(r)
    assert ndcg_at_k(model, X_test, y_test, **kwargs) == pytest.approx(n)


@pytest.mark.parametrize("gain", ["binary", "rating"])
@pytest.mark.parametrize("k", [1, 3, 100])
def test_ndcg_matches_sklearn_ndcg_score_per_user(split, model, gain, k):
    X_test, y_test = split[2:]
    per_user = _by_user(X_test, y_test, model.predict(X_test))
    scores = []
    for items, ratings, preds in per_user.values():
        ratings = np.array(ratings)
        if len(items) < 2 or not (ratings >= 4.0).any():
            continue  # ndcg_score needs 2 documents; users without relevance skip
        gains = ratings if gain == "rating" else (ratings >= 4.0).astype(float)
        scores.append(ndcg_score([gains], [preds], k=k))
    keep = np.array([len(v[0]) >= 2 for v in per_user.values()])
    users = np.array(list(per_user))[keep]
    mask = np.isin(X_test[:, 0], users)
    ours = ndcg_at_k(model, X_test[mask], y_test[mask], k=k, gain=gain)
    assert ours == pytest.approx(np.mean(scores))


def test_a_perfect_ranking_scores_one_and_a_reversed_one_less():
    X = np.array([[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]])
    y = np.array([5.0, 1.0, 4.0, 2.0, 5.0, 1.0])

    class Oracle:
        def __init__(self, sign):
            self.sign = sign

        def predict(self, X):
            return self.sign * y[: len(X)]

    assert ndcg_at_k(Oracle(1), X, y, k=2) == 1.0
    assert precision_at_k(Oracle(1), X, y, k=1) == 1.0
    assert recall_at_k(Oracle(1), X, y, k=2) == 1.0
    assert recall_at_k(Oracle(1), X, y, k=1) == pytest.approx(0.75)  # 1/2, 1/1
    assert ndcg_at_k(Oracle(-1), X, y, k=2) < 0.5
    assert precision_at_k(Oracle(-1), X, y, k=1) == 0.0


def test_users_without_relevant_items_are_left_out(model):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    with_rel = precision_at_k(model, X[:2], [5.0, 1.0], k=2)
    both = precision_at_k(model, X, [5.0, 1.0, 2.0, 1.0], k=2)
    assert with_rel == both == 0.5
    assert np.isnan(recall_at_k(model, X, [1.0, 2.0, 3.0, 1.0]))


def test_input_forms_give_the_same_values(split, model):
    X_test, y_test = split[2:]
    ref = ndcg_at_k(model, X_test, y_test, k=5)
    triples = np.column_stack([X_test, y_test])
    df = pd.DataFrame(triples, columns=["user", "item", "rating"])
    df[["user", "item"]] = df[["user", "item"]].astype(int)
    assert ndcg_at_k(model, triples, k=5) == pytest.approx(ref)
    assert ndcg_at_k(model, df, k=5) == pytest.approx(ref)


def test_the_scorer_works_in_cross_val_score_and_grid_search(split):
    X, y = split[:2]
    scorer = make_ranking_scorer("ndcg", k=5, threshold=4.0)
    cv = KFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(
        MFRegressor(n_components=3, max_iter=5, n_jobs=1, random_state=0), X, y,
        scoring=scorer, cv=cv,
    )  # fmt: skip
    assert scores.shape == (3,) and np.all((scores > 0.5) & (scores <= 1.0))
    # The scorer is the metric on the held-out fold.
    train, test = next(cv.split(X))
    fold_model = MFRegressor(n_components=3, max_iter=5, n_jobs=1, random_state=0)
    fold_model.fit(X[train], y[train])
    assert scores[0] == pytest.approx(ndcg_at_k(fold_model, X[test], y[test], k=5))
    search = GridSearchCV(
        MFRegressor(max_iter=5, n_jobs=1, random_state=0),
        {"n_components": [2, 4]}, cv=cv,
        scoring={"p": make_ranking_scorer("precision", k=3),
                 "r": make_ranking_scorer("recall", k=3, candidates="all")},
        refit="p",
    ).fit(X, y)  # fmt: skip
    assert np.all(np.isfinite(search.cv_results_["mean_test_r"]))
    assert (
        pickle.loads(pickle.dumps(scorer))(fold_model, X[test], y[test]) == (scores[0])
    )


def test_invalid_arguments(model):
    X, y = np.array([[0, 0], [0, 1]]), np.array([5.0, 1.0])
    with pytest.raises(InvalidParameterError, match="'k' parameter"):
        ndcg_at_k(model, X, y, k=0)
    with pytest.raises(InvalidParameterError, match="'metric' parameter"):
        make_ranking_scorer("map")
    with pytest.raises(ValueError, match="non-negative"):
        ndcg_at_k(model, X, np.array([5.0, -1.0]), gain="rating")

    class PredictOnly:
        def predict(self, X):
            return np.zeros(len(X))

    with pytest.raises(TypeError, match="recommend"):
        recall_at_k(PredictOnly(), X, y, candidates="all")
    with pytest.raises(ValueError, match="sample weights"):
        make_ranking_scorer("ndcg")(model, X, y, sample_weight=[1, 1])


@pytest.mark.parametrize(
    "name",
    ["precision_at_k", "recall_at_k", "ndcg_at_k", "make_ranking_scorer", "get_scorer"],
)
def test_docstrings_are_valid_numpydoc(name):
    validate = pytest.importorskip("numpydoc.validate")
    ignored = {"GL01", "GL02", "SA01", "ES01", "EX01", "RT02", "PR09", "RT05"}
    result = validate.validate(f"skmf.metrics.{name}")
    errors = [(c, m) for c, m in result["errors"] if c not in ignored]
    assert not errors, errors


# ------------------------------------------------------------- skmf.metrics
def test_skmf_metrics_is_reachable_from_import_skmf():
    # A fresh interpreter: here, importing skmf.metrics above already set it.
    code = "import skmf; print(skmf.metrics.get_scorer.__name__, skmf.__all__)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("get_scorer ")
    assert "'metrics'" in out


# ------------------------------------------------------------- get_scorer
def _rmse(r, pred, w=None):
    return np.sqrt(np.average((np.asarray(r) - pred) ** 2, weights=w))


def _test_forms(X, y):
    """Held-out ratings in each form, with the ratings in the order of predict."""
    n_users, n_items = X[:, 0].max() + 1, X[:, 1].max() + 1
    csr = sp.csr_matrix((y, (X[:, 0], X[:, 1])), shape=(n_users, n_items))
    df = pd.DataFrame({"item": X[:, 1], "rating": y, "user": X[:, 0]})
    return {
        "pairs+y": (X, y, y),
        "triples": (np.column_stack([X, y]), None, y),
        "dataframe": (df, None, df["rating"].to_numpy()),
        "csr": (csr, None, csr.tocoo().data),
        "coo": (csr.tocoo(), None, csr.tocoo().data),
        "csc": (csr.tocsc(), None, csr.tocsc().tocoo().data),
    }


@pytest.mark.parametrize(
    "form", ["pairs+y", "triples", "dataframe", "csr", "coo", "csc"]
)
def test_get_scorer_scores_every_form_like_predict_and_numpy(split, model, form):
    X, y, r = _test_forms(*split[2:])[form]
    pred = model.predict(X)
    rmse = get_scorer("neg_root_mean_squared_error")
    assert rmse(model, X, y) == pytest.approx(-_rmse(r, pred), rel=1e-12)
    mae = get_scorer("neg_mean_absolute_error")(model, X, y)
    assert mae == pytest.approx(-np.mean(np.abs(r - pred)), rel=1e-12)
    r2 = 1 - np.sum((r - pred) ** 2) / np.sum((r - r.mean()) ** 2)
    assert get_scorer("r2")(model, X, y) == pytest.approx(r2, rel=1e-12)
    assert get_scorer("r2")(model, X, y) == pytest.approx(model.score(X, y))
    w = np.linspace(0.5, 2.0, len(r))
    weighted = rmse(model, X, y, sample_weight=w)
    assert weighted == pytest.approx(-_rmse(r, pred, w), rel=1e-12)


def test_get_scorer_drops_the_zeros_of_a_bsr_matrix_with_their_weights(model):
    A = np.array([[5.0, 0, 0, 3], [0, 4, 0, 0], [0, 0, 2, 0], [1, 0, 0, 5]])
    bsr = sp.bsr_matrix(A, blocksize=(2, 2))
    coo = bsr.tocoo()
    w = np.arange(1.0, coo.nnz + 1)
    nz = coo.data != 0
    pairs = np.column_stack([coo.row[nz], coo.col[nz]])
    pred = model.predict(pairs)
    got = get_scorer("neg_root_mean_squared_error")(model, bsr, sample_weight=w)
    assert got == pytest.approx(-_rmse(coo.data[nz], pred, w[nz]), rel=1e-12)


def test_get_scorer_in_cross_val_score_on_triples_is_the_fold_rmse(split):
    X, y = split[:2]
    triples = np.column_stack([X, y])
    cv = KFold(3, shuffle=True, random_state=0)
    params = {"n_components": 3, "max_iter": 5, "n_jobs": 1, "random_state": 0}
    rmse = get_scorer("neg_root_mean_squared_error")
    scores = cross_val_score(MFRegressor(**params), triples, scoring=rmse, cv=cv)
    assert np.all(np.isfinite(scores))
    for k, (train, test) in enumerate(cv.split(triples)):
        fold = MFRegressor(**params).fit(triples[train])
        expected = -_rmse(y[test], fold.predict(X[test]))
        assert scores[k] == pytest.approx(expected, rel=1e-10)


def test_get_scorer_in_a_grid_search_on_a_sparse_matrix_and_in_a_dict(split):
    X, y = split[:2]
    csr = sp.csr_matrix((y, (X[:, 0], X[:, 1])))
    cv = KFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(
        MFRegressor(max_iter=3, n_jobs=1, random_state=0),
        {"n_components": [2, 3]}, cv=cv,
        scoring={"rmse": get_scorer("neg_root_mean_squared_error"),
                 "mae": get_scorer("neg_mean_absolute_error"),
                 "ndcg": make_ranking_scorer("ndcg", k=3)},
        refit="rmse",
    ).fit(csr)  # fmt: skip
    for name in ("rmse", "mae", "ndcg"):
        assert np.all(np.isfinite(search.cv_results_[f"mean_test_{name}"])), name
    # The first split's RMSE, recomputed: rows of the held-out users.
    train, test = next(cv.split(csr))
    fold = MFRegressor(max_iter=3, n_jobs=1, random_state=0, n_components=2)
    fold.fit(csr[train])
    held = csr[test].tocoo()
    expected = -_rmse(held.data, fold.predict(np.column_stack([held.row, held.col])))
    got = search.cv_results_["split0_test_rmse"][0]
    assert got == pytest.approx(expected, rel=1e-10)
    # The single-scorer path too.
    single = GridSearchCV(
        MFRegressor(max_iter=3, n_jobs=1, random_state=0), {"n_components": [2]},
        cv=cv, scoring=get_scorer("neg_root_mean_squared_error"),
    ).fit(csr)  # fmt: skip
    assert single.cv_results_["split0_test_score"][0] == pytest.approx(got)


def test_get_scorer_names_callables_and_errors(split, model):
    X, y = split[2:]
    triples = np.column_stack([X, y])
    scorer = get_scorer("neg_mean_absolute_error")
    assert repr(scorer) == "get_scorer('neg_mean_absolute_error')"
    assert get_scorer(scorer) is scorer
    loaded = pickle.loads(pickle.dumps(scorer))
    assert loaded(model, triples) == scorer(model, triples)
    # A scorer of make_scorer is wrapped alike; other callables pass through.
    made = get_scorer(make_scorer(mean_absolute_error, greater_is_better=False))
    assert made(model, triples) == pytest.approx(scorer(model, triples))
    assert repr(made).startswith("get_scorer(make_scorer(mean_absolute_error")
    ranking = make_ranking_scorer("ndcg", k=3)
    assert get_scorer(ranking) is ranking
    with pytest.raises(ValueError, match="'rmse' is not a valid scoring value"):
        get_scorer("rmse")
    with pytest.raises(InvalidParameterError, match="'scoring' parameter"):
        get_scorer(3)
    with pytest.raises(ValueError, match="requires y to be passed"):
        scorer(model, X)  # pairs without ratings
