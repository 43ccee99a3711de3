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
Cholesky factorisation gives both: with S = L L^T the draw is
L^-T (L^-1 rhs + e / sqrt(tau)), two triangular solves); then the same for
the items, then mu (flat prior) and tau. The blocks, gathers and GEMMs are
those of ALS.

The fitted model is the posterior mean of the factors and biases, estimated
after a burn-in of BURN_IN sweeps (a quarter of max_iter if fewer) by the
average of the conditional means E[x_u | rest] of every row at every sweep
(Rao-Blackwellization, Gelfand and Smith 1990): the same expectation as the
average of the draws, without the draws' own noise, which on MovieLens
reaches the test RMSE of the average of 200 draws in 30 to 50 sweeps. The
conditional mean costs one more right-hand side in the last triangular solve.

:class:`ImplicitGibbsStep` samples Bayesian SVD++ (implicit_feedback=True).

The sampler works on the ratings divided by their standard deviation, so that
the Gamma(1, 1) hyperpriors mean the same whatever the rating scale; the
factors are scaled back at the end.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from skmf._solvers._als import (
    RowGroups,
    block_gram,
    design_matrix,
    group_ratings,
    penalty_diagonal,
    residual_stats,
    solve_rows,
)
from skmf._solvers._comm import LOCAL
from skmf._solvers._common import Factors, Ratings, Step, accumulator_dtype

__all__ = ["GibbsStep", "draw_rows"]

# Hyperpriors (libFM's defaults): lam_d ~ Gamma(A0, B0), m_d ~ N(0, 1 / (BETA0
# lam_d)); tau ~ Gamma(A0, B0). Rate parametrisation.
A0 = B0 = BETA0 = 1.0
#: The chain starts from this many ALS sweeps (the defaults' penalty, START_ALPHA
#: scaled by the square root of each row's number of ratings) from the spectral
#: start: near the posterior's mode, so that BURN_IN sweeps suffice.
START_SWEEPS = 5
START_ALPHA = 1.05
#: Sweeps discarded before the average: BURN_IN, or a quarter of max_iter if
#: that is fewer.
BURN_IN = 10


def _sample_hyper(
    X: torch.Tensor, rng: np.random.RandomState, comm=LOCAL, n: int | None = None
):
    """Prior means m and precisions lam of the columns of X, one draw.

    From the Normal-Gamma posterior of each column's mean and precision given
    its n values (conjugate update): lam ~ Gamma(A0 + n / 2, B0 + ss / 2), then
    m ~ N(n xbar / (BETA0 + n), 1 / ((BETA0 + n) lam)), with ss the sum of
    squared deviations plus BETA0 n xbar^2 / (BETA0 + n). In float64 (the
    sums in float32 on MPS) on the CPU: k + 1 numbers. With a communicator,
    X holds this process's rows of the ``n`` rows in all.
    """
    n = X.shape[0] if n is None else n
    acc = accumulator_dtype(X.device)
    mean = comm.sum_tensor(X.sum(0, dtype=acc)) / n
    ss = comm.sum_tensor((X - mean.to(X.dtype)).square().sum(0, dtype=acc))
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
    means: tuple[torch.Tensor, torch.Tensor] | None = None,
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
        # mean + noise L^-T e = L^-T (L^-1 b + noise e): two triangular
        # solves (the mean alone takes two).
        b = rhs + (shift[blk.rows] if shift.dim() == 2 else shift)
        e = E.index_select(0, blk.rows + offset)
        x = torch.linalg.solve_triangular(chol, b[..., None], upper=False)
        if means is None:
            x.add_(e[..., None], alpha=noise)
            x = torch.linalg.solve_triangular(chol.mT, x, upper=True).squeeze(-1)
        else:  # the conditional mean too: one solve with two right-hand sides
            x = torch.cat([x, torch.add(x, e[..., None], alpha=noise)], 2)
            x = torch.linalg.solve_triangular(chol.mT, x, upper=True)
            means[0][blk.rows] += x[:, :k, 0]
            means[1][blk.rows] += x[:, k, 0]
            x = x[..., 1]
        X[blk.rows] = x[:, :k]
        bx[blk.rows] = x[:, k]
        if stats:
            block_sse, block_se = residual_stats(A, gram, rhs, x, acc)
            sse += block_sse
            se += block_se
    return sse, se


def _row_weights(groups: RowGroups, dtype: torch.dtype) -> torch.Tensor:
    """The weighted number of ratings of each row of ``groups`` (0 if none)."""
    out = torch.zeros(groups.n_rows, dtype=dtype, device=groups.blocks[0].r.device
                      if groups.blocks else "cpu")  # fmt: skip
    for blk in groups.blocks:
        B, L = blk.r.shape
        if blk.sw is None:
            n = (blk.index.view(B, L) != groups.n_other).sum(1).to(dtype)
        else:
            n = blk.sw.square().sum(1)
        out[blk.rows] = n
    return out


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
        start_sweeps: int = 0,
        burn_in: int | None = None,
        rao_blackwell: bool = True,
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
        if start_sweeps:
            self._map_start(start_sweeps)
        self.burn_in = min(BURN_IN, max_iter // 4) if burn_in is None else burn_in
        self.sum = Factors(*(torch.zeros_like(t, dtype=acc) for t in (
            F.P, F.Q, F.bu, F.bi, F.mu)))  # fmt: skip
        self.n_kept = 0
        self.rao_blackwell = rao_blackwell
        # Rows without ratings are never drawn: they keep their values.
        self.idle = [(_row_weights(g, F.P.dtype) == 0) for g in (self.by_user,
                     self.by_item)]  # fmt: skip

    def _map_start(self, n_sweeps: int) -> None:
        """ALS sweeps from the current factors; tau from their residuals."""
        F, comm, W = self.F, self.comm, self.total_weight
        diag = penalty_diagonal(START_ALPHA, START_ALPHA, self.k, F.P)
        u, i = comm.rows("user"), comm.rows("item")
        ucoef = _row_weights(self.by_user, F.P.dtype).sqrt()
        icoef = _row_weights(self.by_item, F.P.dtype).sqrt()
        sse = None
        for _ in range(n_sweeps):
            solve_rows(self.by_user, F.P[u], F.bu[u], F.Q, F.bi, F.mu, ucoef, diag)
            comm.share_rows("user", F.P, F.bu)
            sse, se = solve_rows(
                self.by_item, F.Q[i], F.bi[i], F.P, F.bu, F.mu, icoef, diag,
                stats=True,
            )  # fmt: skip
            comm.share_rows("item", F.Q, F.bi)
            sse, se = (float(v) for v in comm.sum(sse, se))
            if self.fit_intercept:
                F.mu.add_(se / W)
                sse -= se**2 / W
        if sse is not None and sse > 0:
            self.tau = W / sse

    def _sample_rows(self, side, groups, X, bx, Y, by, sums, *, stats=False):
        """Draw the hyperparameters of X's side, then [X[rows], bx[rows]]."""
        rows = self.comm.rows(side)
        own = torch.cat([X[rows], bx[rows, None]], 1)
        m, lam = _sample_hyper(own, self.rng, self.comm, X.shape[0])
        dev, dtype = X.device, X.dtype
        reg = torch.as_tensor(lam / self.tau, dtype=dtype, device=dev)
        shift = torch.as_tensor(lam * m / self.tau, dtype=dtype, device=dev)
        out = draw_rows(
            groups, X[rows], bx[rows], Y, by, self.F.mu, reg, shift,
            1 / math.sqrt(self.tau), self.generator, stats=stats,
            offset=rows.start or 0, n_total=X.shape[0],
            means=None if sums is None else (sums[0][rows], sums[1][rows]),
        )  # fmt: skip
        self.comm.share_rows(side, X, bx)
        return out

    def __call__(self, iteration: int) -> float:
        F, S = self.F, self.sum
        keep = iteration >= self.burn_in
        rb = keep and self.rao_blackwell
        self._sample_rows(
            "user", self.by_user, F.P, F.bu, F.Q, F.bi, (S.P, S.bu) if rb else None
        )
        sse, se = self._sample_rows(
            "item", self.by_item, F.Q, F.bi, F.P, F.bu, (S.Q, S.bi) if rb else None,
            stats=True,
        )  # fmt: skip
        sse, se = self.comm.sum(sse, se)
        return self._draw_intercept_and_noise(float(sse), float(se), keep, rb)

    def _draw_intercept_and_noise(
        self, sse: float, se: float, keep: bool, rb: bool
    ) -> float:
        """Draw mu and tau given the residual sums; add the sweep to the sums.

        Returns the sample's mean squared training error, in the ratings'
        units.
        """
        F, W, S = self.F, self.total_weight, self.sum
        if self.fit_intercept:
            # mu | rest ~ N(mu + sum w e / W, 1 / (tau W)) under a flat prior.
            if rb:
                S.mu.add_(F.mu + se / W)
            delta = se / W + self.rng.normal() / math.sqrt(self.tau * W)
            F.mu.add_(delta)
            sse += W * delta**2 - 2 * delta * se
        elif rb:
            S.mu.add_(F.mu)
        self.tau = float(self.rng.gamma(A0 + W / 2, 1 / (B0 + max(sse, 0.0) / 2)))
        if keep:
            if not rb:
                for name in ("P", "Q", "bu", "bi", "mu"):
                    getattr(S, name).add_(getattr(F, name))
            self.n_kept += 1
        return sse * self.scale**2 / W

    def finish(self) -> None:
        """Set the factors to their posterior means, in the ratings' units."""
        if self.n_kept:
            S, F = self.sum, self.F
            if self.rao_blackwell:
                # Rows without ratings have no conditional mean: they keep
                # their values. Each process summed its own rows (and the
                # sharded engine completes the tables of the means).
                for side, idle, names in (
                    ("user", self.idle[0], ("P", "bu")),
                    ("item", self.idle[1], ("Q", "bi")),
                ):
                    rows = self.comm.rows(side)
                    for name in names:
                        own = getattr(S, name)[rows]
                        own[idle] = getattr(F, name)[rows][idle].to(own.dtype)
                        own[idle] *= self.n_kept
            for name in ("P", "Q", "bu", "bi", "mu"):
                getattr(F, name).copy_(getattr(S, name) / self.n_kept)
        _rescale(self.F, self.scale)


# ------------------------------------------------------------ SVD++ (Bayesian)
#: Convergence of the conjugate gradients that draw Y: stop when the residual's
#: preconditioned norm, r' M^-1 r ~ |x - x*|_H^2, is below CG_TOL^2 times the
#: number of unknowns, i.e. the error is about CG_TOL posterior standard
#: deviations of the draw (whose own spread is 1 in that norm per unknown).
CG_TOL = 1e-2
CG_MAX_ITER = 200


def _user_grams_noise(
    groups: RowGroups, Q, bi, mu, n_users: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The user Grams of :func:`skmf._solvers._svdpp.user_grams` and a noise.

    Returns ``A`` (n_users, k + 2, k + 2), [S_u, h_u; h_u', t't], and
    ``h`` (n_users, k): h_u = sum_i sqrt(w_ui) e_ui q_i with e_ui ~ N(0, 1)
    independent per rating, whose covariance is G_u = sum_i w_ui q_i q_i'.
    """
    k = Q.shape[1]
    Z = design_matrix(Q, bi, mu)
    A = Q.new_zeros(n_users, k + 2, k + 2)
    h = Q.new_zeros(n_users, k)
    m = k + 2
    for blk in groups.blocks:
        B, L = blk.r.shape
        G = Z.index_select(0, blk.index).view(B, L, m)  # padding: zero rows
        if blk.sw is not None:
            G[..., m - 1].mul_(blk.sw).add_(blk.r)
            G[..., : m - 1].mul_(blk.sw[..., None])
        else:
            G[..., m - 1].add_(blk.r)
        A[blk.rows] = torch.bmm(G.mT, G)
        e = torch.randn((B, 1, L), generator=generator, dtype=Q.dtype, device=Q.device)
        h[blk.rows] = torch.bmm(e, G[..., :k]).squeeze(1)
    return A, h


def sample_implicit(
    sets,
    G: torch.Tensor,
    B: torch.Tensor,
    noise: torch.Tensor,
    lam: torch.Tensor,
    start: torch.Tensor,
    *,
    tol: float = CG_TOL,
    max_iter: int = CG_MAX_ITER,
) -> tuple[torch.Tensor, int]:
    """Solve H X = B (+ ``noise``) for X by block-Jacobi-preconditioned CG.

    H V = N' (G_u (N V)_u) + lam * V (``lam``: (k,) per dimension), the
    precision of Y in its Gaussian conditional, ``B`` its linear term (the
    mean is H^-1 B). With ``noise`` ~ N(0, H) the solution is a draw from the
    conditional, N(H^-1 B, H^-1) (perturbation-optimization, Orieux et al.
    2012). ``B`` and ``noise`` may carry several systems along dimension 0,
    solved at once; ``start``: (n_items, k) for all of them.

    Returns the solutions (same shape as ``B``) and the iterations run.
    """
    c = B.shape[0]
    rhs = B + noise
    k = G.shape[-1]

    def hess(V):  # V: (c, n_items, k)
        n_items = V.shape[1]
        flat = V.permute(1, 0, 2).reshape(n_items, c * k)
        Zv = sets.user_sums(flat).view(-1, c, k)  # (n_users, c, k)
        GZ = torch.bmm(Zv, G)  # G symmetric: (G z)' = z' G
        out = sets.item_sums(GZ.reshape(-1, c * k)).view(n_items, c, k)
        return out.permute(1, 0, 2) + lam * V

    # Block-Jacobi preconditioner: the k x k diagonal blocks of H,
    # sum_u N_uj^2 G_u + diag(lam), by their Cholesky factors.
    n_items = start.shape[0]
    blocks = sets.item_sums(G.reshape(G.shape[0], k * k), squared=True)
    blocks = blocks.view(n_items, k, k) + torch.diag(lam)
    chol, info = torch.linalg.cholesky_ex(blocks)
    if bool((info > 0).any()):  # not positive definite in this precision
        diag = blocks.diagonal(dim1=1, dim2=2).clamp_min(1e-30)
        chol = torch.diag_embed(diag.sqrt())

    def precondition(V):  # (c, n_items, k) -> M^-1 V
        out = torch.cholesky_solve(V.permute(1, 2, 0), chol)
        return out.permute(2, 0, 1)

    X = start.expand(c, -1, -1).clone()
    R = rhs - hess(X)
    Zr = precondition(R)
    D = Zr.clone()
    dims = (1, 2)
    rz = (R * Zr).sum(dims, dtype=torch.float64)
    goal = tol**2 * X[0].numel()
    n_iter = 0
    while n_iter < max_iter and bool((rz > goal).any()):
        HD = hess(D)
        dHd = (D * HD).sum(dims, dtype=torch.float64)
        a = torch.where(dHd > 0, rz / dHd.clamp_min(1e-300), 0).to(X.dtype)
        X.addcmul_(a[:, None, None], D)
        R.sub_(a[:, None, None] * HD)
        Zr = precondition(R)
        rz_new = (R * Zr).sum(dims, dtype=torch.float64)
        beta = torch.where(rz > 0, rz_new / rz.clamp_min(1e-300), 0).to(X.dtype)
        D.mul_(beta[:, None, None]).add_(Zr)
        rz = rz_new
        n_iter += 1
    return X, n_iter


def draw_implicit(
    sets,
    A: torch.Tensor,
    h: torch.Tensor,
    P: torch.Tensor,
    bu: torch.Tensor,
    Y: torch.Tensor,
    tau: float,
    m: np.ndarray,
    lam: np.ndarray,
    generator: torch.Generator,
) -> int:
    """Replace Y by a draw from its Gaussian conditional given the rest.

    ``A`` and ``h``: the user Grams and their noise (:func:`_user_grams_noise`,
    given the items); ``m``, ``lam``: the prior mean and precision of each
    dimension of the y_j; ``tau``: the noise precision. Precision
    H = tau N' blockdiag(G_u) N + diag(lam), linear term
    b = tau N' (h_u - S_u [p_u, b_u]) + lam m, and the perturbation
    eta = sqrt(tau) N' h + sqrt(lam) e ~ N(0, H). Returns the CG iterations.
    """
    k = Y.shape[1]
    dev, dtype = Y.device, Y.dtype
    lam_t = torch.as_tensor(lam, dtype=dtype, device=dev)
    x = torch.cat([P, bu[:, None]], 1)
    Sx = torch.bmm(A[:, :k, : k + 1], x[..., None]).squeeze(-1)
    b = tau * sets.item_sums(A[:, :k, k + 1] - Sx)
    b += torch.as_tensor(lam * m, dtype=dtype, device=dev)
    e = torch.randn(Y.shape, generator=generator, dtype=dtype, device=dev)
    eta = math.sqrt(tau) * sets.item_sums(h) + lam_t.sqrt() * e
    out, n_iter = sample_implicit(sets, tau * A[:, :k, :k], b[None], eta[None],
                                  lam_t, Y)  # fmt: skip
    Y.copy_(out[0])
    return n_iter


class ImplicitGibbsStep(GibbsStep):
    """One Gibbs sweep of Bayesian SVD++: Y, users, items, mu and tau.

    The model of ``implicit_feedback=True``, r_ui = mu + b_u + b_i
    + q_i . (p_u + z_u) + noise, z_u = |N(u)|^(-1/2) sum_{j in N(u)} y_j,
    with the hierarchical priors of :class:`GibbsStep` on [p_u, b_u],
    [q_i, b_i] and on the y_j (a mean and a precision per dimension). One
    sweep, every block from its exact conditional:

    1. The user Grams S_u, h_u given the items (shared by 2 and 3).
    2. Y: its conditional is Gaussian with precision
       H = tau N' blockdiag(G_u) N + I (x) diag(lam_Y) (G_u the factor part
       of S_u: every y_j of N(u) enters r_ui through z_u, so Y is coupled
       through the users) and linear term b = tau N' (h_u - S_u [p_u, b_u])
       + lam_Y m_Y. The draw solves H Y = b + eta with eta ~ N(0, H),
       eta = sqrt(tau) N' (sum_i sqrt(w) e_ui q_i)_u + sqrt(lam_Y) e' (e
       standard normal per rating and per entry): conjugate gradients to
       ``CG_TOL``, started from the current Y.
    3. Users: v_u = p_u + z_u is the plain model's user with the prior mean
       m + z_u: drawn as in :func:`draw_rows`, then p_u = v_u - z_u.
    4. Items given the users' p_u + z_u (:func:`draw_rows`); mu and tau.

    The fitted model averages the conditional means of the users, items and
    mu and the draws of Y after the burn-in.
    """

    def __init__(self, F, data: Ratings, sets, **kwargs):
        super().__init__(F, data, **kwargs)
        F.Y.mul_(1 / math.sqrt(self.scale))
        self.sets = sets
        acc = self.sum.P.dtype
        self.sum_Y = torch.zeros_like(F.Y, dtype=acc)
        self.rated = torch.nonzero(~self.idle[0]).flatten()
        self.cg_iterations: list[int] = []

    def _draw_implicit(self, A: torch.Tensor, h: torch.Tensor) -> None:
        F = self.F
        m, lam = _sample_hyper(F.Y, self.rng)
        n_iter = draw_implicit(
            self.sets, A, h, F.P, F.bu, F.Y, self.tau, m, lam, self.generator
        )
        self.cg_iterations.append(n_iter)

    def _draw_users(self, A, Z, sums) -> None:
        """v_u = p_u + z_u | rest, from the Grams ``A``; then p_u = v_u - z_u."""
        F, k = self.F, self.k
        m, lam = _sample_hyper(torch.cat([F.P, F.bu[:, None]], 1), self.rng)
        dev, dtype = F.P.device, F.P.dtype
        reg = torch.as_tensor(lam / self.tau, dtype=dtype, device=dev)
        rows = self.rated
        prior = torch.as_tensor(m, dtype=dtype, device=dev).expand(len(rows), k + 1)
        prior = prior.clone()
        prior[:, :k] += Z[rows]
        system = A[rows, : k + 1, : k + 1] + torch.diag(reg)
        rhs = A[rows, : k + 1, k + 1] + reg * prior
        E = torch.randn(
            (F.P.shape[0], k + 1), generator=self.generator, dtype=dtype, device=dev
        )
        chol, info = torch.linalg.cholesky_ex(system)
        if bool((info > 0).any()):
            bad = info > 0
            chol[bad] = torch.linalg.cholesky(system[bad].cpu().double()).to(chol)
        y = torch.linalg.solve_triangular(chol, rhs[..., None], upper=False)
        noise = 1 / math.sqrt(self.tau)
        y = torch.cat([y, y + noise * E[rows, :, None]], 2)
        v = torch.linalg.solve_triangular(chol.mT, y, upper=True)
        if sums is not None:
            sums[0][rows] += v[:, :k, 0] - Z[rows]
            sums[1][rows] += v[:, k, 0]
        F.P[rows] = v[:, :k, 1] - Z[rows]
        F.bu[rows] = v[:, k, 1]

    def __call__(self, iteration: int) -> float:
        F, S = self.F, self.sum
        keep = iteration >= self.burn_in
        rb = keep and self.rao_blackwell
        A, h = _user_grams_noise(
            self.by_user, F.Q, F.bi, F.mu, F.P.shape[0], self.generator
        )
        self._draw_implicit(A, h)
        Z = self.sets.user_sums(F.Y)
        self._draw_users(A, Z, (S.P, S.bu) if rb else None)
        del A, h
        m, lam = _sample_hyper(torch.cat([F.Q, F.bi[:, None]], 1), self.rng)
        dev, dtype = F.P.device, F.P.dtype
        reg = torch.as_tensor(lam / self.tau, dtype=dtype, device=dev)
        shift = torch.as_tensor(lam * m / self.tau, dtype=dtype, device=dev)
        sse, se = draw_rows(
            self.by_item, F.Q, F.bi, F.P + Z, F.bu, F.mu, reg, shift,
            1 / math.sqrt(self.tau), self.generator, stats=True,
            means=(S.Q, S.bi) if rb else None,
        )  # fmt: skip
        if keep:
            self.sum_Y.add_(F.Y)
        return self._draw_intercept_and_noise(float(sse), float(se), keep, rb)

    def finish(self) -> None:
        """Posterior means (Y too), in the ratings' units."""
        if self.n_kept:
            self.F.Y.copy_(self.sum_Y / self.n_kept)
        super().finish()
        self.F.Y.mul_(math.sqrt(self.scale))
