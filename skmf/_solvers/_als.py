"""Alternating least squares with biases, batched on the device.

One sweep solves, for every user at once, the ridge problem in (p_u, b_u)
with the items fixed, then the same for every item, then sets mu to its
closed form. Each block update is the exact minimiser of the objective in
that block, so the objective never increases.

For user u with ratings K_u, z_i = [q_i, 1] and t_ui = r_ui - mu - b_i:

    (sum_i w_ui z_i z_i^T + diag(alpha c_u, ..., alpha c_u, alpha_bias c_u))
        [p_u, b_u] = sum_i w_ui t_ui z_i

The rows are grouped by their number of ratings into padded blocks (padding
at most ~20 %); for each block one gather and one batched GEMM
(``torch.bmm``) give the Gram matrices, the right-hand sides and the residual
statistics at once, and one batched Cholesky factorisation solves them.
Everything that does not change between sweeps (the padded gather indices and
the ratings) is built once per fit; the penalty is given to each solve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from skmf._data import as_int32, group_by_row
from skmf._solvers._comm import LOCAL
from skmf._solvers._common import Factors, Penalty, Ratings, Step, accumulator_dtype

__all__ = [
    "ALSStep",
    "RowGroups",
    "group_ratings",
    "rating_matmul",
    "residual_stats",
    "solve_rows",
]

# Padded bucket lengths: every length up to 8, then a geometric grid (x1.2).
_GRID_RATIO = 1.2
# Upper bound on the values in one gathered block (B x L x (k + 2)): on the CPU
# small enough for the block to stay in cache between the gather and the GEMM
# while keeping the per-block overhead small (measured fastest on ML-1M), on a
# GPU large enough to keep it busy.
_BLOCK_VALUES = {"cpu": 1 << 19, "other": 1 << 25}
# Fewest padded ratings per group of merged length buckets: a block costs about
# 15 tensor calls (~150 us on a CPU, more launches than work on a GPU). 2^14
# was fastest on MovieLens 100K and 1M on 2 CPU cores (100K: 46 -> 32 ms a fit).
_MIN_GROUP_RATINGS = {"cpu": 1 << 14, "other": 1 << 20}


def _merge_buckets(bucket, counts, grid, min_ratings: int):
    """Groups of rows, each padded to one length: (row indices, length).

    Consecutive length buckets are merged, from the shortest, until a group
    holds at least ``min_ratings`` padded ratings, so that rare lengths (a few
    very active users, the most popular items) do not each pay a block's fixed
    cost; the padding this adds is at most about ``min_ratings`` per group.
    Rows without ratings are left out.
    """
    rated = counts > 0
    order = torch.argsort(bucket[rated], stable=True)
    rows = torch.nonzero(rated).flatten()[order]
    row_bucket = bucket[rows]
    ids, sizes = torch.unique_consecutive(row_bucket, return_counts=True)
    ids, sizes, lengths = ids.tolist(), sizes.tolist(), grid.tolist()
    groups, start, n_rows = [], 0, 0
    for j, (b, size) in enumerate(zip(ids, sizes)):
        n_rows += size
        if n_rows * lengths[b] >= min_ratings or j == len(ids) - 1:
            groups.append((rows[start : start + n_rows], lengths[b]))
            start, n_rows = start + n_rows, 0
    return groups


def _length_grid(max_len: int) -> list[int]:
    grid = list(range(1, 9))
    while grid[-1] < max_len:
        grid.append(max(grid[-1] + 1, int(grid[-1] * _GRID_RATIO)))
    return grid


@dataclass
class _Block:
    rows: torch.Tensor  # (B,) indices of the rows solved in this block
    index: torch.Tensor  # (B * L,) row of the other side (int32 on the CPU);
    # padding -> n_other
    sw: torch.Tensor | None  # (B, L) sqrt(weight), 0 on padding; None: unweighted
    r: torch.Tensor  # (B, L) rating * sqrt(weight), 0 on padding


def _row_order(
    row: torch.Tensor, other: torch.Tensor, n_rows: int, n_other: int, codes=None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple | None]:
    """The ratings in row order: positions, row counts, other side's rows.

    Returns the positions of the ratings sorted by row (stable), the number
    of ratings of each row, ``other`` in that order followed by the sentinel
    ``n_other`` (the zero row padding points to), and the CSR arrays
    (indptr int64, columns int32) of the pairs when they come for free. On
    the CPU a counting sort (:func:`skmf._data.group_by_row`, int32
    positions and rows, on the int32 ``codes`` (row, other) when given);
    elsewhere, or when it cannot, torch's stable sort (and no CSR arrays).
    """
    if row.device.type == "cpu":
        rows, others = codes if codes is not None else (row.numpy(), other.numpy())
        grouped = group_by_row(rows, others, n_rows, spare=1)
        if grouped is not None:
            indptr, other_x, order = grouped
            other_x[-1] = n_other
            return (
                torch.from_numpy(order),
                torch.from_numpy(np.diff(indptr)),
                torch.from_numpy(other_x),
                (indptr, other_x[:-1]),
            )
    key = row.int() if n_rows < 2**31 else row
    order = torch.argsort(key, stable=True)
    counts = torch.bincount(row, minlength=n_rows)
    return order, counts, _gather_padded(other, order, n_other), None


def int32_codes(data) -> tuple[np.ndarray, np.ndarray] | None:
    """The user and item codes of CPU ratings as int32 arrays (None: not
    CPU, or too many rows), converted once for both sides' grouping."""
    if data.user.device.type != "cpu" or max(data.n_users, data.n_items) >= 2**31:
        return None
    return as_int32(data.user.numpy()), as_int32(data.item.numpy())


def _gather_padded(values: torch.Tensor, order: torch.Tensor, fill) -> torch.Tensor:
    """``values[order]`` followed by ``fill`` (one allocation)."""
    out = values.new_empty(order.shape[0] + 1)
    torch.index_select(values, 0, order, out=out[:-1])
    out[-1] = fill
    return out


class RowGroups:
    """The ratings of one side (users or items), grouped into padded blocks.

    Parameters
    ----------
    row, other : int64 tensors of shape (n,)
        Index of the row being solved (user for the user side) and of the
        other side, for each rating.
    rating, weight : float tensors of shape (n,)
        Ratings and sample weights (None: unit weights).
    n_rows, n_other : int
        Number of rows on each side.
    n_components : int
        Number of factors k (sizes the blocks).
    codes : (ndarray, ndarray) of int32 or None
        ``row`` and ``other`` as int32 arrays, if already converted (see
        :func:`int32_codes`).
    keep_pairs : bool
        Keep the pairs as CSR arrays (``csr``) when the counting sort made
        them (4 bytes a rating, held as long as the groups).
    """

    def __init__(
        self,
        row: torch.Tensor,
        other: torch.Tensor,
        rating: torch.Tensor,
        weight: torch.Tensor | None,
        n_rows: int,
        n_other: int,
        n_components: int,
        codes: tuple[np.ndarray, np.ndarray] | None = None,
        keep_pairs: bool = False,
    ):
        device = rating.device
        k = n_components
        n = row.shape[0]
        # The ratings in row order (a stable counting sort), each array
        # followed by the sentinel position n -> padding: the zero row n_other
        # of the gathered matrix (int32 rows on the CPU), rating 0,
        # sqrt-weight 0.
        order, counts, other_x, csr = _row_order(row, other, n_rows, n_other, codes)
        #: The pairs (row, other) as CSR arrays (indptr int64, the other side's
        #: rows int32, in input order within a row), or None: the rated pairs
        #: the estimator keeps, from the counting sort already made.
        self.csr = csr if keep_pairs else None
        sw = None if weight is None else weight.sqrt()
        sw_x = None if sw is None else _gather_padded(sw, order, 0)
        r_x = _gather_padded(rating if sw is None else rating * sw, order, 0)
        del order
        starts = torch.cumsum(counts, 0) - counts
        counts_cpu = counts.cpu()
        grid = torch.tensor(
            _length_grid(int(counts_cpu.max()) if n_rows else 1), device="cpu"
        )
        bucket = torch.bucketize(counts_cpu, grid)  # grid[bucket] >= count
        kind = "cpu" if device.type == "cpu" else "other"
        budget = _BLOCK_VALUES[kind]
        self.blocks: list[_Block] = []
        for rows, length in _merge_buckets(
            bucket, counts_cpu, grid, _MIN_GROUP_RATINGS[kind]
        ):
            per_block = max(1, budget // (length * (k + 2)))
            ar = torch.arange(length, device=device)
            for s in range(0, rows.shape[0], per_block):
                rb = rows[s : s + per_block].to(device)
                # Positions in row order, n on padding (index_select on flat
                # indices is about 3x faster than advanced indexing).
                pos = torch.where(ar < counts[rb, None], starts[rb, None] + ar, n)
                pos = pos.view(-1)
                shape = (rb.shape[0], length)
                self.blocks.append(
                    _Block(
                        rows=rb,
                        index=other_x.index_select(0, pos),
                        sw=None
                        if sw_x is None
                        else sw_x.index_select(0, pos).view(shape),
                        r=r_x.index_select(0, pos).view(shape),
                    )
                )
        self.n_rows, self.n_other = n_rows, n_other


def design_matrix(Y: torch.Tensor, by: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """Z = [Y, 1, -(mu + by)], plus the zero row n_other that padding points to."""
    k = Y.shape[1]
    Z = torch.empty((Y.shape[0] + 1, k + 2), dtype=Y.dtype, device=Y.device)
    Z[:-1, :k] = Y
    Z[:-1, k] = 1
    torch.neg(by, out=Z[:-1, k + 1]).sub_(mu)
    Z[-1] = 0
    return Z


def block_gram(blk: _Block, Z: torch.Tensor) -> torch.Tensor:
    """G^T G for G = sqrt(w) [z, t] gathered over the ratings of one block.

    With z = [y, 1] and t = r - mu - b_other, the (B, k + 2, k + 2) result
    holds sum w z z^T, sum w t z and sum w t^2 of every row of the block.
    """
    B, L = blk.r.shape
    m = Z.shape[1]
    G = Z.index_select(0, blk.index).view(B, L, m)
    if blk.sw is not None:
        G[..., m - 1].mul_(blk.sw).add_(blk.r)
        G[..., : m - 1].mul_(blk.sw[..., None])
    else:
        G[..., m - 1].add_(blk.r)
    return torch.bmm(G.mT, G)


def residual_stats(
    A: torch.Tensor, gram: torch.Tensor, rhs: torch.Tensor, x: torch.Tensor, acc
) -> tuple[torch.Tensor, torch.Tensor]:
    """sum w e^2 and sum w e of the residuals e = t - z x, for any rows x.

    From the block's G^T G (``A``): |t - z x|^2_w = t't - 2 x'(sum w t z) +
    x' gram x, and sum_w (t - z x) = sum w t - (gram x)_b; ``gram`` is the
    Gram part, ``rhs`` = sum w t z, ``x`` of shape (B, k + 1).
    """
    k = x.shape[1] - 1
    gx = torch.bmm(gram, x[..., None]).squeeze(-1)
    rss = A[:, k + 1, k + 1] - 2 * (x * rhs).sum(1) + (x * gx).sum(1)
    return rss.clamp_min(0).sum(dtype=acc), (A[:, k, k + 1] - gx[:, k]).sum(dtype=acc)


def penalty_diagonal(
    alpha: float, alpha_bias: float, k: int, like: torch.Tensor
) -> torch.Tensor:
    """[alpha, ..., alpha, alpha_bias]: the penalty diagonal of a row with c = 1."""
    diag = torch.full((k + 1,), float(alpha), dtype=like.dtype, device=like.device)
    diag[k] = float(alpha_bias)
    return diag


def solve_rows(
    groups: RowGroups,
    X: torch.Tensor,
    bx: torch.Tensor,
    Y: torch.Tensor,
    by: torch.Tensor,
    mu: torch.Tensor,
    coef: torch.Tensor,
    diag: torch.Tensor,
    *,
    stats: bool = False,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Set X[rows], bx[rows] to the ridge solution given the other side (Y, by).

    Row u's penalty diagonal is ``coef[u] * diag`` (see :func:`penalty_diagonal`).

    One batched GEMM per block gives the Gram matrix, the right-hand side and
    the residuals' statistics at once: with G = sqrt(w) [z, t] (z = [y, 1],
    t = r - mu - b_other), G^T G holds sum w z z^T, sum w t z and sum w t^2.

    Returns
    -------
    sse, se : 0-d tensors (float64, float32 on MPS), or None
        With ``stats=True``, sum w e^2 and sum w e of the residuals
        e = r - r_hat after the update.
    """
    k = Y.shape[1]
    Z = design_matrix(Y, by, mu)
    singular = (k * torch.finfo(Y.dtype).eps) ** 0.5
    sse = se = None
    if stats:
        acc = accumulator_dtype(X.device)
        sse = torch.zeros((), dtype=acc, device=X.device)
        se = torch.zeros((), dtype=acc, device=X.device)
    for blk in groups.blocks:
        A = block_gram(blk, Z)  # (B, k + 2, k + 2)
        system = A[:, : k + 1, : k + 1]  # the Gram matrix, then the system
        rhs = A[:, : k + 1, k + 1 :]
        reg = coef[blk.rows, None] * diag
        system.diagonal(dim1=1, dim2=2).add_(reg)
        chol, info = torch.linalg.cholesky_ex(system)
        x = torch.cholesky_solve(rhs, chol)
        # Numerically singular systems (alpha = 0 with fewer ratings than
        # factors, or collinear factors) can pass the factorisation with tiny
        # pivots and give huge solutions. The pivots of the system scaled to a
        # unit diagonal, L_jj / sqrt(A_jj), bound its condition number
        # (cond >= 1 / min^2) whatever the units of the ratings: take the
        # least-norm solution where that exceeds 1 / (n eps).
        scaled = chol.diagonal(dim1=1, dim2=2) / system.diagonal(dim1=1, dim2=2).sqrt()
        bad = (info > 0) | ~(scaled.amin(1) > singular)
        if bool(bad.any()):
            x[bad] = torch.linalg.pinv(system[bad], hermitian=True) @ rhs[bad]
        x = x.squeeze(-1)
        X[blk.rows] = x[:, :k]
        bx[blk.rows] = x[:, k]
        if stats:
            # With system x = rhs, the Gram part gives gram x = rhs - D x, so
            # |t - z x|^2_w = t't - x'rhs - x'D x and sum_w (t - z x) = D_b x_b.
            dx = reg * x
            rhs = rhs.squeeze(-1)
            rss = A[:, k + 1, k + 1] - (x * rhs).sum(1) - (x * dx).sum(1)
            sse += rss.clamp_min(0).sum(dtype=acc)
            se += dx[:, k].sum(dtype=acc)
    return (sse, se) if stats else None


def group_ratings(
    data: Ratings,
    n_components: int,
    by_item: Ratings | None = None,
    *,
    keep_pairs: bool = False,
) -> tuple[RowGroups, RowGroups]:
    """The ratings grouped by user and by item, for the ALS updates.

    ``by_item``: the ratings to group by item when they are not ``data``'s
    (a process of a sharded fit holds its items' ratings apart; their items
    are ``by_item.user``, their users ``by_item.item``). ``keep_pairs``: keep
    the (user, item) pairs of ``data`` as CSR arrays (``csr`` of the user
    side) when the counting sort makes them.
    """
    codes = int32_codes(data)
    by_user = RowGroups(
        data.user, data.item, data.rating, data.weight, data.n_users,
        data.n_items, n_components, codes, keep_pairs=keep_pairs,
    )  # fmt: skip
    if by_item is None:  # the same ratings, the other way round
        by_item = Ratings(
            data.item, data.user, data.rating, data.weight, data.n_items,
            data.n_users,
        )  # fmt: skip
        codes = None if codes is None else codes[::-1]
    else:
        codes = int32_codes(by_item)
    return by_user, RowGroups(
        by_item.user, by_item.item, by_item.rating, by_item.weight,
        by_item.n_users, by_item.n_items, n_components, codes,
    )  # fmt: skip


def rating_matmul(groups: RowGroups, M: torch.Tensor, mu: float) -> torch.Tensor:
    """R @ M for the matrix R of weighted, centred ratings of ``groups``.

    Row u of the result is sum_j w_uj (r_uj - mu) M[j] over the ratings of
    row u: R[u, j] = w_uj (r_uj - mu), summed over repeated (u, j) pairs, so
    that an integer weight is the same as repeating the rating. One gather and
    one batched GEMM per block, as in the ALS update.
    """
    m = M.shape[1]
    Mx = torch.cat([M, M.new_zeros(1, m)])
    out = M.new_zeros(groups.n_rows, m)
    for blk in groups.blocks:
        B, L = blk.r.shape
        if blk.sw is None:
            rated = (blk.index != groups.n_other).view(B, L).to(blk.r.dtype)
            values = blk.r - mu * rated
        else:  # blk.r = sqrt(w) r
            values = blk.sw * (blk.r - mu * blk.sw)
        gathered = Mx.index_select(0, blk.index).view(B, L, m)
        out[blk.rows] = torch.bmm(values[:, None, :], gathered).squeeze(1)
    return out


class ALSStep(Step):
    """One ALS sweep: users, items, then the intercept.

    ``groups`` (the ratings grouped by user and by item) are built from
    ``data`` when not given. With a communicator ``comm`` (see
    :mod:`skmf._solvers._comm`) the step solves the rows this process owns,
    from ``groups`` of its ratings (rows numbered within its ranges), and
    shares them; ``data`` is then this process's part of the ratings.
    """

    def __init__(
        self,
        F: Factors,
        data: Ratings,
        penalty: Penalty,
        *,
        fit_intercept: bool,
        groups: tuple[RowGroups, RowGroups] | None = None,
        comm=LOCAL,
    ):
        k = F.P.shape[1]
        self.F, self.penalty = F, penalty
        self.fit_intercept = fit_intercept
        self.comm = comm
        self.total_weight = float(comm.sum(data.total_weight)[0])
        self.by_user, self.by_item = groups or group_ratings(data, k)
        self.diag = penalty_diagonal(penalty.alpha, penalty.alpha_bias, k, F.P)

    def __call__(self, iteration: int) -> float:
        F, pen, diag, comm = self.F, self.penalty, self.diag, self.comm
        u, i = comm.rows("user"), comm.rows("item")
        solve_rows(
            self.by_user, F.P[u], F.bu[u], F.Q, F.bi, F.mu, pen.user_coef[u], diag
        )
        comm.share_rows("user", F.P, F.bu)
        sse, se = solve_rows(
            self.by_item, F.Q[i], F.bi[i], F.P, F.bu, F.mu, pen.item_coef[i], diag,
            stats=True,
        )  # fmt: skip
        comm.share_rows("item", F.Q, F.bi)
        sse, se, penalty = comm.sum(sse, se, self.penalty.value(F, u, i))
        if self.fit_intercept:
            # mu minimises sum w (e - delta)^2: delta = sum w e / W.
            delta = se / self.total_weight
            F.mu.add_(delta.to(F.mu.dtype))
            sse = sse - self.total_weight * delta**2
        # The exact objective, from the residual statistics of the last pass.
        return (float(sse) + float(penalty)) / self.total_weight
