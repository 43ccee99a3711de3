"""Input parsing: every accepted form of ratings becomes ids, ratings and weights.

This module is NumPy/SciPy/pandas only; it never touches torch. The estimator
calls :func:`parse_ratings` first thing in ``fit``/``predict``/``score`` so that
bad input fails before any work starts. Inputs are never modified.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.validation import _check_sample_weight, column_or_1d

__all__ = ["RatingData", "encode_ids", "extend_ids", "factorize_ids", "parse_ratings"]


@dataclass(frozen=True)
class RatingData:
    """Ratings in a canonical form: one entry per observed (user, item) pair.

    Attributes
    ----------
    users, items : ndarray of shape (n,)
        The raw ids, of any hashable type.
    ratings : ndarray of shape (n,) of float64 or None
        The ratings, or None when the input only names (user, item) pairs.
    weights : ndarray of shape (n,) of float64 or None
        The sample weights, or None for unit weights.
    n_columns : int
        Number of columns of ``X`` (2 or 3, or the number of items of a
        sparse matrix).
    feature_names : ndarray of str or None
        Column names of a DataFrame input.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None
    weights: np.ndarray | None
    n_columns: int
    feature_names: np.ndarray | None


def _fail_non_finite(values: np.ndarray, what: str) -> None:
    """Raise a ValueError if a numeric array holds NaN or infinity."""
    if values.dtype.kind not in "fc":
        return
    if np.isnan(values).any():
        raise ValueError(
            f"Input {what} contains NaN. Drop the rows with missing values "
            "(e.g. df.dropna()) before fitting or predicting."
        )
    if np.isinf(values).any():
        raise ValueError(
            f"Input {what} contains infinity. Every id and rating must be finite."
        )


def _check_ids(ids: np.ndarray, what: str) -> np.ndarray:
    """Validate one id column: no missing values, no complex numbers."""
    if ids.dtype.kind == "c":
        raise ValueError(f"Complex data not supported in the {what} ids.")
    if ids.dtype.kind in "fc":
        _fail_non_finite(ids, f"X ({what} ids)")
    elif ids.dtype.kind in "mM" and np.isnat(ids).any():
        raise ValueError(
            f"Input X contains NaT (a missing date or duration) in the {what} ids. "
            "Every rating must name a user and an item; drop the incomplete rows."
        )
    elif ids.dtype.kind == "O" and pd.isna(ids).any():
        raise ValueError(
            f"Input X contains NaN or None in the {what} ids. Every rating must "
            "name a user and an item; drop the incomplete rows."
        )
    return ids


def _to_ratings(values: np.ndarray, what: str) -> np.ndarray:
    """Convert a rating column to float64, with a clear error if it is not numeric."""
    if values.dtype.kind == "c":
        raise ValueError(f"Complex data not supported in {what}.")
    if values.dtype.kind == "b" or values.dtype.kind not in "iufO":
        raise TypeError(
            f"{what} must be numeric, got an array of dtype {values.dtype}. "
            "Convert the ratings to numbers (e.g. df['rating'].astype(float))."
        )
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what} must be numeric, but some values could not be converted to "
            f"float ({exc}). Convert the ratings to numbers first."
        ) from None
    _fail_non_finite(out, what)
    return out


def _columns(X) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Split a dense input into its columns, keeping each column's own dtype."""
    feature_names = None
    if isinstance(X, pd.DataFrame):
        columns = [X.iloc[:, j].to_numpy() for j in range(X.shape[1])]
        names = np.asarray(X.columns, dtype=object)
        if all(isinstance(c, str) for c in names):
            feature_names = names
        return columns, feature_names
    if isinstance(X, np.ndarray):
        arr = X
    elif hasattr(X, "__array__") and not isinstance(X, list | tuple):
        arr = np.asarray(X)
    else:
        # Lists of tuples may mix strings and numbers: keep each value's type.
        try:
            arr = np.asarray(X, dtype=object)
        except ValueError as exc:  # ragged rows
            raise ValueError(
                f"X could not be read as a table of (user, item[, rating]) rows: {exc}"
            ) from None
        if arr.ndim == 2 and arr.shape[1] > 0:
            # Columns of plain numbers get a numeric dtype, as NumPy would.
            return [_infer_column(arr[:, j]) for j in range(arr.shape[1])], None
    if arr.ndim != 2:
        raise ValueError(
            f"Expected a 2-D array of (user, item) pairs or (user, item, rating) "
            f"triples, got an array of shape {arr.shape}. Reshape your data, e.g. "
            "np.column_stack([users, items])."
        )
    return [arr[:, j] for j in range(arr.shape[1])], None


def _infer_column(col: np.ndarray) -> np.ndarray:
    """Give an object column of numbers a numeric dtype (ints stay exact)."""
    inferred = pd.api.types.infer_dtype(col, skipna=False)
    if inferred == "integer":
        try:
            return col.astype(np.int64)
        except OverflowError:  # ids above 2**63
            return col
    if inferred in ("floating", "mixed-integer-float"):
        return col.astype(np.float64)
    return col


def parse_ratings(
    X, y=None, sample_weight=None, *, need_ratings: bool, caller: str
) -> RatingData:
    """Validate ratings given in any accepted form and return them canonically.

    Parameters
    ----------
    X : array-like of shape (n, 2) or (n, 3), DataFrame, or sparse matrix
        (user, item) pairs, (user, item, rating) triples, or a users x items
        sparse rating matrix.
    y : array-like of shape (n,), default=None
        Ratings for (user, item) pairs.
    sample_weight : array-like of shape (n,), default=None
        Non-negative weight of each rating.
    need_ratings : bool
        Whether ratings are required (``fit``, ``score``) or ignored
        (``predict``).
    caller : str
        Name of the calling method, for error messages.

    Returns
    -------
    RatingData
    """
    ratings = None
    if sp.issparse(X):
        if y is not None:
            raise ValueError(
                f"{caller} got a sparse rating matrix and y: the stored entries of "
                "the matrix are the ratings, so y must be None."
            )
        if X.ndim != 2:
            raise ValueError(f"Expected a 2-D sparse rating matrix, got {X.ndim}-D.")
        coo = sp.coo_matrix(X)  # a new object: X itself is left alone
        if X.format in ("bsr", "dia"):
            # Whole blocks or diagonals are stored: the nonzeros are the ratings.
            coo.eliminate_zeros()
        if coo.dtype.kind == "c":
            raise ValueError("Complex data not supported in the sparse matrix.")
        if coo.nnz == 0:
            raise ValueError(
                f"Found a sparse matrix of shape {coo.shape} with no stored entries "
                f"while a minimum of 1 is required by MFRegressor.{caller}: there "
                "are no ratings to use."
            )
        users = coo.row.astype(np.int64)
        items = coo.col.astype(np.int64)
        ratings = _to_ratings(coo.data, "The sparse matrix's stored ratings")
        n_columns, feature_names = coo.shape[1], None
    else:
        if X is None:
            raise ValueError(
                f"{caller} requires X: (user, item) pairs, (user, item, rating) "
                "triples, a DataFrame or a sparse rating matrix; got None."
            )
        columns, feature_names = _columns(X)
        n_columns = len(columns)
        n = len(columns[0]) if columns else len(X)
        if n_columns == 0:
            raise ValueError(
                f"Found array with 0 feature(s) (shape=({n}, 0)) while a minimum of "
                f"2 is required by MFRegressor.{caller}: X must hold (user, item) "
                "pairs or (user, item, rating) triples."
            )
        if n == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape=({n}, {n_columns})) while a "
                f"minimum of 1 is required by MFRegressor.{caller}: there are no "
                "ratings to use."
            )
        # predict ignores a rating column: it is not checked there.
        for j, col in enumerate(columns[: 3 if need_ratings else 2]):
            if col.dtype.kind == "c":
                raise ValueError("Complex data not supported in X.")
            _fail_non_finite(col, f"X (column {j})")
        if n_columns not in (2, 3):
            raise ValueError(
                f"X must have 2 columns (user, item) or 3 columns (user, item, "
                f"rating); got {n_columns} feature(s). For a DataFrame, select the "
                "columns first, e.g. df[['user', 'item', 'rating']]."
            )
        users = _check_ids(columns[0], "user")
        items = _check_ids(columns[1], "item")
        if n_columns == 3:
            if y is not None:
                raise ValueError(
                    f"{caller} got (user, item, rating) triples and y: the third "
                    "column of X already holds the ratings. Pass y=None, or pass "
                    "only the (user, item) columns with y."
                )
            if need_ratings:
                ratings = _to_ratings(columns[2], "The rating column of X")

    if y is not None:
        y_arr = np.asarray(y)
        if np.iscomplexobj(y_arr):
            raise ValueError("Complex data not supported in y: ratings are real.")
        if y_arr.ndim == 0:
            raise ValueError(f"y must be a 1-D array of ratings, got the scalar {y!r}.")
        y_arr = column_or_1d(y_arr, warn=True)
        if len(y_arr) != len(users):
            raise ValueError(
                f"Found input variables with inconsistent numbers of samples: X has "
                f"{len(users)} rows but y has {len(y_arr)} ratings."
            )
        ratings = _to_ratings(y_arr, "y") if need_ratings else None
    elif need_ratings and ratings is None:
        raise ValueError(
            f"{caller} requires y to be passed, but the target y is None: X holds "
            "(user, item) pairs without ratings. Pass the ratings as y, or give "
            "(user, item, rating) triples or a sparse rating matrix."
        )

    weights = None
    if sample_weight is not None:
        sw = np.asarray(sample_weight)
        if sw.dtype.kind == "O":  # e.g. an object Series of numbers
            try:
                sw = sw.astype(np.float64)
            except (TypeError, ValueError):
                pass
        if np.iscomplexobj(sw) or sw.dtype.kind not in "biuf":
            raise TypeError(
                f"sample_weight must hold non-negative numbers, got an array of "
                f"dtype {sw.dtype}. Convert the weights with np.asarray(w, float)."
            )
        weights = _check_sample_weight(
            sw, users, dtype=np.float64, ensure_non_negative=True
        )
    return RatingData(users, items, ratings, weights, n_columns, feature_names)


def factorize_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map ids to dense indices 0..n-1; unique ids are sorted when orderable.

    Returns
    -------
    codes : ndarray of int64
        The index of each id in ``uniques``.
    uniques : ndarray
        The distinct ids (sorted if they can be compared).
    """
    if ids.dtype.kind in "iu" and len(ids):
        # Integer ids in a range not much wider than the data: a lookup table
        # (about 3x faster than hashing). The result is the same: sorted uniques.
        low, high = int(ids.min()), int(ids.max())
        if high - low < max(4 * len(ids), 1 << 16):
            if ids.dtype == np.uint64:  # may exceed the int64 range
                offset = (ids - np.uint64(low)).astype(np.int64)
            else:
                offset = ids.astype(np.int64) - low
            where = np.full(high - low + 1, -1, dtype=np.int64)
            where[offset] = np.arange(len(ids))  # a position of each id value
            present = where >= 0
            table = np.cumsum(present, dtype=np.int64) - 1
            return table[offset], ids[where[present]]
    try:
        codes, uniques = pd.factorize(ids, sort=True)
    except TypeError:  # ids of mixed, unorderable types
        codes, uniques = pd.factorize(ids, sort=False)
    return codes.astype(np.int64, copy=False), np.asarray(uniques)


def encode_ids(ids: np.ndarray, uniques: np.ndarray) -> np.ndarray:
    """Indices of ``ids`` in ``uniques``; -1 for ids never seen."""
    if len(uniques) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    index = pd.Index(uniques)
    try:
        codes = index.get_indexer(ids)
    except (TypeError, ValueError):  # incomparable dtypes: match value by value
        codes = index.get_indexer(pd.Index(ids, dtype=object))
    return np.asarray(codes, dtype=np.int64)


def extend_ids(known: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``known`` followed by the ids of ``ids`` not in it (sorted if possible)."""
    codes = encode_ids(ids, known)
    new = ids[codes < 0]
    if len(new) == 0:
        return known
    _, new_unique = factorize_ids(new)
    common = _common_id_dtype(known, new_unique)
    return np.concatenate([known.astype(common), new_unique.astype(common)])


def _common_id_dtype(a: np.ndarray, b: np.ndarray) -> np.dtype:
    """A dtype that holds the ids of both arrays exactly (object if none)."""
    if a.dtype == b.dtype:
        return a.dtype
    kinds = {a.dtype.kind, b.dtype.kind}
    if kinds <= set("US"):
        return np.result_type(a.dtype, b.dtype)
    if kinds <= set("iuf"):
        common = np.result_type(a.dtype, b.dtype)
        if common.kind in "iu":  # e.g. int32 + int64
            return common
        # A float result holds integer ids exactly below 2**53, when one side
        # is float (int64 + uint64 also gives float64, but not exactly).
        ints = [x for x in (a, b) if x.dtype.kind in "iu"]
        if len(ints) < 2 and all(
            np.abs(x.astype(np.float64)).max(initial=0) < 2**53 for x in ints
        ):
            return common
    return np.dtype(object)
