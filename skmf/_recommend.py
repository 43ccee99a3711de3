"""Serving a fitted model: predictions, blocked top-k, similar items.

No scikit-learn here. The functions take the fitted state as NumPy arrays and a
torch device, do the tensor work on that device and return NumPy arrays.

* :func:`predict_codes` computes ``mu + b_u + b_i + p_u . q_i`` for code
  pairs, code -1 meaning unknown.

* :func:`top_k` ranks candidates j for query rows u by
  ``s_uj = a_u . v_j + b_u + c_j`` (for recommending: ``a = p_u``,
  ``b = b_u``, ``v = q_j``, ``c = mu + b_j``). The score matrix is computed
  one block of rows at a time, the block never holding more than
  ``_BLOCK_BYTES`` of scores; excluded (row, candidate) pairs are set to
  ``-inf`` in the block before ``torch.topk``.
* :func:`similar_rows` is :func:`top_k` on L2-normalized factors (cosine
  similarity), each query excluding itself.

Rated pairs are kept as CSR arrays ``(indptr, indices)``: for each user, the
item codes it rated (int32, about 4 bytes per rating).
:func:`rated_pairs` builds them, :func:`add_rated` merges new pairs in, and
:func:`gather_exclusions` turns them into the per-query sets of candidates to
exclude.
"""

from __future__ import annotations

import numpy as np
import torch

from skmf._data import group_by_row
from skmf._device import to_tensor, torch_dtype

__all__ = [
    "add_rated",
    "gather_exclusions",
    "predict_codes",
    "rated_pairs",
    "similar_rows",
    "top_k",
]

# Upper bound on the bytes of one block of scores (rows x candidates).
_BLOCK_BYTES = 1 << 26

# Pairs per chunk in predict: the gathered factor rows stay in the CPU cache.
_PREDICT_CHUNK = 1 << 15


# ------------------------------------------------------------------ predict
def predict_codes(
    u: np.ndarray,
    i: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    bu: np.ndarray,
    bi: np.ndarray,
    mu: float,
    Z: np.ndarray | None = None,
) -> np.ndarray:
    """mu + bu[u] + bi[i] + P[u] . Q[i] in float64, code -1 meaning unknown.

    With ``Z`` (SVD++'s implicit sums z_u), the user's factors are
    P[u] + Z[u]. An unknown user or item contributes zeros (its bias and the
    dot product), so that an unknown user gets mu + b_i. Works through the
    pairs in chunks small enough for the gathered factor rows to stay in the
    CPU cache (about 10M predictions per second on 2 cores).
    """
    out = torch.empty(len(u), dtype=torch.float64, device="cpu")
    Pt, Qt, but, bit, ut_all, it_all = (
        to_tensor(a, "cpu") for a in (P, Q, bu, bi, u, i)
    )
    Zt = None if Z is None else to_tensor(Z, "cpu")
    unknown = bool((ut_all < 0).any() or (it_all < 0).any())
    for s in range(0, len(u), _PREDICT_CHUNK):
        ut, it = ut_all[s : s + _PREDICT_CHUNK], it_all[s : s + _PREDICT_CHUNK]
        if unknown:
            ku, ki = ut >= 0, it >= 0
            ut, it = ut.clamp_min(0), it.clamp_min(0)
        pu, qi = Pt.index_select(0, ut), Qt.index_select(0, it)
        if Zt is not None:
            pu += Zt.index_select(0, ut)
        pred = torch.bmm(pu[:, None, :], qi[:, :, None]).view(-1)
        b_u, b_i = but.index_select(0, ut), bit.index_select(0, it)
        if unknown:
            pred.mul_(ku & ki)
            b_u.mul_(ku)
            b_i.mul_(ki)
        out[s : s + _PREDICT_CHUNK] = pred.add_(b_u).add_(b_i).add_(mu)
    return out.numpy()


# --------------------------------------------------------------- exclusions
def rated_pairs(
    rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int
) -> tuple[np.ndarray, np.ndarray]:
    """The (row, col) pairs as CSR arrays (indptr int64, indices int32).

    Grouped by row with a counting sort (4 bytes per pair plus the row
    pointers). Within a row the columns keep the input's order, and a pair
    given twice is kept twice: :func:`gather_exclusions` makes them distinct.
    """
    rows = np.asarray(rows, np.int64)
    cols = np.asarray(cols, np.int64)
    grouped = group_by_row(rows, cols, int(n_rows))
    if grouped is not None:
        return grouped[0], grouped[1]
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(int(n_rows) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=int(n_rows)), out=indptr[1:])
    return indptr, cols[order].astype(np.int32)


def add_rated(
    rated: tuple[np.ndarray, np.ndarray],
    rows: np.ndarray,
    cols: np.ndarray,
    n_rows: int,
    n_cols: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``rated`` grown to ``n_rows`` rows with the (row, col) pairs added."""
    indptr, indices = rated
    old_rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return rated_pairs(
        np.concatenate([old_rows, np.asarray(rows, np.int64)]),
        np.concatenate([indices.astype(np.int64), np.asarray(cols, np.int64)]),
        n_rows,
        n_cols,
    )


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
    sources: list[tuple[tuple[np.ndarray, np.ndarray], int, np.ndarray]],
    candidate_pos: np.ndarray | None,
    n_queries: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The candidates to exclude for each query row, as CSR (indptr, columns).

    Parameters
    ----------
    sources : list of ((indptr, indices), int, ndarray)
        Each source is the CSR arrays of excluded (row, item code) pairs, the
        number of item codes, and for each query the row to take (-1: none).
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
    for (indptr, indices), n_codes, rows in sources:
        n_cand = n_codes if candidate_pos is None else len(candidate_pos)
        known = np.flatnonzero(rows >= 0)
        local, col = _gather_rows(indptr, indices, rows[known])
        local = known[local]
        if candidate_pos is not None:
            col = candidate_pos[col]
            keep = col >= 0
            local, col = local[keep], col[keep]
        locals_.append(local)
        cols.append(col)
    local, col = np.concatenate(locals_), np.concatenate(cols)
    if len(local):  # sources may repeat pairs (and share them): keep each once
        width = max(int(n_cand or 0), int(col.max(initial=-1)) + 1, 1)
        key = local * width + col
        key.sort()
        first = np.ones(len(key), dtype=bool)
        np.not_equal(key[1:], key[:-1], out=first[1:])
        local, col = np.divmod(key[first], width)
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
        ex_rows = to_tensor(
            np.repeat(np.arange(m, dtype=np.int64), np.diff(indptr)), device
        )
        ex_cols = to_tensor(cols.astype(np.int64, copy=False), device)
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
    dtype = torch_dtype(U.dtype)
    n_cols = _n_columns(n, V.shape[0], None if exclude is None else exclude[0])
    values, index = _blocked_top_k(
        to_tensor(U, device, dtype),
        to_tensor(ub, device, dtype),
        to_tensor(V, device, dtype),
        to_tensor(vb, device, dtype),
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
    dtype = torch_dtype(V.dtype)
    Vt = to_tensor(V, device, dtype)
    norms = torch.linalg.vector_norm(Vt, dim=1, keepdim=True)
    Vn = Vt / norms.clamp_min(torch.finfo(dtype).tiny)
    query = np.asarray(query, dtype=np.int64)
    Qn = Vn[to_tensor(query, device)]
    exclude = (np.arange(len(query) + 1, dtype=np.int64), query)
    n_cols = min(n, max(V.shape[0] - 1, 0))
    values, index = _blocked_top_k(Qn, None, Vn, None, n_cols, exclude, block_rows)
    return _finish(values, index)
