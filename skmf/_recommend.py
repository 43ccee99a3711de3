"""Serving a fitted model: blocked top-k, similar items, fold-in, one SGD pass.

No scikit-learn here. The functions take the fitted state as NumPy arrays and a
torch device, do the tensor work on that device and return NumPy arrays.

* :func:`top_k` ranks candidates j for query rows u by
  ``s_uj = a_u . v_j + b_u + c_j`` (for recommending: ``a = p_u``,
  ``b = b_u``, ``v = q_j``, ``c = mu + b_j``). The score matrix is computed
  one block of rows at a time, the block never holding more than
  ``_BLOCK_BYTES`` of scores; excluded (row, candidate) pairs are set to
  ``-inf`` in the block before ``torch.topk``.
* :func:`similar_rows` is :func:`top_k` on L2-normalized factors (cosine
  similarity), each query excluding itself.
* :func:`fold_in` gives rows unseen at fit time their exact ridge solution
  with the other side fixed: the ALS row update
  (:func:`skmf._solvers._als._solve_rows`) on their ratings alone.
* :func:`sgd_pass` runs one epoch of the SGD solver over some ratings, with
  the intercept and chosen rows frozen (used by ``partial_fit``).

The NumPy helpers :func:`seen_matrix` and :func:`gather_exclusions` build the
per-user sets of items to exclude.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from skmf._solvers._als import RowGroups, _solve_rows
from skmf._solvers._common import Factors, Penalty, Ratings
from skmf._solvers._sgd import SGDStep

__all__ = [
    "add_pairs",
    "fold_in",
    "gather_exclusions",
    "seen_matrix",
    "sgd_pass",
    "similar_rows",
    "top_k",
]

# Upper bound on the bytes of one block of scores (rows x candidates).
_BLOCK_BYTES = 1 << 26


def _to_device(array: np.ndarray, device: torch.device, dtype=None) -> torch.Tensor:
    """``array`` as a tensor on ``device`` (read-only arrays are copied)."""
    array = np.asarray(array)
    if not array.flags.writeable:
        array = array.copy()
    return torch.as_tensor(array, dtype=dtype, device=device)


# --------------------------------------------------------------- exclusions
def seen_matrix(
    rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """A boolean CSR matrix with True at the (row, col) pairs given.

    Repeated pairs are stored once (canonical format). Memory is O(number of
    distinct pairs): one index and one byte per pair, plus the row pointers.
    """
    rows = np.asarray(rows, dtype=np.int64)
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=bool), (rows, np.asarray(cols, dtype=np.int64))),
        shape=shape,
    )
    matrix.sum_duplicates()  # logical or of the bool entries; sorts the indices
    return matrix


def add_pairs(
    matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """``matrix`` grown to ``shape`` with the (row, col) pairs added."""
    grown = matrix.copy()
    grown.resize(shape)
    return (grown + seen_matrix(rows, cols, shape)).astype(bool)


def _gather_rows(
    indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(position in ``rows``, column) of the entries of the CSR rows ``rows``."""
    starts = indptr[rows].astype(np.int64)
    lengths = indptr[rows + 1].astype(np.int64) - starts
    local = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    offsets = np.arange(int(lengths.sum()), dtype=np.int64)
    offsets -= np.repeat(np.cumsum(lengths) - lengths, lengths)
    return local, indices[np.repeat(starts, lengths) + offsets].astype(np.int64)


def gather_exclusions(
    sources: list[tuple[sp.csr_matrix, np.ndarray]],
    candidate_pos: np.ndarray | None,
    n_queries: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The candidates to exclude for each query row, as CSR (indptr, columns).

    Parameters
    ----------
    sources : list of (csr_matrix, ndarray)
        Each pair is a boolean matrix of excluded (row, item code) pairs and,
        for each query, the row of that matrix to take (-1: none).
    candidate_pos : ndarray of int64 or None
        Position of each item code among the candidates (-1: not a candidate);
        None when the candidates are all items in code order.
    n_queries : int
        Number of query rows.

    Returns
    -------
    indptr : ndarray of int64 of shape (n_queries + 1,)
    columns : ndarray of int64
        Distinct candidate positions, sorted within each query row.
    """
    locals_, cols = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    n_cand = None
    for matrix, rows in sources:
        n_cand = matrix.shape[1] if candidate_pos is None else len(candidate_pos)
        known = np.flatnonzero(rows >= 0)
        local, col = _gather_rows(matrix.indptr, matrix.indices, rows[known])
        local = known[local]
        if candidate_pos is not None:
            col = candidate_pos[col]
            keep = col >= 0
            local, col = local[keep], col[keep]
        locals_.append(local)
        cols.append(col)
    local, col = np.concatenate(locals_), np.concatenate(cols)
    if len(sources) > 1:  # the sources may share pairs: keep each one once
        width = max(int(n_cand or 0), int(col.max(initial=-1)) + 1, 1)
        key = local * width + col
        key.sort()
        first = np.ones(len(key), dtype=bool)
        np.not_equal(key[1:], key[:-1], out=first[1:])
        local, col = np.divmod(key[first], width)
    # (One canonical CSR source has distinct pairs, grouped by query row.)
    indptr = np.zeros(n_queries + 1, dtype=np.int64)
    np.cumsum(np.bincount(local, minlength=n_queries), out=indptr[1:])
    return indptr, col


# -------------------------------------------------------------------- top-k
def _blocked_top_k(
    U: torch.Tensor,
    ub: torch.Tensor | None,
    V: torch.Tensor,
    vb: torch.Tensor | None,
    n: int,
    exclude: tuple[np.ndarray, np.ndarray] | None,
    block_rows: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``n`` of ``U V^T + ub + vb`` per row, block by block (tensors in)."""
    m, c = U.shape[0], V.shape[0]
    device = U.device
    values = torch.empty((m, n), dtype=U.dtype, device=device)
    index = torch.empty((m, n), dtype=torch.int64, device=device)
    if m == 0 or n == 0:
        return values, index
    if block_rows is None:
        block_rows = _BLOCK_BYTES // max(1, c * U.element_size())
    block_rows = max(1, int(block_rows))
    if exclude is not None:
        indptr, cols = exclude
        ex_rows = _to_device(
            np.repeat(np.arange(m, dtype=np.int64), np.diff(indptr)), device
        )
        ex_cols = _to_device(cols.astype(np.int64, copy=False), device)
    VT = V.T
    for s in range(0, m, block_rows):
        e = min(m, s + block_rows)
        if vb is None:
            S = U[s:e] @ VT
        else:
            S = torch.addmm(vb[None, :], U[s:e], VT)
        if ub is not None:
            S.add_(ub[s:e, None])
        if exclude is not None:
            lo, hi = int(indptr[s]), int(indptr[e])
            if hi > lo:
                S[ex_rows[lo:hi] - s, ex_cols[lo:hi]] = -torch.inf
        values[s:e], index[s:e] = torch.topk(S, n, dim=1, sorted=True)
    return values, index


def _finish(values: torch.Tensor, index: torch.Tensor):
    """NumPy (float64 scores, int64 positions), padding as (NaN, -1)."""
    scores = values.cpu().to(torch.float64).numpy()  # on the CPU: MPS has no float64
    positions = index.to("cpu").numpy()
    pad = np.isneginf(scores)
    if pad.any():
        scores[pad] = np.nan
        positions[pad] = -1
    return scores, positions


def _n_columns(n: int, n_candidates: int, indptr: np.ndarray | None) -> int:
    """min(n, the most candidates any query has left after exclusion)."""
    if indptr is None or len(indptr) <= 1:
        return min(n, n_candidates)
    left = n_candidates - np.diff(indptr)
    return int(min(n, max(int(left.max()), 0)))


def top_k(
    U: np.ndarray,
    ub: np.ndarray,
    V: np.ndarray,
    vb: np.ndarray,
    n: int,
    exclude: tuple[np.ndarray, np.ndarray] | None,
    device: torch.device,
    block_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best candidates of each query by ``U V^T + ub[:, None] + vb``.

    Parameters
    ----------
    U, ub : ndarray of shape (m, k) and (m,)
        Query factors and offsets (zeros for an unknown user).
    V, vb : ndarray of shape (c, k) and (c,)
        Candidate factors and offsets.
    n : int
        Number of candidates wanted per query.
    exclude : (indptr, columns) or None
        Candidate positions to leave out for each query (CSR, distinct).
    device : torch.device
        Where to compute.
    block_rows : int or None
        Queries per block; None fits a block in ``_BLOCK_BYTES``.

    Returns
    -------
    scores : ndarray of float64 of shape (m, n_cols)
        Sorted in decreasing order; NaN on padding.
    positions : ndarray of int64 of shape (m, n_cols)
        Candidate positions; -1 on padding. ``n_cols`` is ``min(n, the most
        candidates left to any query)``: a query with fewer candidates left
        than ``n_cols`` is padded at the end of its row.
    """
    dtype = torch.float64 if U.dtype == np.float64 else torch.float32
    n_cols = _n_columns(n, V.shape[0], None if exclude is None else exclude[0])
    values, index = _blocked_top_k(
        _to_device(U, device, dtype),
        _to_device(ub, device, dtype),
        _to_device(V, device, dtype),
        _to_device(vb, device, dtype),
        n_cols,
        exclude,
        block_rows,
    )
    return _finish(values, index)


def similar_rows(
    V: np.ndarray,
    query: np.ndarray,
    n: int,
    device: torch.device,
    block_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` rows of ``V`` of highest cosine similarity to each ``V[query]``.

    Each query row is excluded from its own result. A zero row has cosine 0
    with every row.

    Returns
    -------
    similarities : ndarray of float64 of shape (len(query), min(n, len(V) - 1))
    positions : ndarray of int64, same shape
    """
    dtype = torch.float64 if V.dtype == np.float64 else torch.float32
    Vt = _to_device(V, device, dtype)
    norms = torch.linalg.vector_norm(Vt, dim=1, keepdim=True)
    Vn = Vt / norms.clamp_min(torch.finfo(dtype).tiny)
    query = np.asarray(query, dtype=np.int64)
    Qn = Vn[_to_device(query, device)]
    exclude = (np.arange(len(query) + 1, dtype=np.int64), query)
    n_cols = min(n, max(V.shape[0] - 1, 0))
    values, index = _blocked_top_k(Qn, None, Vn, None, n_cols, exclude, block_rows)
    return _finish(values, index)


# ------------------------------------------------------------------ fold-in
def fold_in(
    rows: np.ndarray,
    other: np.ndarray,
    ratings: np.ndarray,
    weights: np.ndarray | None,
    n_rows: int,
    Y: np.ndarray,
    by: np.ndarray,
    mu: float,
    *,
    alpha: float,
    alpha_bias: float,
    scaling: str,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    """Factors and biases of new rows: the exact ALS row update, other side fixed.

    Row ``r`` gets the minimizer of
    ``sum_j w_rj (r_rj - mu - by_j - b_r - x_r . y_j)^2
    + c_r (alpha |x_r|^2 + alpha_bias b_r^2)`` over its ratings, with
    ``c_r`` = 1, ``n_r`` or ``sqrt(n_r)`` (``scaling`` "none", "count",
    "sqrt") and ``n_r`` the weighted number of its ratings. Rows without a
    rating get zeros.

    Parameters
    ----------
    rows : ndarray of int64
        Row (0..n_rows-1) of each rating.
    other : ndarray of int64
        Index into ``Y`` of each rating.
    ratings, weights : ndarray of float64
        Rating values and weights (None: unit weights).
    n_rows : int
        Number of rows to solve.
    Y, by, mu : ndarray, ndarray, float
        The fixed other side: factors, biases, the intercept.
    alpha, alpha_bias : float
        Penalty strengths.
    scaling : {"none", "count", "sqrt"}
        How the penalty of a row scales with its number of ratings.
    device : torch.device
        Where to compute.

    Returns
    -------
    X : ndarray of shape (n_rows, k), dtype of ``Y``
    bx : ndarray of shape (n_rows,)
    """
    k = Y.shape[1]
    np_dtype = Y.dtype
    dtype = torch.float64 if np_dtype == np.float64 else torch.float32
    X = torch.zeros((n_rows, k), dtype=dtype, device=device)
    bx = torch.zeros(n_rows, dtype=dtype, device=device)
    if n_rows and len(ratings):
        # Only the rows of the other side that were rated take part: the work
        # is O(ratings), not O(len(Y)), which matters for a single new user.
        used, other = np.unique(np.asarray(other, np.int64), return_inverse=True)
        Y, by = Y[used], by[used]
        rows_t = _to_device(np.asarray(rows, np.int64), device)
        other_t = _to_device(other.astype(np.int64, copy=False), device)
        r_t = _to_device(ratings, device, dtype)
        w_t = None if weights is None else _to_device(weights, device, dtype)
        data = Ratings(rows_t, other_t, r_t, w_t, n_rows, Y.shape[0])
        penalty = Penalty.build(data, alpha, alpha_bias, scaling)
        groups = RowGroups(
            rows_t, other_t, r_t, w_t, n_rows, Y.shape[0], penalty.user_coef,
            alpha, alpha_bias, k,
        )  # fmt: skip
        _solve_rows(
            groups, X, bx, _to_device(Y, device, dtype), _to_device(by, device, dtype),
            torch.tensor(mu, dtype=dtype, device=device),
        )  # fmt: skip
    return (
        X.to("cpu").numpy().astype(np_dtype, copy=False),
        bx.to("cpu").numpy().astype(np_dtype, copy=False),
    )


# ----------------------------------------------------------------- SGD pass
def sgd_pass(
    P: np.ndarray,
    Q: np.ndarray,
    bu: np.ndarray,
    bi: np.ndarray,
    mu: float,
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    weights: np.ndarray | None,
    user_share: np.ndarray,
    item_share: np.ndarray,
    *,
    alpha: float,
    alpha_bias: float,
    learning_rate: float,
    batch_size: int,
    seed: int,
    frozen_users: np.ndarray,
    frozen_items: np.ndarray,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One epoch of the SGD solver over ``ratings``; mu and frozen rows fixed.

    Each rating of user ``u`` carries the share ``user_share[u] * w_ui`` of the
    user's penalty (likewise for items), so that the ratings of a full epoch
    over all of a row's ratings add up to its penalty in the objective. The
    steps are those of :class:`skmf._solvers.SGDStep`.

    Returns
    -------
    P, Q, bu, bi : ndarrays
        Updated copies (frozen rows unchanged).
    """
    np_dtype = P.dtype
    dtype = torch.float64 if np_dtype == np.float64 else torch.float32
    F = Factors(
        _to_device(P, device, dtype).clone(),
        _to_device(Q, device, dtype).clone(),
        _to_device(bu, device, dtype).clone(),
        _to_device(bi, device, dtype).clone(),
        torch.tensor(mu, dtype=dtype, device=device),
    )
    data = Ratings(
        _to_device(np.asarray(users, np.int64), device),
        _to_device(np.asarray(items, np.int64), device),
        _to_device(ratings, device, dtype),
        None if weights is None else _to_device(weights, device, dtype),
        P.shape[0],
        Q.shape[0],
    )
    # SGDStep spreads penalty.coef[row] over the row's weight W in the batch
    # data (share = coef / W); ask for coef = share * W to get ``share``.
    wu, wi = data.row_weights()
    penalty = Penalty(
        float(alpha),
        float(alpha_bias),
        _to_device(user_share, device, dtype) * wu,
        _to_device(item_share, device, dtype) * wi,
    )
    step = SGDStep(
        F,
        data,
        penalty,
        frozen_users=_to_device(np.asarray(frozen_users, np.int64), device),
        frozen_items=_to_device(np.asarray(frozen_items, np.int64), device),
        learning_rate=learning_rate,
        batch_size=batch_size,
        fit_intercept=False,
        generator=torch.Generator().manual_seed(int(seed)),
    )
    step(0)

    def out(t: torch.Tensor) -> np.ndarray:
        return t.to("cpu").numpy().astype(np_dtype, copy=False)

    return out(F.P), out(F.Q), out(F.bu), out(F.bi)
