"""Every input form, their equivalence, and clear errors on bad input."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from skmf import MFRegressor

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


# ----------------------------------------------- regressions found in review
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
