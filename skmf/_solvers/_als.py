"""Alternating least squares with biases, batched on the device.

One sweep solves, for every user at once, the ridge problem in (p_u, b_u)
with the items fixed, then the same for every item, then sets mu to its
closed form. Each block update is the exact minimiser of the objective in
that block, so the objective never increases.

For user u with ratings K_u, z_i = [q_i, 1] and t_ui = r_ui - mu - b_i:

    (sum_i w_ui z_i z_i^T + diag(alpha c_u, ..., alpha c_u, alpha_bias c_u))
        [p_u, b_u] = sum_i w_ui t_ui z_i

The Gram matrices are built with batched GEMMs (``torch.bmm``) over rows
grouped by their number of ratings (padding at most ~25 %), and solved with a
batched Cholesky factorisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from skmf._solvers._common import Factors, Penalty, Ratings

__all__ = ["ALSStep", "RowGroups"]

# Padded bucket lengths: every length up to 8, then a geometric grid (x1.2).
_GRID_RATIO = 1.2
# Upper bound on the values in one gathered block (B x L x (k + 2)): on the CPU
# small enough for the block to stay in cache between the gather and the GEMM
# (measured fastest on ML-1M), on a GPU large enough to keep it busy.
_BLOCK_VALUES = {"cpu": 1 << 18, "other": 1 << 25}


def _length_grid(max_len: int) -> list[int]:
    grid = list(range(1, 9))
    while grid[-1] < max_len:
        grid.append(max(grid[-1] + 1, int(grid[-1] * _GRID_RATIO)))
    return grid


@dataclass
class _Block:
    rows: torch.Tensor  # (B,) indices of the rows solved in this block
    other: torch.Tensor  # (B, L) index of the other side, padding -> 0
    sw: torch.Tensor  # (B, L) sqrt(weight), 0 on padding
    r: torch.Tensor  # (B, L) rating * sqrt(weight), 0 on padding


class RowGroups:
    """The ratings of one side (users or items), grouped into padded blocks."""

    def __init__(self, row, other, rating, weight, n_rows: int, n_components: int):
        device, dtype = rating.device, rating.dtype
        order = torch.argsort(row, stable=True)
        row_s, other_s = row[order], other[order]
        sw_s = torch.ones_like(rating) if weight is None else weight[order].sqrt()
        r_s = rating[order] * sw_s
        counts = torch.bincount(row_s, minlength=n_rows)
        starts = torch.cumsum(counts, 0) - counts
        counts_cpu = counts.cpu()
        grid = torch.tensor(_length_grid(int(counts_cpu.max()) if n_rows else 1))
        bucket = torch.bucketize(counts_cpu, grid)  # grid[bucket] >= count
        # Sentinel position n -> padding (other 0, sqrt-weight 0, rating 0).
        n = row.shape[0]
        other_x = torch.cat([other_s, other_s.new_zeros(1)])
        sw_x = torch.cat([sw_s, sw_s.new_zeros(1)])
        r_x = torch.cat([r_s, r_s.new_zeros(1)])
        self.blocks: list[_Block] = []
        for b in torch.unique(bucket[counts_cpu > 0]).tolist():
            rows = torch.nonzero(bucket == b).flatten()
            rows = rows[counts_cpu[rows] > 0]
            length = int(grid[b])
            budget = _BLOCK_VALUES["cpu" if device.type == "cpu" else "other"]
            per_block = max(1, budget // (length * (n_components + 2)))
            for s in range(0, rows.shape[0], per_block):
                rb = rows[s : s + per_block].to(device)
                ar = torch.arange(length, device=device)
                pos = starts[rb, None] + ar
                pos = torch.where(ar < counts[rb, None], pos, n)
                self.blocks.append(_Block(rb, other_x[pos], sw_x[pos], r_x[pos]))
        self.dtype = dtype
        self.weighted = weight is not None


def _solve_rows(
    groups: RowGroups,
    X: torch.Tensor,
    bx: torch.Tensor,
    Y: torch.Tensor,
    by: torch.Tensor,
    mu: torch.Tensor,
    coef: torch.Tensor,
    alpha: float,
    alpha_bias: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Set X[rows], bx[rows] to the ridge solution given the other side (Y, by).

    One batched GEMM per block gives the Gram matrix, the right-hand side and
    the residuals' statistics at once: with G = sqrt(w) [z, t] (z = [y, 1],
    t = r - mu - b_other), G^T G holds sum w z z^T, sum w t z and sum w t^2.

    Returns
    -------
    sse, se : 0-d float64 tensors
        sum w e^2 and sum w e of the residuals e = r - r_hat after the update.
    """
    k = X.shape[1]
    # Z = [Y, 1, -(mu + by)], plus a zero row that padding entries point to.
    Z = torch.cat([Y, torch.ones_like(by)[:, None], -(mu + by)[:, None]], 1)
    Z = torch.cat([Z, Z.new_zeros(1, k + 2)])
    pad = Y.shape[0]
    reg = torch.full((k + 1,), alpha, dtype=X.dtype, device=X.device)
    reg[k] = alpha_bias
    sse = torch.zeros((), dtype=torch.float64, device=X.device)
    se = torch.zeros((), dtype=torch.float64, device=X.device)
    for blk in groups.blocks:
        B, L = blk.other.shape
        index = torch.where(blk.sw > 0, blk.other, pad).view(-1)
        G = Z.index_select(0, index).view(B, L, k + 2)
        if groups.weighted:
            G[..., k + 1].mul_(blk.sw).add_(blk.r)
            G[..., : k + 1].mul_(blk.sw[..., None])
        else:
            G[..., k + 1].add_(blk.r)
        A = torch.bmm(G.mT, G)  # (B, k + 2, k + 2)
        gram = A[:, : k + 1, : k + 1]
        rhs = A[:, : k + 1, k + 1]
        tt = A[:, k + 1, k + 1]
        system = gram + torch.diag_embed(coef[blk.rows, None] * reg)
        chol, info = torch.linalg.cholesky_ex(system)
        x = torch.cholesky_solve(rhs[..., None], chol).squeeze(-1)
        bad = info > 0
        if bool(bad.any()):  # singular system (alpha = 0): least-norm solution
            x[bad] = (torch.linalg.pinv(system[bad]) @ rhs[bad, :, None]).squeeze(-1)
        X[blk.rows] = x[:, :k]
        bx[blk.rows] = x[:, k]
        # Residuals of these rows: |t - z x|^2_w = t't - 2 x'rhs + x'(z'z)x.
        gx = torch.bmm(gram, x[..., None]).squeeze(-1)
        rss = tt - 2 * (x * rhs).sum(1) + (x * gx).sum(1)
        sse += rss.clamp_min(0).sum(dtype=torch.float64)
        se += (rhs[:, k] - (gram[:, k] * x).sum(1)).sum(dtype=torch.float64)
    return sse, se


class ALSStep:
    """One ALS sweep: users, items, then the intercept."""

    def __init__(
        self, F: Factors, data: Ratings, penalty: Penalty, *, fit_intercept: bool
    ):
        k = F.P.shape[1]
        self.F, self.data, self.penalty = F, data, penalty
        self.fit_intercept = fit_intercept
        self.total_weight = data.total_weight
        self.by_user = RowGroups(
            data.user, data.item, data.rating, data.weight, data.n_users, k
        )
        self.by_item = RowGroups(
            data.item, data.user, data.rating, data.weight, data.n_items, k
        )

    def __call__(self, iteration: int) -> float:
        F, pen = self.F, self.penalty
        _solve_rows(
            self.by_user, F.P, F.bu, F.Q, F.bi, F.mu,
            pen.user_coef, pen.alpha, pen.alpha_bias,
        )  # fmt: skip
        sse, se = _solve_rows(
            self.by_item, F.Q, F.bi, F.P, F.bu, F.mu,
            pen.item_coef, pen.alpha, pen.alpha_bias,
        )  # fmt: skip
        if self.fit_intercept:
            # mu minimises sum w (e - delta)^2: delta = sum w e / W.
            delta = se / self.total_weight
            F.mu.add_(delta.to(F.mu.dtype))
            sse = sse - self.total_weight * delta**2
        # The exact objective, from the residual statistics of the last pass.
        return (float(sse) + pen.value(F)) / self.total_weight
