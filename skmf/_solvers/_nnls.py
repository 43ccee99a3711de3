"""Non-negative factors (``positive=True``): batched NNLS row solves for ALS.

With the factors constrained to be >= 0 (the biases stay free), the ALS
update of a row is the non-negative least-squares problem

    min_{x >= 0, b} sum_j w_j (t_j - [x, b] . [y_j, 1])^2
                    + c (alpha |x|^2 + alpha_bias b^2),

a convex quadratic program in k + 1 unknowns: minimize 1/2 v' A v - v' h over
v = [x, b] with x >= 0, A the ALS system and h its right-hand side.
:func:`batched_nnls` solves every row of a block at once on the device:

1. Coordinate descent (Gauss-Seidel on the QP), a few sweeps:
   v_j <- v_j - (A v - h)_j / A_jj, then projected on [0, inf) for a factor.
   Each update is the exact minimizer in that coordinate, so the objective
   never increases, and the iterates converge to the solution.
2. Active-set polish: on the support S the sweeps found (the bias and the
   positive factors) solve A_SS v_S = h_S by Cholesky with the other
   coordinates at 0; where the result is >= 0 on S and the gradient is >= 0
   off S (the KKT conditions), it is the exact solution and the row is done.

Rows not done go back to 1, up to ``max_rounds`` times (then the descent
iterate, already a feasible point of lower objective, is kept). The rows start
from their current values (warm start): between ALS sweeps the support rarely
changes, and one round usually solves every row exactly.

The start of a fit: :func:`nonnegative_start` keeps the positive or the
negative parts of each spectral component, whichever carries more of it
(NNDSVD, Boutsidis and Gallopoulos 2008), and takes |N(0, s^2)| for random
columns.
"""

from __future__ import annotations

import torch

from skmf._solvers._als import (
    ALSStep,
    RowGroups,
    block_gram,
    design_matrix,
    residual_stats,
)
from skmf._solvers._common import Factors, accumulator_dtype

__all__ = ["PositiveALSStep", "batched_nnls", "nnls_rows", "nonnegative_start"]

#: Rounds of (descent sweeps, active-set polish) of one NNLS solve.
MAX_ROUNDS = 30
#: Coordinate-descent sweeps per round.
SWEEPS = 3


def batched_nnls(
    A: torch.Tensor,
    h: torch.Tensor,
    n_constrained: int,
    x0: torch.Tensor | None = None,
    *,
    max_rounds: int = MAX_ROUNDS,
    sweeps: int = SWEEPS,
) -> torch.Tensor:
    """argmin 1/2 v' A v - v' h with v[:n_constrained] >= 0, for a batch.

    Parameters
    ----------
    A : tensor of shape (B, m, m)
        Symmetric positive semi-definite systems.
    h : tensor of shape (B, m)
    n_constrained : int
        The first ``n_constrained`` coordinates are >= 0, the others free.
    x0 : tensor of shape (B, m) or None
        Start (projected on the constraints); None: zeros.

    Returns
    -------
    v : tensor of shape (B, m)
    """
    B, m = h.shape
    dtype = h.dtype
    x = h.new_zeros(B, m) if x0 is None else x0.clone()
    x[:, :n_constrained].clamp_(min=0)
    if B == 0:
        return x
    d = A.diagonal(dim1=1, dim2=2)
    d_inv = torch.where(d > 0, 1 / d.clamp_min(torch.finfo(dtype).tiny), 0)
    eps = torch.finfo(dtype).eps ** 0.5
    constrained = torch.zeros(m, dtype=torch.bool, device=h.device)
    constrained[:n_constrained] = True
    rows = torch.arange(B, device=h.device)  # rows not solved exactly yet
    for _ in range(max_rounds):
        Ar, hr, xr, dr = A[rows], h[rows], x[rows], d_inv[rows]
        for _ in range(sweeps):
            for j in range(m):
                g = (Ar[:, j, :] * xr).sum(1) - hr[:, j]
                xj = xr[:, j] - g * dr[:, j]
                xr[:, j] = xj.clamp_min(0) if j < n_constrained else xj
        # Polish on the support: the unconstrained solve with the rest at 0.
        support = (xr > 0) | ~constrained
        s = support.to(dtype)
        As = Ar * (s[:, :, None] * s[:, None, :]) + torch.diag_embed(1 - s)
        chol, info = torch.linalg.cholesky_ex(As)
        xs = torch.cholesky_solve((hr * s)[..., None], chol).squeeze(-1) * s
        grad = torch.bmm(Ar, xs[..., None]).squeeze(-1) - hr
        scale = hr.abs().amax(1, keepdim=True) + (
            Ar.abs().amax((1, 2))[:, None] * xs.abs().amax(1, keepdim=True)
        )
        ok = (
            (info == 0)
            & torch.where(support & constrained, xs > 0, True).all(1)
            & torch.where(support, True, grad >= -eps * scale).all(1)
            & torch.isfinite(xs).all(1)
        )
        xr[ok] = xs[ok]
        x[rows] = xr
        rows = rows[~ok]
        if rows.numel() == 0:
            break
    return x


def nnls_rows(
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
):
    """:func:`skmf._solvers._als.solve_rows` with X >= 0 (bx free): NNLS rows.

    The rows start from their values in ``X``, ``bx``.
    """
    k = Y.shape[1]
    Z = design_matrix(Y, by, mu)
    sse = se = None
    if stats:
        acc = accumulator_dtype(X.device)
        sse = torch.zeros((), dtype=acc, device=X.device)
        se = torch.zeros((), dtype=acc, device=X.device)
    for blk in groups.blocks:
        A = block_gram(blk, Z)
        gram = A[:, : k + 1, : k + 1]
        rhs = A[:, : k + 1, k + 1]
        reg = coef[blk.rows, None] * diag
        system = gram + torch.diag_embed(reg)
        x0 = torch.cat([X[blk.rows], bx[blk.rows, None]], 1)
        x = batched_nnls(system, rhs, k, x0)
        X[blk.rows] = x[:, :k]
        bx[blk.rows] = x[:, k]
        if stats:
            block_sse, block_se = residual_stats(A, gram, rhs, x, acc)
            sse += block_sse
            se += block_se
    return (sse, se) if stats else None


class PositiveALSStep(ALSStep):
    """One ALS sweep with non-negative factors: NNLS rows, then the intercept."""

    def __call__(self, iteration: int) -> float:
        F, pen, diag = self.F, self.penalty, self.diag
        nnls_rows(self.by_user, F.P, F.bu, F.Q, F.bi, F.mu, pen.user_coef, diag)
        sse, se = nnls_rows(
            self.by_item, F.Q, F.bi, F.P, F.bu, F.mu, pen.item_coef, diag,
            stats=True,
        )  # fmt: skip
        if self.fit_intercept:
            delta = se / self.total_weight
            F.mu.add_(delta.to(F.mu.dtype))
            sse = sse - self.total_weight * delta**2
        return (float(sse) + pen.value(F)) / self.total_weight


def nonnegative_start(F: Factors, n_spectral: int) -> None:
    """Make the starting factors >= 0, in place.

    Columns ``< n_spectral`` hold a spectral component p q^T: keep
    (p+, q+) or (p-, q-), whichever has the larger |p.| |q.| (NNDSVD), and
    give its zero entries a hundredth of the column's mean so that no entry
    starts stuck at 0; the other columns (random normal) take their absolute
    values.
    """
    P, Q = F.P, F.Q
    for j in range(P.shape[1]):
        p, q = P[:, j], Q[:, j]
        if j >= n_spectral:
            p.abs_()
            q.abs_()
            continue
        pp, pn, qp, qn = (
            p.clamp_min(0),
            (-p).clamp_min(0),
            q.clamp_min(0),
            (-q).clamp_min(0),
        )
        if float(pp.norm() * qp.norm()) >= float(pn.norm() * qn.norm()):
            p.copy_(pp)
            q.copy_(qp)
        else:
            p.copy_(pn)
            q.copy_(qn)
        for t in (p, q):
            if bool((t > 0).any()):
                t[t == 0] = 0.01 * float(t.mean())
