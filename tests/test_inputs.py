"""Every input form, their equivalence, and clear errors on bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from skmf import MFRegressor
from skmf._data import as_id_array, check_feature_names, parse_ratings

# Many fits here stop at max_iter on purpose (short runs).
pytestmark = [
    pytest.mark.usefixtures("quiet_short_fits"),
    # Several tests mix DataFrames and arrays between fit and predict on
    # purpose; the warning itself is tested where it is the subject.
    pytest.mark.filterwarnings("ignore:X (does not have valid|has) feature names"),
]

PARAMS = {"n_components": 4, "max_iter": 5, "random_state": 0, "dtype": "float64"}


@pytest.fixture(scope="module")
def ratings():
    rng = np.random.RandomState(0)
    n_users, n_items = 30, 20
    keys = rng.choice(n_users * n_items, size=250, replace=False)
    keys.sort()  # row-major, as a CSR matrix stores them
    u, i = keys // n_items, keys % n_items
    r = rng.randint(1, 6, size=len(keys)).astype(float)
    return u, i, r, (n_users, n_items)


def _fit_predict(X, y=None, query=None):
    model = MFRegressor(**PARAMS).fit(X, y)
    return model, model.predict(query)


def test_all_forms_give_the_same_model(ratings):
    u, i, r, shape = ratings
    pairs = np.column_stack([u, i])
    query = np.column_stack([[0, 5, 29, 3], [0, 7, 19, 100]])  # item 100 unknown
    ref_model, ref = _fit_predict(pairs, r, query)
    forms = {
        "triples": (np.column_stack([u, i, r]), None),
        "dataframe": (pd.DataFrame({"user": u, "item": i, "rating": r}), None),
        "dataframe+series": (pd.DataFrame({"u": u, "i": i}), pd.Series(r)),
        "list of tuples": (list(zip(u.tolist(), i.tolist(), r.tolist())), None),
        "csr": (sp.csr_matrix((r, (u, i)), shape=shape), None),
        "csc": (sp.csc_matrix((r, (u, i)), shape=shape), None),
        "coo": (sp.coo_matrix((r, (u, i)), shape=shape), None),
        "csr_array": (sp.csr_array((r, (u, i)), shape=shape), None),
    }
    for name, (X, y) in forms.items():
        model, pred = _fit_predict(X, y, query)
        np.testing.assert_allclose(pred, ref, rtol=1e-7, err_msg=name)
        np.testing.assert_array_equal(model.users_, ref_model.users_)


def test_string_and_large_integer_ids_map_like_dense_ints(ratings):
    u, i, r, _ = ratings
    _, ref = _fit_predict(np.column_stack([u, i]), r, np.column_stack([u, i]))
    big = np.int64(2**40)
    X_big = np.column_stack([u + big, i + 3 * big])
    model, pred = _fit_predict(X_big, r, X_big)
    np.testing.assert_allclose(pred, ref, rtol=1e-7)
    assert model.users_.dtype == np.int64 and model.users_.min() == big
    # Strings: "u07" sorts like 7 once zero-padded.
    df = pd.DataFrame(
        {"user": [f"u{x:02d}" for x in u], "item": [f"i{x:02d}" for x in i]}
    )
    model, pred = _fit_predict(df, r, df)
    np.testing.assert_allclose(pred, ref, rtol=1e-7)
    assert model.users_[0] == "u00"
    # uint64 ids above 2**63.
    X_u = np.column_stack([u.astype(np.uint64) + np.uint64(2**63), i.astype(np.uint64)])
    _, pred = _fit_predict(X_u, r, X_u)
    np.testing.assert_allclose(pred, ref, rtol=1e-7)


def test_mixed_type_ids_work():
    X = [(1, "a"), ("1", "b"), (2.5, "a"), (1, "b")]
    model = MFRegressor(n_components=2, max_iter=3, random_state=0)
    model.fit(X, [5.0, 3.0, 4.0, 2.0])
    assert len(model.users_) == 3  # 1, "1" and 2.5 are different users
    assert np.isfinite(model.predict(X)).all()


def test_predict_forms(ratings):
    u, i, r, shape = ratings
    model = MFRegressor(**PARAMS).fit(np.column_stack([u, i]), r)
    pairs = np.column_stack([u, i])
    ref = model.predict(pairs)
    np.testing.assert_array_equal(model.predict(np.column_stack([u, i, r * 0])), ref)
    np.testing.assert_array_equal(model.predict(pd.DataFrame(pairs)), ref)
    # Sparse: predictions at the stored entries, in the order of X.tocoo().
    csc = sp.csc_matrix((r, (u, i)), shape=shape)
    coo = csc.tocoo()
    np.testing.assert_allclose(
        model.predict(csc), model.predict(np.column_stack([coo.row, coo.col]))
    )


def test_score_forms_agree(ratings):
    u, i, r, shape = ratings
    model = MFRegressor(**PARAMS).fit(np.column_stack([u, i]), r)
    ref = model.score(np.column_stack([u, i]), r)
    assert model.score(np.column_stack([u, i, r])) == pytest.approx(ref)
    assert model.score(sp.csr_matrix((r, (u, i)), shape=shape)) == pytest.approx(ref)
    pred = model.predict(np.column_stack([u, i]))
    r2 = 1 - np.sum((r - pred) ** 2) / np.sum((r - r.mean()) ** 2)
    assert ref == pytest.approx(r2)


def test_unknown_users_and_items_get_mu_plus_known_bias(ratings):
    u, i, r, _ = ratings
    model = MFRegressor(**PARAMS).fit(np.column_stack([u, i]), r)
    pred = model.predict([[999, 0], [0, 999], [999, 999]])
    mu = model.intercept_
    assert pred[0] == pytest.approx(mu + model.item_bias_[0])
    assert pred[1] == pytest.approx(mu + model.user_bias_[0])
    assert pred[2] == pytest.approx(mu)
    # Ids of another type are unknown, not an error.
    assert np.isfinite(model.predict([["x", "y"]])).all()


def test_inputs_are_not_modified(ratings):
    u, i, r, shape = ratings
    X = np.column_stack([u, i, r])
    df = pd.DataFrame({"user": u, "item": i, "rating": r})
    csr = sp.csr_matrix((r, (u, i)), shape=shape)
    w = np.linspace(0, 2, len(r))
    copies = X.copy(), df.copy(), csr.copy(), w.copy()
    for data in (X, df, csr):
        model = MFRegressor(**PARAMS).fit(data, sample_weight=w)
        model.predict(data)
        model.score(data)
    np.testing.assert_array_equal(X, copies[0])
    pd.testing.assert_frame_equal(df, copies[1])
    assert (csr != copies[2]).nnz == 0 and csr.has_sorted_indices == copies[
        2
    ].has_sorted_indices
    np.testing.assert_array_equal(w, copies[3])


GOOD = np.array([[0, 0, 4.0], [0, 1, 3.0], [1, 0, 5.0]])


@pytest.mark.parametrize(
    "X, y, kwargs, error, match",
    [
        (np.array([[0, 0, np.nan]]), None, {}, ValueError, "NaN"),
        (np.array([[0, np.inf, 4.0]]), None, {}, ValueError, "infinity"),
        (np.array([[np.nan, 1]]), [4.0], {}, ValueError, "NaN"),
        (
            pd.DataFrame({"u": ["a", None], "i": [1, 2]}),
            [1.0, 2.0],
            {},
            ValueError,
            "None",
        ),
        (np.zeros((3, 4)), None, {}, ValueError, "2 columns .* or 3 columns"),
        (np.zeros((3, 1)), [1, 2, 3], {}, ValueError, "got 1 feature"),
        (np.zeros((0, 3)), None, {}, ValueError, "0 sample"),
        (np.arange(3), [1, 2, 3], {}, ValueError, "2-D"),
        (np.array([[0, 0], [0, 1]]), [1.0], {}, ValueError, "inconsistent numbers"),
        (np.array([[0, 0], [0, 1]]), None, {}, ValueError, "requires y"),
        (np.array([[0, 0], [0, 1]]), ["good", "bad"], {}, TypeError, "numeric"),
        (np.array([[0, 0], [0, 1]]), [np.nan, 1.0], {}, ValueError, "NaN"),
        (GOOD, [1.0, 2.0, 3.0], {}, ValueError, "triples and y"),
        (
            sp.csr_matrix(np.eye(3)),
            [1.0, 2.0, 3.0],
            {},
            ValueError,
            "sparse rating matrix and y",
        ),
        (GOOD, None, {"sample_weight": [1.0, -1.0, 1.0]}, ValueError, "Negative"),
        (GOOD, None, {"sample_weight": [0.0, 0.0, 0.0]}, ValueError, "zero"),
        (np.array([[0, 0, 1j]]), None, {}, ValueError, "Complex"),
    ],
)
def test_bad_input_raises_a_clear_error(X, y, kwargs, error, match):
    with pytest.raises(error, match=match):
        MFRegressor().fit(X, y, **kwargs)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_components": 0}, "'n_components' parameter"),
        ({"alpha": -1.0}, "'alpha' parameter"),
        ({"solver": "lbfgs"}, "'solver' parameter"),
        ({"learning_rate": 0.0}, "'learning_rate' parameter"),
        ({"alpha_scaling": "log"}, "'alpha_scaling' parameter"),
        ({"device": "tpu"}, "'device' parameter"),
        ({"device": 3.5}, "'device' parameter"),
        ({"dtype": "int8"}, "'dtype' parameter"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
    ],
)
def test_invalid_parameters_raise_before_any_work(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MFRegressor(**params).fit(GOOD)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_names_the_device_and_what_exists():
    with pytest.raises(ValueError, match=r"device='cuda'.*CUDA is not available.*cpu"):
        MFRegressor(device="cuda").fit(GOOD)
    with pytest.raises(ValueError, match=r"cuda:1"):
        MFRegressor(device="cuda:1").fit(GOOD)


def test_predict_validates_input_too():
    model = MFRegressor(n_components=2, max_iter=2).fit(GOOD)
    with pytest.raises(ValueError, match="NaN"):
        model.predict([[0, np.nan]])
    with pytest.raises(ValueError, match="columns"):
        model.predict(np.zeros((2, 5)))


@pytest.mark.parametrize(
    "ids",
    [
        np.array([5, 3, 5, 9, 3, 4]),
        np.array([-100, 27, 100, -100, 0], dtype=np.int8),  # offset overflows int8
        np.array([7, 1, 7, 2], dtype=np.uint16),
        np.array([2**63 + 5, 2**63 + 1, 2**63 + 5], dtype=np.uint64),
        np.array([3 * 2**40, 1, 3 * 2**40, 2**33]),  # too wide for a lookup table
        np.array(["b", "a", "b"], dtype=object),
    ],
)
def test_factorize_ids_matches_pandas_sorted_factorize(ids):
    from skmf._data import factorize_ids

    codes, uniques = factorize_ids(ids)
    ref_codes, ref_uniques = pd.factorize(ids, sort=True)
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(uniques, ref_uniques)
    assert uniques.dtype == ids.dtype


# ------------------------------------------- edge cases of sparse input and values
def test_a_sparse_matrix_without_entries_is_a_clear_error():
    for caller in ("fit", "predict"):
        model = MFRegressor(max_iter=1)
        if caller == "predict":
            model.fit([[0, 0], [1, 1]], [1.0, 2.0])
        with pytest.raises(ValueError, match="no stored entries"):
            getattr(model, caller)(sp.csr_matrix((3, 3)))


def test_bsr_and_dia_matrices_give_the_model_of_their_nonzeros():
    A = sp.csr_matrix(
        [[5.0, 0, 0, 3], [0, 4, 0, 0], [0, 0, 2, 0], [1, 0, 0, 5], [0, 2, 0, 4]]
    )
    ref = MFRegressor(n_components=2, random_state=0, max_iter=5).fit(A)
    for other in (A.tobsr(blocksize=(1, 2)), sp.dia_matrix(A)):
        m = MFRegressor(n_components=2, random_state=0, max_iter=5).fit(other)
        np.testing.assert_allclose(m.user_factors_, ref.user_factors_, rtol=1e-5)
        assert m.intercept_ == pytest.approx(ref.intercept_)


@pytest.mark.parametrize(
    "ids",
    [
        pd.to_datetime(["2020-01-01", None, "2020-01-02"]),
        np.array([1, "NaT", 3], dtype="timedelta64[D]"),
    ],
)
def test_missing_dates_in_ids_are_a_clear_error(ids):
    X = pd.DataFrame({"user": ids, "item": [1, 2, 1]})
    with pytest.raises(ValueError, match="NaT"):
        MFRegressor(max_iter=1).fit(X, [5.0, 1.0, 4.0])


def test_predict_ignores_the_rating_column_even_when_missing():
    model = MFRegressor(max_iter=2, random_state=0).fit([[0, 0], [1, 1]], [1.0, 2.0])
    triples = pd.DataFrame({"user": [0, 1], "item": [1, 0], "rating": [np.nan, 3.0]})
    np.testing.assert_array_equal(
        model.predict(triples), model.predict([[0, 1], [1, 0]])
    )


def test_complex_y_and_text_weights_name_the_argument():
    X = [[0, 0], [1, 1], [2, 0]]
    with pytest.raises(ValueError, match="Complex data not supported in y"):
        MFRegressor().fit(X, np.array([5, 3, 4], dtype=complex))
    with pytest.raises(TypeError, match="sample_weight must hold"):
        MFRegressor().fit(X, [5.0, 3.0, 4.0], sample_weight=["a", "b", "c"])
    # An object array of numbers is still accepted.
    MFRegressor(max_iter=1).fit(
        X, [5.0, 3.0, 4.0], sample_weight=np.array([1, 2, 1], dtype=object)
    )


@pytest.mark.parametrize(
    "y_scale, w",
    [(1e39, None), (1.0, np.array([1e39, 1.0, 1.0])), (1.0, np.array([1e-46] * 3))],
)
def test_values_out_of_the_float32_range_are_a_clear_error(y_scale, w):
    X, y = [[0, 0], [1, 1], [2, 0]], np.array([5.0, 3.0, 4.0]) * y_scale
    with pytest.raises(ValueError, match="float32.*dtype='float64'"):
        MFRegressor().fit(X, y, sample_weight=w)
    # float64 handles the tiny weights (the huge values are the user's call).
    if y_scale == 1.0 and w.max() < 1:
        MFRegressor(dtype="float64", max_iter=2).fit(X, y, sample_weight=w)


# ------------------------------------- ids that fit accepted but predict refused
def _fitted(X, y, **params):
    return MFRegressor(n_components=2, max_iter=2, random_state=0, **params).fit(X, y)


@pytest.mark.parametrize(
    "X",
    [
        np.array([[1, "a"], [np.inf, "b"], [2, "a"]], dtype=object),
        pd.DataFrame(
            {"u": np.array([1.0, -np.inf, 2.0], dtype=object), "i": [0, 1, 0]}
        ),
        pd.DataFrame({"u": ["a", "b", "c"], "i": [0, "x", np.float32("inf")]}),
        [(1, "a"), ("b", float("inf")), (2, "a")],
    ],
)
def test_infinite_ids_are_rejected_by_fit_and_predict_alike(X):
    with pytest.raises(ValueError, match="infinity"):
        MFRegressor(max_iter=1).fit(X, [1.0, 2.0, 3.0])
    model = _fitted([[1, "a"], [2, "b"]], [1.0, 2.0])
    with pytest.raises(ValueError, match="infinity"):
        model.predict(X)
    with pytest.raises(ValueError, match="infinity"):
        model.score(X, [1.0, 2.0, 3.0])


def test_float16_ids_fit_and_predict_like_their_float64_values():
    X64 = np.array([[0.5, 0], [1, 1], [2, 0], [0.5, 2]])
    y = [1.0, 2.0, 3.0, 4.0]
    X16 = X64.astype(np.float16)
    ref = _fitted(X64, y)
    for X in (X16, pd.DataFrame({"u": X16[:, 0], "i": X16[:, 1]})):
        model = _fitted(X, y)
        assert model.users_.dtype == np.float32  # pandas cannot index float16
        np.testing.assert_array_equal(model.users_, ref.users_)
        np.testing.assert_allclose(model.predict(X16), ref.predict(X64), rtol=1e-6)
        np.testing.assert_allclose(model.predict(X64), ref.predict(X64), rtol=1e-6)
    # A float64 model predicts float16 ids as their float64 values.
    np.testing.assert_array_equal(ref.predict(X16), ref.predict(X64))
    assert ref.predict(np.array([[7, 0]], dtype=np.float16))[0] == pytest.approx(
        ref.intercept_ + ref.item_bias_[0]
    )


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_np_matrix_is_read_as_a_2d_array():
    X = np.array([[0, 0], [1, 1], [2, 0], [0, 2]])
    y = np.array([1.0, 2.0, 3.0, 4.0])
    ref = _fitted(X, y)
    model = _fitted(np.asmatrix(X), y)
    np.testing.assert_array_equal(model.predict(np.asmatrix(X)), ref.predict(X))
    np.testing.assert_array_equal(ref.predict(np.asmatrix(X)), ref.predict(X))
    triples = _fitted(np.asmatrix(np.column_stack([X, y])), None)
    np.testing.assert_array_equal(triples.predict(X), ref.predict(X))


@pytest.mark.parametrize(
    "X, y",
    [
        (np.array([[0, 0, "4.0"], [1, 1, "3"]], dtype=object), None),
        ([(0, 0, "4.0"), (1, 1, "3")], None),
        ([("u", "i", "4.0"), ("v", "j", 3.0)], None),
        (pd.DataFrame({"user": [0, 1], "item": [0, 1], "rating": ["4.0", "3"]}), None),
        (np.array([["0", "0", "4.0"], ["1", "1", "3"]]), None),
        ([[0, 0], [1, 1]], ["4.0", "3"]),
        ([[0, 0], [1, 1]], np.array(["4.0", 3.0], dtype=object)),
        ([[0, 0], [1, 1]], pd.Series(["4.0", "3"])),
    ],
)
def test_ratings_written_as_text_are_a_type_error_in_every_container(X, y):
    with pytest.raises(TypeError, match="must be numeric, but it holds text.*'4.0'"):
        MFRegressor(max_iter=1).fit(X, y)


# --------------------------------------- BSR: weights follow X.tocoo() entries
def test_bsr_weights_follow_the_entries_of_tocoo_zeros_dropped_with_theirs():
    A = np.array([[5.0, 0, 0, 3], [0, 4, 0, 0], [0, 0, 2, 0], [1, 0, 0, 5]])
    bsr = sp.bsr_matrix(A, blocksize=(2, 2))
    coo = bsr.tocoo()
    assert coo.nnz > np.count_nonzero(A)  # the blocks store zeros
    w = np.arange(1.0, coo.nnz + 1)
    nonzero = coo.data != 0
    nz = sp.coo_matrix((coo.data[nonzero], (coo.row[nonzero], coo.col[nonzero])))
    data = parse_ratings(bsr, None, w, need_ratings=True, caller="fit")
    np.testing.assert_array_equal(data.weights, w[nonzero])
    np.testing.assert_array_equal(data.ratings, coo.data[nonzero])
    params = {"n_components": 2, "max_iter": 3, "random_state": 0}
    ref = MFRegressor(**params).fit(nz, sample_weight=w[nonzero])
    model = MFRegressor(**params).fit(bsr, sample_weight=w)
    np.testing.assert_allclose(model.user_factors_, ref.user_factors_, rtol=1e-6)
    np.testing.assert_allclose(model.predict(bsr), ref.predict(nz), rtol=1e-6)
    # Weights of the wrong length still name the expected one.
    with pytest.raises(ValueError, match=rf"\({coo.nnz},\)"):
        MFRegressor().fit(bsr, sample_weight=w[nonzero])


def test_dia_weights_follow_the_entries_of_tocoo():
    dia = sp.dia_matrix((np.array([[1.0, 0, 3], [0, 2, 0]]), [0, 1]), shape=(3, 3))
    coo = dia.tocoo()
    w = np.arange(1.0, coo.nnz + 1)
    data = parse_ratings(dia, None, w, need_ratings=True, caller="fit")
    np.testing.assert_array_equal(data.ratings, coo.data[coo.data != 0])
    np.testing.assert_array_equal(data.weights, w[coo.data != 0])


# ------------------------------------------------ DataFrame columns by name
def _frame():
    return pd.DataFrame(
        {"user": ["a", "b", "a", "c"], "item": [10, 20, 20, 30],
         "rating": [5.0, 3.0, 4.0, 1.0]}
    )  # fmt: skip


def _parse(X, y=None, **kwargs):
    kwargs.setdefault("need_ratings", y is not None or X.shape[1] == 3)
    return parse_ratings(X, y, None, caller="fit", **kwargs)


@pytest.mark.parametrize("order", [["user", "item"], ["item", "user"]])
def test_named_columns_are_taken_by_name(order):
    df = _frame()
    data = _parse(df[order], df["rating"])
    np.testing.assert_array_equal(data.users, df["user"].to_numpy())
    np.testing.assert_array_equal(data.items, df["item"].to_numpy())
    assert data.feature_names.dtype == object
    np.testing.assert_array_equal(data.feature_names, ["user", "item"])


@pytest.mark.parametrize(
    "order",
    [
        ["user", "item", "rating"],
        ["rating", "item", "user"],
        ["item", "rating", "user"],
    ],
)
def test_named_triples_are_taken_by_name(order):
    df = _frame()
    data = _parse(df[order])
    np.testing.assert_array_equal(data.users, df["user"].to_numpy())
    np.testing.assert_array_equal(data.ratings, df["rating"].to_numpy())
    np.testing.assert_array_equal(data.feature_names, ["user", "item", "rating"])
    # predict reads the ids by name and ignores the rating column.
    pred = _parse(df[order], need_ratings=False)
    np.testing.assert_array_equal(pred.items, df["item"].to_numpy())


def test_columns_names_other_column_names():
    df = _frame().rename(columns={"user": "userId", "item": "movieId"})
    data = _parse(
        df[["movieId", "rating", "userId"]], columns=("userId", "movieId", "rating")
    )
    np.testing.assert_array_equal(data.users, df["userId"].to_numpy())
    np.testing.assert_array_equal(data.ratings, df["rating"].to_numpy())
    np.testing.assert_array_equal(data.feature_names, ["userId", "movieId", "rating"])
    with pytest.raises(ValueError, match=r"columns must name 2 or 3 distinct"):
        _parse(df, columns=("u", "u"))
    with pytest.raises(TypeError, match=r"columns must be a tuple"):
        _parse(df, columns="user")


def test_unnamed_columns_stay_positional():
    df = _frame().set_axis(["u", "i", "r"], axis=1)
    data = _parse(df[["i", "u"]], df["r"])
    np.testing.assert_array_equal(data.users, df["i"].to_numpy())  # by position
    np.testing.assert_array_equal(data.feature_names, ["i", "u"])
    # Integer column names: positional, without feature names.
    data = _parse(pd.DataFrame(_frame().to_numpy()).iloc[:, :2], df["r"])
    assert data.feature_names is None


def test_other_columns_next_to_named_ones_are_an_error_listing_them():
    df = _frame().assign(timestamp=0)
    with pytest.raises(ValueError, match=r"also \['timestamp'\].*X\[\['user', 'item'"):
        _parse(df)
    df = _frame().rename(columns={"rating": "score"})
    with pytest.raises(
        ValueError, match=r"If 'score' holds the ratings.*\{'score': 'rating'\}"
    ):
        _parse(df, need_ratings=True)


@pytest.mark.parametrize("present, missing", [("user", "item"), ("item", "user")])
def test_a_frame_with_only_some_names_is_an_error_naming_the_missing(present, missing):
    df = _frame().rename(columns={missing: "other"})
    with pytest.raises(
        ValueError, match=rf"named '{present}' but none named '{missing}'"
    ):
        _parse(df)


def test_a_rating_column_where_positional_ids_belong_is_an_error():
    df = _frame().set_axis(["u", "i", "r"], axis=1)
    ok = _parse(df.rename(columns={"r": "rating"}))  # rating last: positional
    np.testing.assert_array_equal(ok.ratings, df["r"].to_numpy())
    with pytest.raises(ValueError, match=r"'rating' is at position 0"):
        _parse(df.rename(columns={"u": "rating"}), df["r"], need_ratings=True)


def test_a_duplicated_named_column_is_an_error():
    df = pd.DataFrame([[1, 2, 3]], columns=["user", "item", "item"])
    with pytest.raises(ValueError, match="more than one column named 'item'"):
        _parse(df)


# --------------------------------------------------- check_feature_names
def _names(*names):
    return np.asarray(names, dtype=object)


def test_check_feature_names_same_names_pass_silently():
    df = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_feature_names(
            _names("user", "item"), _parse(df[["item", "user"]], [1.0] * 4), "f"
        )
        check_feature_names(None, _parse(np.zeros((2, 2)), [1.0, 2.0]), "f")
        # The rating column is the target: its name is not compared.
        fitted = _names("u", "i", "r")
        check_feature_names(fitted, _names("u", "i"), "f")
        check_feature_names(fitted, _names("u", "i", "stars"), "f")


@pytest.mark.parametrize(
    "names, detail",
    [
        (("i", "u"), "must be in the same order"),
        (("user", "item"), "other names than in fit"),
    ],
)
def test_check_feature_names_other_names_are_an_error_naming_both(names, detail):
    data = _parse(pd.DataFrame(np.zeros((2, 2)), columns=list(names)), [1.0, 2.0])
    with pytest.raises(ValueError, match="should match those that were passed") as e:
        check_feature_names(_names("u", "i"), data, "MFRegressor.predict")
    message = str(e.value)
    assert detail in message
    assert f"{list(names)} as (user, item)" in message and "['u', 'i']" in message
    assert "MFRegressor.predict" in message


def test_check_feature_names_warns_when_only_one_side_has_names():
    no_names = _parse(np.zeros((2, 2)), [1.0, 2.0])
    match = "X does not have valid feature names, but MFRegressor was fitted with"
    with pytest.warns(UserWarning, match=match):
        check_feature_names(_names("user", "item"), no_names, "MFRegressor.predict")
    named = _parse(_frame()[["user", "item"]], [1.0] * 4)
    match = r"X has feature names \['user', 'item'\], but MFRegressor was fitted "
    with pytest.warns(UserWarning, match=match + "without"):
        check_feature_names(None, named, "MFRegressor.predict")


# --- the estimator's side: fit, predict and score read and check the names


def test_estimator_fit_reads_named_columns_in_any_order():
    df = _frame()
    a = _fitted(df[["user", "item"]], df["rating"])
    b = _fitted(df[["item", "user"]], df["rating"])
    np.testing.assert_array_equal(a.users_, b.users_)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(
        a.predict(df[["item", "user"]]), b.predict(df[["user", "item"]])
    )
    c = _fitted(df[["rating", "item", "user"]], None)
    np.testing.assert_array_equal(c.user_factors_, a.user_factors_)


def test_estimator_sets_feature_names_in_from_the_columns_used():
    df = _frame()
    for X, y in ((df[["item", "user"]], df["rating"]), (df, None)):
        model = _fitted(X, y)
        assert model.feature_names_in_.dtype == object
        np.testing.assert_array_equal(model.feature_names_in_[:2], ["user", "item"])
    assert not hasattr(_fitted(df[["user", "item"]].to_numpy(), df["rating"]),
                       "feature_names_in_")  # fmt: skip


def test_estimator_rejects_renamed_columns_at_predict_and_score():
    df = _frame().set_axis(["u", "i", "r"], axis=1)
    model = _fitted(df[["u", "i"]], df["r"])
    swapped = df[["i", "u"]]  # read by position: the ids would be swapped
    with pytest.raises(ValueError, match="same order"):
        model.predict(swapped)
    with pytest.raises(ValueError, match="same order"):
        model.score(swapped, df["r"])


def test_estimator_warns_when_only_fit_or_only_predict_has_names():
    df = _frame()
    model = _fitted(df[["user", "item"]], df["rating"])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model.predict(np.array([["a", 10]], dtype=object))
    model = _fitted(np.array([["a", 10], ["b", 20]], dtype=object), [1.0, 2.0])
    with pytest.warns(UserWarning, match="fitted without feature names"):
        model.predict(df[["user", "item"]])


# ------------------------------------------------ ids for recommend
@pytest.mark.parametrize(
    "ids, expected, single",
    [
        ("ab", ["ab"], True),
        (b"ab", [b"ab"], True),
        (np.str_("ab"), ["ab"], True),
        (1, [1], True),
        (np.int32(1), [1], True),
        (2.5, [2.5], True),
        ((1, 2), [(1, 2)], True),
        (np.array(7), [7], True),
        ([1, 2, 2], [1, 2, 2], False),
        (["ab", "c"], ["ab", "c"], False),
        ([(1, 2), (3, 4)], [(1, 2), (3, 4)], False),
        (np.array([3, 1]), [3, 1], False),
        (pd.Series(["x", "y"]), ["x", "y"], False),
        (pd.Index([5, 6]), [5, 6], False),
        (range(3), [0, 1, 2], False),
        ([], [], False),
    ],
)
def test_as_id_array_tells_one_id_from_several(ids, expected, single):
    arr, got_single = as_id_array(ids, "users")
    assert got_single is single
    assert arr.ndim == 1 and arr.tolist() == expected
    if isinstance(ids, tuple):
        assert arr.dtype == object and arr[0] == ids


def test_as_id_array_keeps_the_types_predict_reads():
    arr, _ = as_id_array([1, "1", 2.5], "users")
    assert arr.dtype == object and [type(v) for v in arr] == [int, str, float]
    assert as_id_array([1, 2], "users")[0].dtype == np.int64
    assert as_id_array(np.array([1, 2], dtype=np.float16), "items")[0].dtype == (
        np.float32
    )
    assert as_id_array([np.float16(1.5)], "items")[0].tolist() == [1.5]


@pytest.mark.parametrize(
    "ids, match",
    [
        (None, "missing id"),
        (np.nan, "missing id"),
        ([1, None], "missing id"),
        (["a", np.nan], "missing id"),
        (pd.Series([1.0, np.nan]), "missing id"),
        (pd.NaT, "missing id"),
        (np.inf, "infinity"),
        (["a", -np.inf], "infinity"),
        (np.zeros((2, 2)), r"1-D array-like of ids; got an array of shape \(2, 2\)"),
    ],
)
def test_as_id_array_rejects_ids_predict_rejects(ids, match):
    with pytest.raises(ValueError, match=rf"users .*{match}|{match}"):
        as_id_array(ids, "users")
