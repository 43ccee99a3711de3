"""Input parsing: every accepted form of ratings becomes ids, ratings and weights.

This module is NumPy/SciPy/pandas only; it never touches torch. The estimator
calls :func:`parse_ratings` first thing in ``fit``/``predict``/``score`` so that
bad input fails before any work starts. Inputs are never modified.
"""

from __future__ import annotations

import mmap
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.validation import _check_sample_weight, column_or_1d

__all__ = [
    "group_by_row",
    "RatingData",
    "as_id_array",
    "check_feature_names",
    "encode_ids",
    "extend_ids",
    "factorize_ids",
    "parse_ratings",
]

#: The column names :func:`parse_ratings` looks for in a DataFrame.
DEFAULT_COLUMNS = ("user", "item", "rating")


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
    feature_names : ndarray of object or None
        The names of the DataFrame columns read as user, item[, rating], in
        that order (like scikit-learn's ``feature_names_in_``); None when
        ``X`` is not a DataFrame or its column names are not all strings.
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


def _upcast_float16(ids: np.ndarray) -> np.ndarray:
    """float16 ids as float32 (same values): pandas has no float16 index."""
    return ids.astype(np.float32) if ids.dtype == np.float16 else ids


def _check_ids(ids: np.ndarray, what: str) -> np.ndarray:
    """Validate one id column: no missing or infinite values, no complex numbers.

    Returns the ids, float16 ones as float32 (the same values: pandas cannot
    index float16, and fit and predict must map the ids alike).
    """
    if ids.dtype.kind == "c":
        raise ValueError(f"Complex data not supported in the {what} ids.")
    if ids.dtype.kind == "f":
        _fail_non_finite(ids, f"X ({what} ids)")
    elif ids.dtype.kind in "mM" and np.isnat(ids).any():
        raise ValueError(
            f"Input X contains NaT (a missing date or duration) in the {what} ids. "
            "Every rating must name a user and an item; drop the incomplete rows."
        )
    elif ids.dtype.kind == "O":
        if pd.isna(ids).any():
            raise ValueError(
                f"Input X contains NaN or None in the {what} ids. Every rating must "
                "name a user and an item; drop the incomplete rows."
            )
        if _has_infinity(ids):
            raise ValueError(
                f"Input X ({what} ids) contains infinity. An id of inf is almost "
                "surely a data error, as NaN is: every id must be finite."
            )
    return _upcast_float16(ids)


def _has_infinity(values: np.ndarray) -> bool:
    """Whether an object array holds a float infinity (hashing, no sorting)."""
    return bool(pd.Series(values, copy=False).isin([np.inf, -np.inf]).any())


def _first_text(values: np.ndarray):
    """The first str or bytes value of an object array, or None."""
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred in ("string", "bytes", "mixed", "mixed-integer"):
        for value in values:
            if isinstance(value, str | bytes):
                return value
    return None


def _to_ratings(values: np.ndarray, what: str) -> np.ndarray:
    """Convert a rating column to float64, with a clear error if it is not numeric.

    Text is rejected whatever the container (a NumPy string array, an object
    array, a list): ratings written as text were not parsed.
    """
    if values.dtype.kind == "c":
        raise ValueError(f"Complex data not supported in {what}.")
    if values.dtype.kind in "USO":
        if values.dtype.kind == "O":
            text = _first_text(values)
        else:
            text = values.flat[0] if values.size else None
        if text is not None:
            raise TypeError(
                f"{what} must be numeric, but it holds text such as {str(text)!r}. "
                "Convert the ratings to numbers first, e.g. with "
                "pd.to_numeric(df['rating']) or np.asarray(y, dtype=float)."
            )
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


def _check_column_names(columns) -> tuple:
    """Validate the ``columns`` argument of :func:`parse_ratings`."""
    if isinstance(columns, str) or not isinstance(columns, list | tuple):
        raise TypeError(
            "columns must be a tuple of 2 or 3 column names (user, item[, rating]); "
            f"got {columns!r} of type {type(columns).__name__}."
        )
    if len(columns) not in (2, 3) or len(set(columns)) != len(columns):
        raise ValueError(
            "columns must name 2 or 3 distinct columns (user, item[, rating]); "
            f"got {columns!r}."
        )
    return tuple(columns)


def _frame_columns(X: pd.DataFrame, columns: tuple) -> tuple[list, np.ndarray | None]:
    """The user, item[, rating] columns of a DataFrame, by name or by position.

    When the frame has both the user and the item column of ``columns``, they
    (and the rating column, if present) are taken by name, and any other
    column is an error. When it has neither, the columns are read in order
    (user, item[, rating]). Having only one of them is an error.
    """
    user, item = columns[0], columns[1]
    rating = columns[2] if len(columns) == 3 else None
    have = [name for name in columns if name in X.columns]
    if user in have and item in have:
        take = [name for name in columns if name in have]
        twice = [name for name in take if (X.columns == name).sum() > 1]
        if twice:
            raise ValueError(
                f"X has more than one column named {twice[0]!r}; column names "
                "must be unique to read the columns by name."
            )
        extra = [name for name in X.columns if name not in take]
        if extra:
            hint = ""
            if rating is not None and rating not in have and len(extra) == 1:
                hint = (
                    f" If {extra[0]!r} holds the ratings, rename it: "
                    f"X.rename(columns={{{extra[0]!r}: {rating!r}}})."
                )
            raise ValueError(
                f"X has the columns {take} (read by name as "
                f"{', '.join(_roles(len(take)))}) and also {extra}, which are not "
                f"used. Select the columns first, e.g. X[{take!r}].{hint}"
            )
        data = [X[name].to_numpy() for name in take]
        return data, np.asarray(take, dtype=object)
    if user in have or item in have:
        present = user if user in have else item
        missing = item if user in have else user
        raise ValueError(
            f"X has a column named {present!r} but none named {missing!r}. A "
            f"DataFrame's columns are read by name ({list(columns)}) when both the "
            f"user and the item column are there, and in order when neither is; "
            f"X has the columns {list(X.columns)}. Rename the {missing} column, "
            f"e.g. X.rename(columns={{'my_{missing}': {missing!r}}})."
        )
    if rating is not None and rating in X.columns:
        position = list(X.columns).index(rating)
        if position < 2:
            raise ValueError(
                f"X has no {user!r} and {item!r} columns, so its columns are read "
                f"in order (user, item[, rating]), but its column {rating!r} is at "
                f"position {position}, where the {_roles(2)[position]} ids belong. "
                f"Name the id columns {user!r} and {item!r}, or reorder the columns."
            )
    data = [X.iloc[:, j].to_numpy() for j in range(X.shape[1])]
    names = np.asarray(X.columns, dtype=object)
    if not all(isinstance(c, str) for c in names):
        names = None
    return data, names


def _roles(n: int) -> list[str]:
    return ["user", "item", "rating"][:n]


def _columns(X, columns: tuple) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Split a dense input into its columns, keeping each column's own dtype."""
    if isinstance(X, pd.DataFrame):
        return _frame_columns(X, columns)
    if isinstance(X, np.ndarray):
        arr = np.asarray(X)  # np.matrix: a plain 2-D array (rows stay 2-D)
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
    X,
    y=None,
    sample_weight=None,
    *,
    need_ratings: bool,
    caller: str,
    columns: tuple = DEFAULT_COLUMNS,
) -> RatingData:
    """Validate ratings given in any accepted form and return them canonically.

    Parameters
    ----------
    X : array-like of shape (n, 2) or (n, 3), DataFrame, or sparse matrix
        (user, item) pairs, (user, item, rating) triples, or a users x items
        sparse rating matrix (BSR and DIA matrices store whole blocks or
        diagonals: their nonzero entries are the ratings). ``np.matrix`` is
        read as a 2-D array.
    y : array-like of shape (n,), default=None
        Ratings for (user, item) pairs.
    sample_weight : array-like of shape (n,), default=None
        Non-negative weight of each rating; for a sparse matrix, of each
        entry of ``X.tocoo()`` (for BSR and DIA the zero entries are then
        dropped together with their weights).
    need_ratings : bool
        Whether ratings are required (``fit``, ``score``) or ignored
        (``predict``).
    caller : str
        Name of the calling method, for error messages.
    columns : tuple of 2 or 3 str, default=("user", "item", "rating")
        The column names looked for in a DataFrame ``X``. When both the user
        and the item name are columns of ``X``, the columns are taken by name
        (the rating column too, if present) and any other column is a
        ValueError; when neither is, the columns are read in order (user,
        item[, rating]); when only one of them is, ValueError.

    Returns
    -------
    RatingData
        ``feature_names`` holds the names of the DataFrame columns read as
        user, item[, rating], in that order.

    Raises
    ------
    TypeError
        If the ratings are not numbers. Ratings written as text (``"4.0"``) are
        rejected from every container alike (a NumPy string array, an object
        array, a list, a DataFrame column): they were not parsed, and the
        usual fix, ``pd.to_numeric``, is the user's to choose (scikit-learn
        rejects string targets too).
    ValueError
        For missing, infinite or complex ids or ratings, shapes that are not
        (user, item[, rating]) rows, or inconsistent lengths.

    Notes
    -----
    Ids of float16 are read as float32 (the same values) by fit and predict
    alike.
    """
    columns = _check_column_names(columns)
    ratings = None
    keep = None  # BSR/DIA: the nonzero entries of X.tocoo()
    if sp.issparse(X):
        if y is not None:
            raise ValueError(
                f"{caller} got a sparse rating matrix and y: the stored entries of "
                "the matrix are the ratings, so y must be None."
            )
        if X.ndim != 2:
            raise ValueError(f"Expected a 2-D sparse rating matrix, got {X.ndim}-D.")
        coo = X.tocoo()  # may be X itself (COO input): it is only read
        if coo.dtype.kind == "c":
            raise ValueError("Complex data not supported in the sparse matrix.")
        if X.format in ("bsr", "dia"):
            # Whole blocks or diagonals are stored: the nonzeros are the ratings.
            # The weights follow X.tocoo(), so the zeros are dropped after them.
            keep = coo.data != 0
        n_entries = coo.nnz if keep is None else int(np.count_nonzero(keep))
        if n_entries == 0:
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
        data_columns, feature_names = _columns(X, columns)
        n_columns = len(data_columns)
        n = len(data_columns[0]) if data_columns else len(X)
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
        for j, col in enumerate(data_columns[: 3 if need_ratings else 2]):
            if col.dtype.kind == "c":
                raise ValueError("Complex data not supported in X.")
            _fail_non_finite(col, f"X (column {j})")
        if n_columns not in (2, 3):
            raise ValueError(
                f"X must have 2 columns (user, item) or 3 columns (user, item, "
                f"rating); got {n_columns} feature(s). For a DataFrame, select the "
                "columns first, e.g. df[['user', 'item', 'rating']]."
            )
        users = _check_ids(data_columns[0], "user")
        items = _check_ids(data_columns[1], "item")
        if n_columns == 3:
            if y is not None:
                raise ValueError(
                    f"{caller} got (user, item, rating) triples and y: the third "
                    "column of X already holds the ratings. Pass y=None, or pass "
                    "only the (user, item) columns with y."
                )
            if need_ratings:
                ratings = _to_ratings(data_columns[2], "The rating column of X")

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
    if keep is not None and not keep.all():
        users, items = users[keep], items[keep]
        if ratings is not None:
            ratings = ratings[keep]
        if weights is not None:
            weights = weights[keep]
    return RatingData(users, items, ratings, weights, n_columns, feature_names)


def check_feature_names(fitted_names, data, caller: str) -> None:
    """Check the column names of ``X`` against those seen in ``fit``.

    scikit-learn's rule for ``feature_names_in_``, for the id columns: when
    ``fit`` saw a DataFrame of string column names and ``X`` is a DataFrame
    too, the names of the columns read as user and item must be the same
    (ValueError otherwise: the ids would be read from other columns than in
    ``fit``). When only one of the two has names, a UserWarning says so, as
    scikit-learn does. The rating column is the target, not a feature: its
    name is not compared.

    Parameters
    ----------
    fitted_names : ndarray of object or None
        The ``feature_names`` of the :class:`RatingData` of ``fit`` (the
        estimator's ``feature_names_in_``), or None.
    data : RatingData
        The parsed input of ``predict``, ``score``, ``partial_fit``...
    caller : str
        The estimator and method, e.g. ``"MFRegressor.predict"``, for the
        messages.

    Raises
    ------
    ValueError
        If both have names and the user or item column names differ.
    """
    names = data.feature_names if isinstance(data, RatingData) else data
    if fitted_names is None and names is None:
        return
    estimator = caller.partition(".")[0]
    if names is None:
        warnings.warn(
            f"X does not have valid feature names, but {estimator} was fitted "
            f"with feature names {list(fitted_names)}: {caller} reads the columns "
            "of X in order (user, item[, rating]). Pass a DataFrame with the "
            "same column names to have them checked.",
            UserWarning,
            stacklevel=3,
        )
        return
    if fitted_names is None:
        warnings.warn(
            f"X has feature names {list(names)}, but {estimator} was fitted "
            f"without feature names: {caller} does not check them.",
            UserWarning,
            stacklevel=3,
        )
        return
    fitted_ids, ids = list(fitted_names[:2]), list(names[:2])
    if fitted_ids == ids:
        return
    if sorted(map(str, fitted_ids)) == sorted(map(str, ids)):
        detail = "Feature names must be in the same order as they were in fit."
    else:
        detail = "The user and item columns have other names than in fit."
    raise ValueError(
        "The feature names should match those that were passed during fit.\n"
        f"{detail}\n{caller} got the columns {ids} as (user, item), but fit used "
        f"{fitted_ids}. Rename the columns of X to {fitted_ids}, or select them, "
        f"e.g. X[{fitted_ids!r}]."
    )


def as_id_array(ids, what: str) -> tuple[np.ndarray, bool]:
    """One id or several, as a 1-D array of ids, and whether it was one.

    Used by ``recommend`` and ``similar_items``, whose ``users``/``items``
    take one id or several.

    Parameters
    ----------
    ids : id or iterable of ids
        One id: a str, bytes, tuple (an id may be a tuple), number, None, a
        0-d array or any other object that is not iterable. Several ids: a
        list, 1-D ndarray, pandas Series, Index or array, range, set, or any
        other iterable.
    what : str
        The argument's name, for the messages (e.g. ``"users"``).

    Returns
    -------
    ids : ndarray of shape (n,)
        The ids, with the types ``predict`` would read them with (ints as
        int64 from a list, mixed types as object; float16 as float32).
    single : bool
        Whether ``ids`` was one id.

    Raises
    ------
    ValueError
        If an id is missing (None, NaN, NaT) or infinite, as ``predict``
        rejects such ids, or if an array of ids is not 1-D.
    """
    single = isinstance(ids, str | bytes | tuple) or not isinstance(ids, Iterable)
    if isinstance(ids, np.ndarray) and ids.ndim == 0:
        single, arr = True, ids.reshape(1)
    elif single:
        arr = _id_list([ids])
    elif isinstance(ids, pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
        arr = np.asarray(ids.to_numpy() if hasattr(ids, "to_numpy") else ids)
    elif isinstance(ids, np.ndarray):
        arr = np.asarray(ids)  # np.matrix: 2-D, refused below
    else:
        arr = _id_list(list(ids))
    if arr.ndim != 1:
        raise ValueError(
            f"{what} must be one id or a 1-D array-like of ids; got an array of "
            f"shape {arr.shape}."
        )
    arr = _upcast_float16(arr)
    if arr.dtype.kind in "fcmMO":
        missing = pd.isna(arr)
        if missing.any():
            raise ValueError(
                f"{what} holds a missing id ({arr[missing][0]!r}), which predict "
                f"rejects too; every id must be a valid user or item id. Drop the "
                "missing ids."
            )
        infinite = np.isinf(arr) if arr.dtype.kind == "f" else None
        if arr.dtype.kind == "O" and _has_infinity(arr):
            infinite = True
        if infinite is not None and np.any(infinite):
            raise ValueError(
                f"{what} holds an id of infinity, which predict rejects too; every "
                "id must be finite."
            )
    return arr, single


def _id_list(values: list) -> np.ndarray:
    """A list of ids as an array, each id's type kept (tuples stay one id)."""
    try:
        return np.asarray(pd.Index(values, tupleize_cols=False))
    except NotImplementedError:  # float16 scalars: pandas has no float16 index
        arr = np.empty(len(values), dtype=object)
        for k, value in enumerate(values):
            arr[k] = value
        return _infer_column(arr)


def group_by_row(
    rows: np.ndarray, cols: np.ndarray, n_rows: int, *, spare: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Pairs (row, col) grouped by row: CSR arrays and the stable order.

    A counting sort (SciPy's COO to CSR conversion, O(n), about 3x faster
    than a stable sort of int32 keys): returns ``indptr`` (int64, n_rows + 1),
    the columns in row order (int32; within a row in input order, repeated
    pairs kept; followed by ``spare`` unset entries) and the order (int32)
    that sorts the pairs by row. None when the sizes exceed int32 or SciPy's
    routine is not available: the caller sorts instead. int32 ``rows`` and
    ``cols`` are read without a copy.
    """
    n = len(rows)
    if max(n, n_rows) >= 2**31 or (len(cols) and int(cols.max()) >= 2**31):
        return None
    try:
        from scipy.sparse import _sparsetools
    except ImportError:  # pragma: no cover - SciPy's private module moved
        return None
    indptr = np.empty(n_rows + 1, dtype=np.int32)
    out_cols = small_pages(n + spare, np.int32)
    order = small_pages(n, np.int32)
    positions = small_pages(n, np.int32)
    for start in range(0, n, CHUNK):  # np.arange(n), without a temporary
        stop = min(start + CHUNK, n)
        positions[start:stop] = np.arange(start, stop, dtype=np.int32)
    _sparsetools.coo_tocsr(
        n_rows, max(int(cols.max()) + 1 if n else 1, 1), n,
        as_int32(rows), as_int32(cols), positions, indptr, out_cols[:n], order,
    )  # fmt: skip
    return indptr.astype(np.int64), out_cols, order


#: Entries per chunk of the passes that would otherwise allocate a temporary
#: of the data's size.
CHUNK = 1 << 18


def small_pages(n: int, dtype) -> np.ndarray:
    """An uninitialized array in 4 KiB pages (an anonymous memory map).

    NumPy asks Linux for 2 MiB pages for large arrays (``madvise``); filling
    fresh huge pages costs more than small ones on virtual machines (the
    counting sorts of a fit with 9M ratings spent 0.5 s in the kernel with
    them, 0.2 s without), so the fit's large one-shot arrays use small pages.
    """
    dtype = np.dtype(dtype)
    nbytes = int(n) * dtype.itemsize
    if nbytes < 1 << 22:
        return np.empty(n, dtype=dtype)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype, count=n)


def as_int32(values: np.ndarray) -> np.ndarray:
    """``values`` as an int32 array (itself if it is one): in small pages."""
    if values.dtype == np.int32:
        return values
    out = small_pages(len(values), np.int32)
    out[:] = values
    return out


def factorize_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map ids to dense indices 0..n-1; unique ids are sorted when orderable.

    Returns
    -------
    codes : ndarray of int64
        The index of each id in ``uniques``.
    uniques : ndarray
        The distinct ids (sorted if they can be compared; float16 ids come
        back as float32, the same values).
    """
    ids = _upcast_float16(ids)
    if ids.dtype.kind in "iu" and len(ids):
        # Integer ids in a range not much wider than the data: a lookup table
        # (about 3x faster than hashing). The result is the same: sorted uniques.
        low, high = int(ids.min()), int(ids.max())
        if high - low < max(4 * len(ids), 1 << 16):
            if ids.dtype == np.uint64:  # may exceed the int64 range
                offset = (ids - np.uint64(low)).astype(np.int64)
            elif low == 0 and ids.dtype == np.int64:
                offset = ids  # read only below: no copy needed
            else:
                offset = small_pages(len(ids), np.int64)
                np.subtract(ids, low, out=offset, dtype=np.int64)
            present = np.bincount(offset, minlength=high - low + 1) > 0
            values = np.flatnonzero(present)
            if len(values) == high - low + 1:  # every id in the range: codes
                if offset is ids:
                    codes = small_pages(len(ids), np.int64)
                    codes[:] = offset
                else:
                    codes = offset
            else:
                table = np.cumsum(present, dtype=np.int64) - 1
                codes = np.take(table, offset, out=small_pages(len(ids), np.int64))
            return codes, values.astype(ids.dtype) + ids.dtype.type(low)
    try:
        codes, uniques = pd.factorize(ids, sort=True)
    except TypeError:  # ids of mixed, unorderable types
        codes, uniques = pd.factorize(ids, sort=False)
    return codes.astype(np.int64, copy=False), np.asarray(uniques)


def encode_ids(ids: np.ndarray, uniques: np.ndarray) -> np.ndarray:
    """Indices of ``ids`` in ``uniques``; -1 for ids never seen."""
    if len(uniques) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    ids, uniques = _upcast_float16(ids), _upcast_float16(uniques)
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
