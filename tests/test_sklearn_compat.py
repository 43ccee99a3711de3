"""scikit-learn's estimator checks, and the meta-estimators users combine us with."""

import pickle
import pickletools

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted, validate_data

from skmf import MFRegressor

# Many fits here stop at max_iter on purpose (short runs).
pytestmark = pytest.mark.usefixtures("quiet_short_fits")

# The checks feed a free feature matrix of any width to a regressor. For skmf,
# X is (user, item) ids with y, or (user, item, rating) triples without y:
FREE_WIDTH = (
    "feeds a feature matrix with more than 3 columns; skmf's X has 2 columns "
    "(user, item) or 3 (user, item, rating)"
)
TRIPLES_AND_Y = (
    "feeds a 3-column X together with y; for skmf 3 columns are (user, item, "
    "rating) triples, so y must be None (a clear error)"
)
SPARSE_AND_Y = (
    "fits a sparse X together with y; a sparse X is skmf's rating matrix whose "
    "stored entries are the ratings, so y must be None"
)
EXPECTED_FAILED_CHECKS = {
    "check_fit_score_takes_y": TRIPLES_AND_Y,
    "check_dont_overwrite_parameters": TRIPLES_AND_Y,
    "check_sample_weights_list": TRIPLES_AND_Y,
    "check_pipeline_consistency": TRIPLES_AND_Y,
    "check_estimators_nan_inf": TRIPLES_AND_Y,
    "check_estimators_pickle": TRIPLES_AND_Y,
    "check_f_contiguous_array_estimator": TRIPLES_AND_Y,
    "check_supervised_y_2d": TRIPLES_AND_Y,
    "check_methods_sample_order_invariance": TRIPLES_AND_Y,
    "check_methods_subset_invariance": TRIPLES_AND_Y,
    "check_dict_unchanged": TRIPLES_AND_Y,
    "check_fit2d_predict1d": TRIPLES_AND_Y,
    "check_n_features_in_after_fitting": (
        "expects predict to reject a different number of columns; skmf's predict "
        "takes (user, item) pairs or triples whatever fit was given"
    ),
    "check_positive_only_tag_during_fit": FREE_WIDTH,
    "check_estimators_dtypes": FREE_WIDTH,
    "check_all_zero_sample_weights_error": FREE_WIDTH,
    "check_sample_weight_equivalence_on_dense_data": FREE_WIDTH,
    "check_sample_weight_equivalence_on_sparse_data": SPARSE_AND_Y,
    "check_estimator_sparse_tag": SPARSE_AND_Y,
    "check_dtype_object": FREE_WIDTH,
    "check_regressors_train": FREE_WIDTH,
    "check_regressor_data_not_an_array": FREE_WIDTH,
    "check_regressors_no_decision_function": FREE_WIDTH,
    "check_regressors_int": FREE_WIDTH,
    "check_non_transformer_estimators_n_iter": FREE_WIDTH,
    "check_fit2d_1sample": FREE_WIDTH,
}


@parametrize_with_checks(
    [MFRegressor(max_iter=5)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ------------------------------------------------ the checks, through ids
class IdPairRegressor(RegressorMixin, BaseEstimator):
    """MFRegressor behind a map from free-width feature rows to (user, item) ids.

    scikit-learn's checks feed feature matrices of any width; this test-only
    adapter reads each row as one rating of a (user, item) pair: the user is
    the mean of the first half of the features, the item the mean of the
    second half (the only feature, for one column), each multiplied by
    ``scale`` and floored to an integer. The map is fixed (it learns nothing
    from the data), so a row always names the same pair, whatever the other
    rows; on the checks' standard normal features it gives a grid of about
    ten users by ten items, on which MFRegressor learns a low-rank table.
    X and y are validated as scikit-learn validates them; everything else
    (the ids, the ratings and the weights in MFRegressor's own input form,
    fitting, predicting, pickling, cloning) is MFRegressor's.
    """

    def __init__(self, *, scale=2.0, n_components=2, max_iter=5, random_state=None):
        self.scale = scale
        self.n_components = n_components
        self.max_iter = max_iter
        self.random_state = random_state

    def _pairs(self, X):
        half = max(1, X.shape[1] // 2)
        second = X[:, half:] if X.shape[1] > 1 else X
        means = np.column_stack([X[:, :half].mean(axis=1), second.mean(axis=1)])
        ids = np.floor(np.clip(means * self.scale, -1e9, 1e9)).astype(np.int64)
        return pd.DataFrame({"user": ids[:, 0], "item": ids[:, 1]})

    def fit(self, X, y, sample_weight=None):
        X, y = validate_data(self, X, y, y_numeric=True)
        self.model_ = MFRegressor(
            n_components=self.n_components,
            max_iter=self.max_iter,
            random_state=self.random_state,
            # The checks compare with float64 tolerances (rtol=1e-7); in
            # float32 a weighted fit and a fit on repeated rows differ by an ulp.
            dtype="float64",
        ).fit(self._pairs(X), y, sample_weight=sample_weight)
        self.n_iter_ = self.model_.n_iter_
        return self

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.model_.predict(self._pairs(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True  # a 10 x 10 grid of ids, rank 2
        return tags


# None: through the adapter, MFRegressor passes every check (those that fail
# on the plain estimator above only for the width and meaning of X included).
ADAPTER_EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    [IdPairRegressor()],
    expected_failed_checks=lambda est: ADAPTER_EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks_through_id_pairs(estimator, check):
    check(estimator)


def test_the_adapter_reads_a_grid_of_users_and_items():
    # On the checks' kind of data (standard normal features) the rows name a
    # grid of pairs, and a rating table of rank 1 on it is learned (regularized).
    X = np.random.RandomState(0).normal(size=(300, 10))
    adapter = IdPairRegressor(random_state=0)
    pairs = adapter._pairs(X)
    y = 3.0 + 0.5 * pairs["user"] * pairs["item"]
    adapter.set_params(max_iter=30).fit(X, y)
    assert len(adapter.model_.users_) >= 6 and len(adapter.model_.items_) >= 6
    assert adapter.score(X, y) > 0.6  # the mean rating scores 0
    direct = MFRegressor(n_components=2, max_iter=30, random_state=0,
                         dtype="float64").fit(pairs, y)  # fmt: skip
    np.testing.assert_array_equal(adapter.predict(X), direct.predict(pairs))


@pytest.fixture(scope="module")
def data(small_ratings):
    return small_ratings.X, small_ratings.y


def test_not_fitted_error():
    with pytest.raises(NotFittedError):
        MFRegressor().predict([[0, 0]])


def test_clone_and_params_roundtrip():
    model = MFRegressor(n_components=7, alpha=0.3, solver="sgd", device="cpu")
    twin = clone(model)
    assert twin.get_params() == model.get_params()
    twin.set_params(alpha=2.0)
    assert twin.alpha == 2.0 and model.alpha == 0.3


def test_same_random_state_same_model(data):
    X, y = data
    for solver in ("als", "sgd", "adam", "gibbs"):
        a = MFRegressor(solver=solver, max_iter=3, random_state=5).fit(X, y)
        b = MFRegressor(solver=solver, max_iter=3, random_state=5).fit(X, y)
        np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
        np.testing.assert_array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search(data, n_jobs):
    X, y = data
    search = GridSearchCV(
        MFRegressor(max_iter=5, random_state=0),
        {"n_components": [2, 5], "alpha": [0.5, 5.0]},
        cv=KFold(3, shuffle=True, random_state=0),
        scoring="neg_root_mean_squared_error",
        n_jobs=n_jobs,
    ).fit(X, y)
    assert set(search.best_params_) == {"n_components", "alpha"}
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_estimator_.predict(X[:3]).shape == (3,)


def test_cross_val_score_beats_the_mean(data):
    X, y = data
    cv = KFold(4, shuffle=True, random_state=0)
    scores = cross_val_score(MFRegressor(random_state=0), X, y, cv=cv)
    assert np.all(scores > 0.3)  # R^2 of the mean predictor is ~0


def test_pipeline_with_dataframe_and_string_ids(data):
    X, y = data
    df = pd.DataFrame({
        "timestamp": np.arange(len(y)),
        "user": [f"user-{u}" for u in X[:, 0]],
        "item": [f"item-{i}" for i in X[:, 1]],
    })  # fmt: skip
    select = ColumnTransformer([("ids", "passthrough", ["user", "item"])])
    pipe = make_pipeline(select, MFRegressor(random_state=0)).fit(df, y)
    direct = MFRegressor(random_state=0).fit(df[["user", "item"]], y)
    np.testing.assert_allclose(pipe.predict(df), direct.predict(df[["user", "item"]]))


def test_pickle_holds_plain_numpy_only(data):
    X, y = data
    model = MFRegressor(max_iter=3, random_state=0).fit(X, y)
    blob = pickle.dumps(model)
    opcodes = " ".join(str(arg) for _, arg, _ in pickletools.genops(blob))
    assert "torch" not in opcodes  # no tensor, no torch object in the state
    loaded = pickle.loads(blob)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        assert type(getattr(loaded, name)) is np.ndarray
