"""Property-based tests (Hypothesis): every input form, on generated data.

Bounded to run in a few seconds: small tables, ``n_components=2``,
``max_iter=2``, a few dozen examples per property, derandomized so that the
suite is reproducible.
"""

import copy

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skmf import MFRegressor

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # Models fitted on arrays are queried with DataFrames and the reverse.
    pytest.mark.filterwarnings("ignore:X (has|does not have valid) feature names"),
]

FAST = {"n_components": 2, "max_iter": 2, "random_state": 0}
SOLVERS = ("als", "sgd", "adam", "gibbs")
DENSE_FORMS = (
    "pairs+y",
    "triples",
    "dataframe",
    "dataframe+y",
    "list of tuples",
    "list of pairs+y",
)
SPARSE_FORMS = (
    "csr", "csc", "coo", "bsr", "dia", "lil", "dok",
    "csr_array", "coo_array", "csc_array",
)  # fmt: skip


def bounded(n):
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


def id_strategy(kind):
    if kind == "int":
        return st.integers(0, 6)
    if kind == "str":
        return st.text(alphabet="abc", min_size=1, max_size=2)
    # 0 and "0" are two different ids.
    return st.one_of(st.integers(0, 3), st.sampled_from(["0", "a", "b"]))


@st.composite
def tables(draw, kinds=("int", "str", "mixed")):
    """(users, items, ratings) lists of one id kind, and the kind."""
    kind = draw(st.sampled_from(kinds))
    n = draw(st.integers(1, 12))
    users = draw(st.lists(id_strategy(kind), min_size=n, max_size=n))
    items = draw(st.lists(id_strategy(kind), min_size=n, max_size=n))
    ratings = draw(
        st.lists(
            st.floats(0.5, 5.0, allow_nan=False, allow_infinity=False),
            min_size=n,
            max_size=n,
        )
    )
    return users, items, ratings, kind


def _ids_array(values, kind):
    """Ids as NumPy would hold them: numbers for ints, objects otherwise."""
    if kind == "int":
        return np.asarray(values, dtype=np.int64)
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def dense_form(form, users, items, ratings, kind):
    """(X, y) of one dense form holding the ratings of the table."""
    u, i = _ids_array(users, kind), _ids_array(items, kind)
    r = np.asarray(ratings, dtype=np.float64)
    if form == "pairs+y":
        return np.column_stack([u, i]), r
    if form == "triples":
        if kind == "int":
            return np.column_stack([u, i, r]), None
        return np.column_stack([u, i, r.astype(object)]), None
    if form == "dataframe":
        return pd.DataFrame({"user": u, "item": i, "rating": r}), None
    if form == "dataframe+y":
        return pd.DataFrame({"item": i, "user": u}), pd.Series(r)
    if form == "list of tuples":
        return list(zip(users, items, ratings)), None
    if form == "list of pairs+y":
        return [list(pair) for pair in zip(users, items)], list(ratings)
    raise AssertionError(form)


@st.composite
def sparse_tables(draw):
    """Distinct (user, item) cells of a small matrix, with nonzero ratings."""
    n_users, n_items = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    cells = draw(
        st.lists(
            st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)),
            min_size=1,
            max_size=n_users * n_items,
            unique=True,
        )
    )
    ratings = draw(
        st.lists(
            st.sampled_from([0.5, 1.0, 2.0, 3.5, 5.0]),
            min_size=len(cells),
            max_size=len(cells),
        )
    )
    return cells, ratings, (n_users, n_items)


def sparse_form(form, cells, ratings, shape):
    rows, cols = (np.array(c, dtype=np.int64) for c in zip(*cells))
    coo = sp.coo_matrix((np.asarray(ratings), (rows, cols)), shape=shape)
    if form == "bsr":  # blocks of 2 rows store zeros: they are not ratings
        return coo.tobsr(blocksize=(2, 1) if shape[0] % 2 == 0 else (1, 1))
    if form.endswith("_array"):
        return getattr(sp, form)(coo)
    return coo.asformat(form)


def snapshot(X, y):
    return copy.deepcopy(X), copy.deepcopy(y)


def assert_unchanged(before, X, y):
    for old, new in zip(before, (X, y)):
        if old is None:
            assert new is None
        elif sp.issparse(old):
            assert old.format == new.format and old.shape == new.shape
            assert (old != new).nnz == 0
            np.testing.assert_array_equal(old.toarray(), new.toarray())
        elif isinstance(old, pd.DataFrame):
            pd.testing.assert_frame_equal(old, new)
        elif isinstance(old, pd.Series):
            pd.testing.assert_series_equal(old, new)
        elif isinstance(old, np.ndarray):
            assert old.dtype == new.dtype and old.shape == new.shape
            frame = pd.DataFrame if old.ndim == 2 else pd.Series
            assert frame(old).equals(frame(new))  # NaN equals NaN here
        else:
            assert old == new and [type(v) for v in old] == [type(v) for v in new]


# --------------------------------------------------------------- properties
@bounded(30)
@given(table=tables(), form=st.sampled_from(DENSE_FORMS))
def test_dense_forms_fit_predict_finite_and_leave_inputs_unchanged(table, form):
    X, y = dense_form(form, *table)
    before = snapshot(X, y)
    model = MFRegressor(**FAST).fit(X, y)
    pred = model.predict(X)
    assert pred.shape == (len(table[2]),) and np.isfinite(pred).all()
    if len(pred) > 1:  # R^2 is not defined on one rating
        assert np.isfinite(model.score(X, y))
    assert_unchanged(before, X, y)


@bounded(20)
@given(table=sparse_tables(), form=st.sampled_from(SPARSE_FORMS))
def test_sparse_forms_give_the_model_of_their_coo_entries(table, form):
    cells, ratings, shape = table
    X = sparse_form(form, cells, ratings, shape)
    before = snapshot(X, None)
    model = MFRegressor(**FAST).fit(X)
    ref = MFRegressor(**FAST).fit(np.column_stack([*zip(*cells), ratings]))
    coo = X.tocoo()
    rated = coo.data != 0  # BSR: X.tocoo() holds the zeros of the blocks
    pairs = np.column_stack([coo.row[rated], coo.col[rated]])
    pred = model.predict(X)
    assert np.isfinite(pred).all()
    np.testing.assert_allclose(pred, ref.predict(pairs), rtol=1e-5, atol=1e-6)
    assert_unchanged(before, X, None)


@bounded(8)
@given(table=tables())
def test_every_dense_form_gives_the_same_model(table):
    users, items, _, kind = table
    query = pd.DataFrame({"user": _ids_array(users, kind)[::-1],
                          "item": _ids_array(items, kind)})  # fmt: skip
    ref = None
    for form in DENSE_FORMS:
        model = MFRegressor(**FAST).fit(*dense_form(form, *table))
        pred = model.predict(query)
        if ref is None:
            ref, ref_users = pred, model.users_
            continue
        np.testing.assert_allclose(pred, ref, rtol=1e-6, err_msg=form)
        assert model.users_.tolist() == ref_users.tolist(), form


CORRUPTIONS = {
    # name: (what is done to a valid table, a word the message must hold)
    "nan rating": ("NaN",),
    "inf rating": ("infinity",),
    "text rating": ("text",),
    "missing user": ("NaN or None",),
    "infinite item": ("infinity",),
    "four columns": ("columns",),
    "one column": ("feature",),
    "y too short": ("inconsistent",),
    "negative weight": ("Negative",),
    "triples and y": ("triples and y",),
}


def corrupt(name, users, items, ratings):
    """(X, y, sample_weight) of object triples, with one defect."""
    users, items, ratings = list(users), list(items), list(ratings)
    y, w = None, None
    if name == "nan rating":
        ratings[-1] = float("nan")
    elif name == "inf rating":
        ratings[0] = float("inf")
    elif name == "text rating":
        ratings[0] = "4.0"
    elif name == "missing user":
        users[-1] = None
    elif name == "infinite item":
        items[0] = float("-inf")
    elif name == "negative weight":
        w = [1.0] * len(ratings)
        w[-1] = -1.0
    rows = [[u, i, r] for u, i, r in zip(users, items, ratings)]
    if name == "four columns":
        rows = [row + [0] for row in rows]
    elif name == "one column":
        rows, y = [[u] for u in users], ratings
    elif name == "y too short":
        rows, y = [[u, i] for u, i in zip(users, items)], ratings + [3.0]
    elif name == "triples and y":
        y = ratings
    X = np.empty((len(rows), len(rows[0])), dtype=object)
    for k, row in enumerate(rows):
        X[k, :] = row
    return X, y, w


@bounded(40)
@given(
    table=tables(),
    name=st.sampled_from(sorted(CORRUPTIONS)),
    as_frame=st.booleans(),
)
def test_defective_inputs_raise_a_value_or_type_error_naming_the_problem(
    table, name, as_frame
):
    X, y, w = corrupt(name, *table[:3])
    if as_frame and X.shape[1] in (2, 3):
        X = pd.DataFrame(X, columns=["user", "item", "rating"][: X.shape[1]])
    before = snapshot(X, y)
    (word,) = CORRUPTIONS[name]
    with pytest.raises((ValueError, TypeError), match=word):
        MFRegressor(**FAST).fit(X, y, sample_weight=w)
    assert_unchanged(before, X, y)


@bounded(15)
@given(table=tables())
def test_unknown_ids_get_mu_plus_the_known_bias(table):
    users, items, ratings, kind = table
    model = MFRegressor(**FAST).fit(*dense_form("pairs+y", *table))
    new_user, new_item = (10**6, 10**6 + 1) if kind == "int" else ("new-u", "new-i")
    u0, i0 = model.users_[0], model.items_[0]
    query = pd.DataFrame({"user": [new_user, u0, new_user],
                          "item": [i0, new_item, new_item]})  # fmt: skip
    pred = model.predict(query)
    mu = model.intercept_
    expected = [mu + model.item_bias_[0], mu + model.user_bias_[0], mu]
    np.testing.assert_allclose(pred, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("solver", SOLVERS)
@bounded(5)
@given(table=tables(), seed=st.integers(0, 2**31 - 1))
def test_the_same_seed_gives_the_same_model(solver, table, seed):
    X, y = dense_form("pairs+y", *table)
    params = {**FAST, "solver": solver, "random_state": seed}
    a = MFRegressor(**params).fit(X, y)
    b = MFRegressor(**params).fit(X, y)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.intercept_ == b.intercept_
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
