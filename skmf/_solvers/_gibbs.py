"""Gibbs sampling of Bayesian biased matrix factorization, batched on the device.

The model is the one of the other solvers, r_ui = mu + b_u + b_i + p_u . q_i
plus Gaussian noise of precision tau * w_ui, with a hierarchical prior in
place of the fixed penalty (Salakhutdinov and Mnih 2008, with the diagonal
Normal-Gamma hyperprior of libFM's MCMC, Rendle 2012): every dimension d of
the user vectors [p_u, b_u] has its own prior mean m_d and precision lam_d,
drawn each sweep from their conditional posterior, and likewise for the
items; tau has a Gamma(1, 1) prior.

One sweep draws the hyperparameters of the users, then every user's [p_u, b_u]
from its Gaussian conditional, whose mean is the solution of the ALS system
with the penalty diagonal lam / tau and the prior mean in the right-hand side,

    (sum_i w_ui z_i z_i^T + diag(lam) / tau) x_u = sum_i w_ui t_ui z_i
                                                   + lam * m / tau,

and whose covariance is that matrix's inverse divided by tau (one batched
Cholesky factorisation gives both); then the same for the items, then mu
(flat prior) and tau. The blocks, gathers and GEMMs are those of ALS.

The fitted model is the posterior mean of the factors and biases, averaged
over the sweeps after the burn-in (the first quarter).

The sampler works on the ratings divided by their standard deviation, so that
the Gamma(1, 1) hyperpriors mean the same whatever the rating scale; the
factors are scaled back at the end.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from skmf._solvers._als import RowGroups, block_gram, design_matrix, group_ratings
from skmf._solvers._comm import LOCAL
from skmf._solvers._common import Factors, Ratings, Step, accumulator_dtype

__all__ = ["GibbsStep", "draw_rows"]

# Hyperpriors (libFM's defaults): lam_d ~ Gamma(A0, B0), m_d ~ N(0, 1 / (BETA0
# lam_d)); tau ~ Gamma(A0, B0). Rate parametrisation.
A0 = B0 = BETA0 = 1.0


def _sample_hyper(X: torch.Tensor, rng: np.random.RandomState):
    """Prior means m and precisions lam of the columns of X, one draw.

    From the Normal-Gamma posterior of each column's mean and precision given
    its n values (conjugate update): lam ~ Gamma(A0 + n / 2, B0 + ss / 2), then
    m ~ N(n xbar / (BETA0 + n), 1 / ((BETA0 + n) lam)), with ss the sum of
    squared deviations plus BETA0 n xbar^2 / (BETA0 + n). In float64 (the
    sums in float32 on MPS) on the CPU: k + 1 numbers.
    """
    n = X.shape[0]
    acc = accumulator_dtype(X.device)
    mean = X.mean(0, dtype=acc)
    ss = (X - mean.to(X.dtype)).square().sum(0, dtype=acc)
    mean = mean.cpu().numpy().astype(np.float64)
    ss = ss.cpu().numpy().astype(np.float64)
    ss = ss + BETA0 * n / (BETA0 + n) * mean**2
    lam = rng.gamma(A0 + n / 2, 1 / (B0 + ss / 2))
    m = rng.normal(n * mean / (BETA0 + n), 1 / np.sqrt((BETA0 + n) * lam))
    return m, lam


def _rescale(F: Factors, factor: float) -> None:
    """The model of the ratings times ``factor``: mu, b by it, P, Q by its root."""
    root = math.sqrt(factor)
    for t in (F.P, F.Q):
        t.mul_(root)
    for t in (F.bu, F.bi, F.mu):
        t.mul_(factor)


def draw_rows(
    groups: RowGroups,
    X: torch.Tensor,
    bx: torch.Tensor,
    Y: torch.Tensor,
    by: torch.Tensor,
    mu: torch.Tensor,
    reg: torch.Tensor,
    shift: torch.Tensor,
    noise: float,
    generator: torch.Generator,
    *,
    stats: bool = False,
    offset: int = 0,
    n_total: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw [X[rows], bx[rows]] from their Gaussian conditionals given (Y, by).

    Row u's conditional is N(S^-1 (sum w t z + shift), noise^2 S^-1) with
    S = sum w z z^T + diag(reg), z = [y, 1] and t = r - mu - b_other: the
    sample is the solution of the ALS system plus noise * L^-T e for the
    Cholesky factor L of S and e ~ N(0, I).

    The noise e of every row of the side is drawn at once, in the order of
    the rows, ``n_total`` rows (default ``X.shape[0]``) of which ``X`` holds
    those from ``offset`` on: a sharded fit (each process drawing the same
    table) gets the chain of the one-process fit whatever the sharding.

    Returns
    -------
    sse, se : 0-d tensors (float64, float32 on MPS)
        With ``stats=True``, sum w e^2 and sum w e of the residuals
        e = r - r_hat after the draw (zeros otherwise).
    """
    k = Y.shape[1]
    dev, dtype = X.device, X.dtype
    Z = design_matrix(Y, by, mu)
    acc = accumulator_dtype(dev)
    sse = torch.zeros((), dtype=acc, device=dev)
    se = torch.zeros((), dtype=acc, device=dev)
    n_total = X.shape[0] if n_total is None else n_total
    E = torch.randn((n_total, k + 1), generator=generator, dtype=dtype, device=dev)
    for blk in groups.blocks:
        A = block_gram(blk, Z)
        gram = A[:, : k + 1, : k + 1]
        rhs = A[:, : k + 1, k + 1]  # sum w t z
        system = gram + torch.diag(reg)
        chol, info = torch.linalg.cholesky_ex(system)
        bad = info > 0
        if bool(bad.any()):  # positive definite, but not in float32
            # In float64 on the CPU (MPS has no float64); rare.
            low = torch.linalg.cholesky(system[bad].cpu().double())
            chol[bad] = low.to(device=dev, dtype=dtype)
        x = torch.cholesky_solve((rhs + shift)[..., None], chol)
        e = E.index_select(0, blk.rows + offset)[..., None]
        x += noise * torch.linalg.solve_triangular(chol.mT, e, upper=True)
        x = x.squeeze(-1)
        X[blk.rows] = x[:, :k]
        bx[blk.rows] = x[:, k]
        if stats:
            # For any x: |t - z x|^2_w = t't - 2 x'(sum w t z) + x' gram x,
            # and sum_w (t - z x) = sum w t - (gram x)_b.
            gx = torch.bmm(gram, x[..., None]).squeeze(-1)
            rss = A[:, k + 1, k + 1] - 2 * (x * rhs).sum(1) + (x * gx).sum(1)
            sse += rss.clamp_min(0).sum(dtype=acc)
            se += (A[:, k, k + 1] - gx[:, k]).sum(dtype=acc)
    return sse, se


class GibbsStep(Step):
    """One Gibbs sweep: users, items, the intercept and the noise precision.

    Call :meth:`finish` after the last sweep to set the factors to their
    posterior means.
    """

    def __init__(
        self,
        F: Factors,
        data: Ratings,
        *,
        fit_intercept: bool,
        max_iter: int,
        random_state: np.random.RandomState,
        groups: tuple[RowGroups, RowGroups] | None = None,
        comm=LOCAL,
    ):
        """``groups``: the ratings of ``data`` grouped by user and by item, if
        already built (they are then rescaled in place). With a communicator
        ``comm`` (:mod:`skmf._solvers._comm`), ``data`` is this process's part
        of the ratings and ``groups`` its rows' ratings; every process draws
        the same numbers (the hyperparameters from the shared tables, the noise
        of every row), so the chain does not depend on the sharding."""
        k = F.P.shape[1]
        self.F, self.k = F, k
        self.fit_intercept = fit_intercept
        self.comm = comm
        self.total_weight = float(comm.sum(data.total_weight)[0])
        self.rng = random_state
        device = F.P.device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(int(random_state.randint(2**31 - 1)))
        w = data.weight
        acc = accumulator_dtype(device)
        r = data.rating.to(acc)
        sr = r.sum() if w is None else (w * r).sum()
        mean = float(comm.sum(sr)[0]) / self.total_weight
        var = (r - mean).square()
        var = var.sum() if w is None else (w * var).sum()
        var = float(comm.sum(var)[0]) / self.total_weight
        self.scale = math.sqrt(var) if var > 0 else 1.0
        if groups is None:
            scaled = Ratings(
                data.user, data.item, data.rating / self.scale, w, data.n_users,
                data.n_items,
            )  # fmt: skip
            groups = group_ratings(scaled, k)
        else:
            for side in groups:
                for blk in side.blocks:
                    blk.r.div_(self.scale)
        self.by_user, self.by_item = groups
        # Work in units of the rating's standard deviation.
        _rescale(F, 1 / self.scale)
        self.tau = 1.0
        self.burn_in = max_iter // 4
        self.sum = Factors(*(torch.zeros_like(t, dtype=acc) for t in (
            F.P, F.Q, F.bu, F.bi, F.mu)))  # fmt: skip
        self.n_kept = 0

    def _sample_rows(self, side, groups, X, bx, Y, by, *, stats=False):
        """Draw the hyperparameters of X's side, then [X[rows], bx[rows]]."""
        m, lam = _sample_hyper(torch.cat([X, bx[:, None]], 1), self.rng)
        dev, dtype = X.device, X.dtype
        reg = torch.as_tensor(lam / self.tau, dtype=dtype, device=dev)
        shift = torch.as_tensor(lam * m / self.tau, dtype=dtype, device=dev)
        rows = self.comm.rows(side)
        out = draw_rows(
            groups, X[rows], bx[rows], Y, by, self.F.mu, reg, shift,
            1 / math.sqrt(self.tau), self.generator, stats=stats,
            offset=rows.start or 0, n_total=X.shape[0],
        )  # fmt: skip
        self.comm.share_rows(side, X, bx)
        return out

    def __call__(self, iteration: int) -> float:
        F, W = self.F, self.total_weight
        self._sample_rows("user", self.by_user, F.P, F.bu, F.Q, F.bi)
        sse, se = self._sample_rows(
            "item", self.by_item, F.Q, F.bi, F.P, F.bu, stats=True
        )
        sse, se = self.comm.sum(sse, se)
        sse, se = float(sse), float(se)
        if self.fit_intercept:
            # mu | rest ~ N(mu + sum w e / W, 1 / (tau W)) under a flat prior.
            delta = se / W + self.rng.normal() / math.sqrt(self.tau * W)
            F.mu.add_(delta)
            sse += W * delta**2 - 2 * delta * se
        self.tau = float(self.rng.gamma(A0 + W / 2, 1 / (B0 + max(sse, 0.0) / 2)))
        if iteration >= self.burn_in:
            for name in ("P", "Q", "bu", "bi", "mu"):
                getattr(self.sum, name).add_(getattr(F, name))
            self.n_kept += 1
        # The sample's mean squared training error, in the ratings' units.
        return sse * self.scale**2 / W

    def finish(self) -> None:
        """Set the factors to their posterior means, in the ratings' units."""
        if self.n_kept:
            for name in ("P", "Q", "bu", "bi", "mu"):
                getattr(self.F, name).copy_(getattr(self.sum, name) / self.n_kept)
        _rescale(self.F, self.scale)
