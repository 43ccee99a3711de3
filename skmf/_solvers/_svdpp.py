"""SVD++: biased matrix factorization with implicit feedback (Koren 2008).

The model adds to each user's factors the normalized sum of learned item
factors ``y_j`` over the items the user rated,

    r_hat_ui = mu + b_u + b_i + q_i . (p_u + z_u),
    z_u = |N(u)|^(-1/2) sum_{j in N(u)} y_j,

with N(u) the distinct items of user u's training ratings, and minimizes the
objective of the other solvers (see ``_common``) plus the penalty
``alpha * sum_j c_j |y_j|^2`` of Y (c_j = ``IMPLICIT_PENALTY``). N is kept
as a sparse matrix with entries |N(u)|^(-1/2), so that Z = N Y and the
scatter N^T G are one sparse product each.

* ALS (:class:`ImplicitALSStep`), one sweep:

  1. The Gram matrices of every user's ratings given the items,
     S_u = sum_i w_ui z_i z_i^T (z_i = [q_i, 1]) and h_u = sum_i w_ui t_ui z_i
     (t_ui = r_ui - mu - b_i), one batched GEMM per block of users.
  2. Y: the objective is a quadratic in Y; its minimizer solves
     H Y = B with H V = N^T (G_u (N V)_u) + alpha C V (G_u the factor part of
     S_u) and B = N^T (h_u - S_u [p_u, b_u])_factors. A few iterations of
     Jacobi-preconditioned conjugate gradients, started at the current Y,
     lower the objective at every iteration.
  3. Users: [p_u + z_u, b_u] is the exact ridge solution with the prior mean
     z_u on its factor part, (S_u + c_u D) v = h_u + alpha c_u [z_u, 0]
     (D = diag(alpha, ..., alpha, alpha_bias)); then p_u = v_factors - z_u.
  4. Items: the exact ALS item update with the users' factors p_u + z_u.
  5. mu: its closed form.

  Every block update is exact or a descent step, so the objective never
  increases.
* SGD and Adam (:class:`ImplicitSGDStep`, :class:`ImplicitAdamStep`): the
  per-rating terms of ``_sgd`` with p_u + z_u in the prediction, the penalty
  of y_i spread over the ratings of item i like that of q_i; the gradient of
  a rating (u, i) in z_u, 2 w e q_i, reaches every y_j of N(u) with the factor
  |N(u)|^(-1/2) (the exact gradient of the minibatch's terms, gathered over
  the batch's users' N(u) with one sparse pass).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from skmf._device import to_numpy, to_tensor, torch_dtype
from skmf._solvers._als import (
    RowGroups,
    block_gram,
    design_matrix,
    group_ratings,
    penalty_diagonal,
    solve_rows,
)
from skmf._solvers._common import (
    Factors,
    Penalty,
    Ratings,
    Step,
    accumulator_dtype,
)
from skmf._solvers._sgd import _Adam, _MinibatchStep

__all__ = [
    "CG_ITERATIONS",
    "ImplicitALSStep",
    "ImplicitAdamStep",
    "ImplicitFactors",
    "ImplicitSGDStep",
    "ImplicitSets",
    "fold_in_implicit",
    "make_implicit_step",
]

#: Conjugate-gradient iterations of the Y block per ALS sweep.
CG_ITERATIONS = 3
#: y_j's penalty is IMPLICIT_PENALTY * alpha * |y_j|^2 whatever
#: ``alpha_scaling`` (c_j = 1): on MovieLens 100K (u1..u5) and 1M, a
#: coefficient of 50 gave the lowest test RMSE of 1, 3, 10, 30, 50, 100, 300
#: with no scaling, and no scaling beat the item's own coefficient (sqrt(n_j),
#: best at 10) and n_j (best at 3): 0.9034 against 0.9048 and 0.9071 (100K).
IMPLICIT_PENALTY = 50.0


def implicit_coef(penalty: Penalty) -> torch.Tensor:
    """c^Y_j of every item: y_j's penalty is alpha c^Y_j |y_j|^2."""
    return torch.full_like(penalty.item_count, IMPLICIT_PENALTY)


@dataclass
class ImplicitFactors(Factors):
    """The model's tensors plus the implicit item factors Y (n_items, k)."""

    Y: torch.Tensor | None = None

    def copy_(self, other: Factors) -> None:
        super().copy_(other)
        self.Y.copy_(other.Y)


class ImplicitSets:
    """N(u), the distinct items of each user's ratings, with |N(u)|^(-1/2).

    Kept as the sparse matrix N (n_users x n_items) of entries |N(u)|^(-1/2)
    and its transpose, both CSR (one sparse product each way), and as the
    sorted (user, item) entries for the minibatch gathers.

    Parameters
    ----------
    users, items : int64 tensors of shape (n,)
        The rated pairs (repeats allowed).
    n_users, n_items : int
    dtype : torch.dtype
        Of the values.
    """

    def __init__(
        self,
        users: torch.Tensor,
        items: torch.Tensor,
        n_users: int,
        n_items: int,
        dtype: torch.dtype,
    ):
        device = users.device
        key = torch.unique(users * n_items + items)  # sorted, distinct
        self.user = torch.div(key, n_items, rounding_mode="floor")
        self.item = key - self.user * n_items
        counts = torch.bincount(self.user, minlength=n_users)
        self.indptr = torch.zeros(n_users + 1, dtype=torch.int64, device=device)
        torch.cumsum(counts, 0, out=self.indptr[1:])
        self.norm = counts.to(dtype).clamp_min(1).rsqrt() * (counts > 0)
        self.n_users, self.n_items = n_users, n_items
        values = self.norm[self.user]
        # Sparse CSR products are several times faster than index_add_ on the
        # CPU; MPS has no sparse CSR kernels.
        self.sparse = device.type != "mps"
        if self.sparse:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "beta" notice
                self.N = torch.sparse_csr_tensor(
                    self.indptr, self.item, values, (n_users, n_items)
                )
                order = torch.argsort(self.item, stable=True)
                item_counts = torch.bincount(self.item, minlength=n_items)
                t_ptr = torch.zeros(n_items + 1, dtype=torch.int64, device=device)
                torch.cumsum(item_counts, 0, out=t_ptr[1:])
                self.Nt = torch.sparse_csr_tensor(
                    t_ptr, self.user[order], values[order], (n_items, n_users)
                )
                self.Nt2 = torch.sparse_csr_tensor(
                    t_ptr, self.user[order], values[order].square(),
                    (n_items, n_users),
                )  # fmt: skip
        self.values = values

    def user_sums(self, Y: torch.Tensor) -> torch.Tensor:
        """Z = N Y: z_u = |N(u)|^(-1/2) sum_{j in N(u)} y_j, (n_users, k)."""
        if self.sparse:
            return self.N @ Y
        out = Y.new_zeros(self.n_users, Y.shape[1])
        return out.index_add_(0, self.user, Y[self.item] * self.values[:, None])

    def item_sums(self, G: torch.Tensor, squared: bool = False) -> torch.Tensor:
        """N^T G (``squared``: with the entries squared), (n_items, k)."""
        if self.sparse:
            return (self.Nt2 if squared else self.Nt) @ G
        v = self.values.square() if squared else self.values
        out = G.new_zeros(self.n_items, G.shape[1])
        return out.index_add_(0, self.item, G[self.user] * v[:, None])

    def entries_of(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(position in ``rows``, item) of the entries of N in the rows ``rows``."""
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        local = torch.repeat_interleave(
            torch.arange(len(rows), device=rows.device), lengths
        )
        offsets = torch.arange(local.shape[0], device=rows.device)
        offsets -= torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
        return local, self.item[starts[local] + offsets]


# ----------------------------------------------------------------- solves
def ridge_solve(system: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve the batched SPD ``system`` x = ``rhs`` (B, m) by Cholesky.

    Numerically singular systems (alpha = 0 with fewer ratings than factors)
    get the least-norm solution, as in :func:`skmf._solvers._als.solve_rows`.
    """
    m = system.shape[-1]
    singular = (m * torch.finfo(system.dtype).eps) ** 0.5
    chol, info = torch.linalg.cholesky_ex(system)
    x = torch.cholesky_solve(rhs[..., None], chol)
    scaled = chol.diagonal(dim1=1, dim2=2) / system.diagonal(dim1=1, dim2=2).sqrt()
    bad = (info > 0) | ~(scaled.amin(1) > singular)
    if bool(bad.any()):
        x[bad] = torch.linalg.pinv(system[bad], hermitian=True) @ rhs[bad, :, None]
    return x.squeeze(-1)


def solve_rows_shifted(
    groups: RowGroups,
    X: torch.Tensor,
    bx: torch.Tensor,
    Y: torch.Tensor,
    by: torch.Tensor,
    mu: torch.Tensor,
    coef: torch.Tensor,
    diag: torch.Tensor,
    shift: torch.Tensor,
) -> None:
    """X[rows], bx[rows] = the ridge solution with prior mean ``shift`` (factors).

    Row u minimizes sum_j w (t_uj - [x, b] . [y_j, 1])^2
    + coef_u (alpha |x - shift_u|^2 + alpha_bias b^2), with t = r - mu - by.
    """
    k = Y.shape[1]
    Z = design_matrix(Y, by, mu)
    for blk in groups.blocks:
        A = block_gram(blk, Z)
        reg = coef[blk.rows, None] * diag
        system = A[:, : k + 1, : k + 1]
        system.diagonal(dim1=1, dim2=2).add_(reg)
        rhs = A[:, : k + 1, k + 1].clone()
        rhs[:, :k] += reg[:, :k] * shift[blk.rows]
        x = ridge_solve(system, rhs)
        X[blk.rows] = x[:, :k]
        bx[blk.rows] = x[:, k]


def user_grams(groups: RowGroups, Q, bi, mu, n_users: int) -> torch.Tensor:
    """[S_u, h_u; h_u^T, t't] of every user: (n_users, k + 2, k + 2), 0 if unrated.

    S_u = sum w z z^T (z = [q, 1]), h_u = sum w t z, t = r - mu - b_i.
    """
    k = Q.shape[1]
    Z = design_matrix(Q, bi, mu)
    out = Q.new_zeros(n_users, k + 2, k + 2)
    for blk in groups.blocks:
        out[blk.rows] = block_gram(blk, Z)
    return out


def update_implicit(
    F: ImplicitFactors,
    sets: ImplicitSets,
    A: torch.Tensor,
    lam: torch.Tensor,
    n_iter: int,
) -> None:
    """A few preconditioned CG iterations on the Y block, from the current Y.

    The objective in Y (everything else fixed) is, up to a constant,
    1/2 <Y, H Y> - <B, Y> times 2, with
    H V = N^T (G_u (N V)_u) + lam V (``lam``: alpha c_j per item) and
    B = N^T (h_u - S_u [p_u, b_u])_factors, from the user Grams ``A`` (see
    :func:`user_grams`). CG minimizes it over growing Krylov spaces around
    the start, so the objective never increases.
    """
    k = F.Y.shape[1]
    G = A[:, :k, :k]
    x = torch.cat([F.P, F.bu[:, None]], 1)
    Sx = torch.bmm(A[:, :k, : k + 1], x[..., None]).squeeze(-1)
    B = sets.item_sums(A[:, :k, k + 1] - Sx)
    lam = lam[:, None]

    def hess(V):
        GZ = torch.bmm(G, sets.user_sums(V)[..., None]).squeeze(-1)
        return sets.item_sums(GZ) + lam * V

    # Jacobi preconditioner: the diagonal of H.
    diag = sets.item_sums(G.diagonal(dim1=1, dim2=2), squared=True) + lam
    inv = torch.where(diag > 0, 1 / diag.clamp_min(1e-30), 0)
    Y = F.Y
    R = B - hess(Y)
    Zr = inv * R
    D = Zr.clone()
    rz = float((R * Zr).sum(dtype=torch.float64))
    for _ in range(n_iter):
        if not rz > 0:
            break
        HD = hess(D)
        dHd = float((D * HD).sum(dtype=torch.float64))
        if not dHd > 0:
            break
        a = rz / dHd
        Y.add_(D, alpha=a)
        R.sub_(HD, alpha=a)
        Zr = inv * R
        rz_new = float((R * Zr).sum(dtype=torch.float64))
        D.mul_(rz_new / rz).add_(Zr)
        rz = rz_new


class ImplicitALSStep(Step):
    """One SVD++ ALS sweep: Y, users, items, the intercept (module docstring)."""

    def __init__(
        self,
        F: ImplicitFactors,
        data: Ratings,
        penalty: Penalty,
        sets: ImplicitSets,
        *,
        fit_intercept: bool,
        groups: tuple[RowGroups, RowGroups] | None = None,
        cg_iterations: int | None = None,
    ):
        k = F.P.shape[1]
        self.F, self.penalty, self.sets = F, penalty, sets
        self.fit_intercept = fit_intercept
        self.total_weight = data.total_weight
        self.by_user, self.by_item = groups or group_ratings(data, k)
        self.diag = penalty_diagonal(penalty.alpha, penalty.alpha_bias, k, F.P)
        self.cg_iterations = CG_ITERATIONS if cg_iterations is None else cg_iterations
        self.rated = torch.nonzero(penalty.user_count > 0).flatten()

    def __call__(self, iteration: int) -> float:
        F = self.F
        A = user_grams(self.by_user, F.Q, F.bi, F.mu, F.P.shape[0])
        self.update_implicit(A)
        Z = self.sets.user_sums(F.Y)
        self.update_users(A, Z)
        sse, se = self.update_items(Z)
        if self.fit_intercept:
            delta = se / self.total_weight
            F.mu.add_(delta.to(F.mu.dtype))
            sse = sse - self.total_weight * delta**2
        return (float(sse) + penalty_value(self.penalty, F)) / self.total_weight

    def update_implicit(self, A: torch.Tensor) -> None:
        """The Y block: CG iterations from the current Y (user Grams ``A``)."""
        lam = self.penalty.alpha * implicit_coef(self.penalty)
        update_implicit(self.F, self.sets, A, lam, self.cg_iterations)

    def update_users(self, A: torch.Tensor, Z: torch.Tensor) -> None:
        """Users: v = [p_u + z_u, b_u], the ridge solution centred on z_u."""
        F, pen, k = self.F, self.penalty, self.F.P.shape[1]
        rows = self.rated
        reg = pen.user_coef[rows, None] * self.diag
        system = A[rows, : k + 1, : k + 1]
        system.diagonal(dim1=1, dim2=2).add_(reg)
        rhs = A[rows, : k + 1, k + 1]
        rhs[:, :k] += reg[:, :k] * Z[rows]
        v = ridge_solve(system, rhs)
        F.P[rows] = v[:, :k] - Z[rows]
        F.bu[rows] = v[:, k]

    def update_items(self, Z: torch.Tensor):
        """Items, with the users' factors p_u + z_u; (sse, se) after it."""
        F, pen = self.F, self.penalty
        return solve_rows(
            self.by_item, F.Q, F.bi, F.P + Z, F.bu, F.mu, pen.item_coef, self.diag,
            stats=True,
        )  # fmt: skip


def penalty_value(penalty: Penalty, F: ImplicitFactors) -> float:
    """The penalty of the factors and biases plus alpha sum_j c_j |y_j|^2."""
    extra = penalty.alpha * (implicit_coef(penalty) @ F.Y.square().sum(1))
    return penalty.value(F) + float(extra)


# ------------------------------------------------------------ minibatches
class _ImplicitMinibatch(_MinibatchStep):
    """Per-rating gradients of the SVD++ terms for a minibatch."""

    def __init__(self, F, data, penalty, sets, **kwargs):
        super().__init__(F, data, penalty, **kwargs)
        self.sets = sets
        # Each rating's share of y_i's penalty (spread over item i's ratings).
        self.y_share = implicit_coef(penalty) / penalty.item_count.clamp_min(1e-30)

    def _implicit_gradients(self, idx: torch.Tensor, curvatures: bool = False):
        F, d, pen, sets = self.F, self.data, self.penalty, self.sets
        u, i, r = d.user[idx], d.item[idx], d.rating[idx]
        users, inv = torch.unique(u, return_inverse=True)
        local, entries = sets.entries_of(users)
        norm = sets.norm[users, None]
        z = F.P.new_zeros(len(users), F.P.shape[1])
        z = z.index_add_(0, local, F.Y.index_select(0, entries)).mul_(norm)
        pu, qi, bu, bi, yi = F.P[u], F.Q[i], F.bu[u], F.bi[i], F.Y[i]
        pt = pu + z[inv]
        e = (pt * qi).sum(1).add_(bu).add_(bi).add_(F.mu).sub_(r)
        su, si, sy = self.user_share[u], self.item_share[i], self.y_share[i]
        if d.weight is not None:
            w = d.weight[idx]
            su, si, sy = su * w, si * w, sy * w
            we = w * e
        else:
            we = e
        a, ab = 2 * pen.alpha, 2 * pen.alpha_bias
        loss = (we * e).sum() + pen.alpha * (
            su @ pu.square().sum(1) + si @ qi.square().sum(1) + sy @ yi.square().sum(1)
        )
        loss = loss + pen.alpha_bias * (su @ bu.square() + si @ bi.square())
        data_p = 2 * we[:, None] * qi
        g = {
            "u": u, "i": i, "loss": loss, "g_mu": 2 * we.sum(),
            "g_p": torch.addcmul(data_p, (a * su)[:, None], pu),
            "g_q": torch.addcmul(2 * we[:, None] * pt, (a * si)[:, None], qi),
            "g_bu": torch.addcmul(2 * we, ab * su, bu),
            "g_bi": torch.addcmul(2 * we, ab * si, bi),
        }  # fmt: skip
        # d/dy_j for j in N(u): |N(u)|^(-1/2) sum_i 2 w e q_i; plus y_i's penalty.
        gz = F.P.new_zeros(len(users), F.P.shape[1]).index_add_(0, inv, data_p)
        gz.mul_(norm)
        g_y = torch.zeros_like(F.Y).index_add_(0, entries, gz.index_select(0, local))
        ay = a * sy
        g["g_y"] = g_y.index_add_(0, i, ay[:, None] * yi)
        if curvatures:
            w2 = 2 * torch.ones_like(e) if d.weight is None else 2 * w
            hq = w2 * qi.square().sum(1)
            g["h_p"] = hq + a * su
            g["h_q"] = w2 * pt.square().sum(1) + a * si
            g["h_bu"] = w2 + ab * su
            g["h_bi"] = w2 + ab * si
            # y_j's curvature through z_u is |N(u)|^-1 hz_u, but the y_j of one
            # N(u) all move z_u: their summed steps must not overshoot it. A
            # row sum of the batch's Hessian in Y (Gershgorin) bounds both:
            # sum_{u: j in N(u)} |N(u)| |N(u)|^-1 hz_u = sum_u hz_u.
            hz = F.P.new_zeros(len(users)).index_add_(0, inv, hq)
            h_y = F.Y.new_zeros(F.Y.shape[0]).index_add_(0, entries, hz[local])
            g["h_y"] = h_y.index_add_(0, i, ay)
        return g


class ImplicitSGDStep(_ImplicitMinibatch):
    """One SGD epoch of SVD++ (per-rating steps capped as in ``SGDStep``)."""

    per_unit_weight = True

    def __call__(self, iteration: int) -> float:
        F, lr, d = self.F, self.lr, self.data
        acc = accumulator_dtype(F.P.device)
        total = torch.zeros((), dtype=acc, device=F.P.device)
        for idx in self._batches():
            g = self._implicit_gradients(idx, curvatures=True)
            step_u = self._row_steps(g["u"], g["h_p"], g["h_bu"], d.n_users)
            step_i = self._row_steps(g["i"], g["h_q"], g["h_bi"], d.n_items)
            step_y = -lr / (lr * g["h_y"]).clamp_min(1.0)
            F.P.index_add_(0, g["u"], g["g_p"].mul_(step_u[:, :1]))
            F.Q.index_add_(0, g["i"], g["g_q"].mul_(step_i[:, :1]))
            F.bu.index_add_(0, g["u"], g["g_bu"].mul_(step_u[:, 1]))
            F.bi.index_add_(0, g["i"], g["g_bi"].mul_(step_i[:, 1]))
            F.Y.add_(g["g_y"].mul_(step_y[:, None]))
            if self.fit_intercept:
                F.mu.sub_(lr * g["g_mu"] / idx.shape[0])
            total += g["loss"]
        return float(total) / self.data.total_weight


class ImplicitAdamStep(_Adam, _ImplicitMinibatch):
    """One Adam epoch of SVD++ on the minibatch mean of the per-rating terms."""

    def __init__(self, F, data, penalty, sets, **kwargs):
        super().__init__(F, data, penalty, sets, **kwargs)
        self._start_adam(F.Y)

    def __call__(self, iteration: int) -> float:
        F = self.F
        acc = accumulator_dtype(F.P.device)
        total = torch.zeros((), dtype=acc, device=F.P.device)
        for idx in self._batches():
            g = self._implicit_gradients(idx)
            scale = 1.0 / idx.shape[0]
            self._set_mean_gradients(
                g["u"], g["i"], g["g_p"], g["g_q"], g["g_bu"], g["g_bi"], g["g_mu"],
                scale,
            )  # fmt: skip
            F.Y.grad.add_(g["g_y"], alpha=scale)
            self.optimizer.step()
            total += g["loss"]
        return float(total) / self.data.total_weight


# ----------------------------------------------------------------- engine
def make_implicit_step(
    settings, F: ImplicitFactors, train: Ratings, penalty: Penalty, groups,
    generator: torch.Generator, sets: ImplicitSets,
) -> Step:  # fmt: skip
    """The SVD++ step of ``settings.solver`` ("als", "sgd", "adam" or "gibbs")."""
    if settings.solver == "gibbs":  # Bayesian SVD++ (imported here: no cycle)
        from skmf._solvers._gibbs import ImplicitGibbsStep

        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        return ImplicitGibbsStep(
            F, train, sets, fit_intercept=settings.fit_intercept,
            max_iter=settings.max_iter, random_state=np.random.RandomState(seed),
            groups=groups,
        )  # fmt: skip
    if settings.solver == "als":
        return ImplicitALSStep(
            F, train, penalty, sets, fit_intercept=settings.fit_intercept,
            groups=groups,
        )  # fmt: skip
    step_cls = {"sgd": ImplicitSGDStep, "adam": ImplicitAdamStep}[settings.solver]
    return step_cls(
        F, train, penalty, sets, learning_rate=settings.step_size(),
        batch_size=settings.minibatch(len(train)),
        fit_intercept=settings.fit_intercept, generator=generator,
    )  # fmt: skip


# ---------------------------------------------------------------- fold-in
def fold_in_implicit(
    rows: np.ndarray,
    other: np.ndarray,
    ratings: np.ndarray,
    weights: np.ndarray | None,
    n_rows: int,
    Q: np.ndarray,
    bi: np.ndarray,
    mu: float,
    Y: np.ndarray,
    *,
    alpha: float,
    alpha_bias: float,
    scaling: str,
    device: torch.device,
    rating_scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The SVD++ user update of new users, from their ratings (items fixed).

    N(u) is the set of distinct items of each row's ratings; row u gets
    v_u = p_u + z_u and b_u minimizing
    ``sum_i w (r - mu - b_i - b_u - q_i . v_u)^2
    + c_u (alpha s |v_u - z_u|^2 + alpha_bias b_u^2)``, z_u =
    |N(u)|^(-1/2) sum_{j in N(u)} y_j (see :func:`skmf._solvers.fold_in`
    for the other arguments). Returns (v, b): v is what a user's factors
    are in the prediction (p_u + z_u). Rows without ratings get zeros.
    """
    k = Q.shape[1]
    np_dtype = Q.dtype
    dtype = torch_dtype(np_dtype)
    X = torch.zeros((n_rows, k), dtype=dtype, device=device)
    bx = torch.zeros(n_rows, dtype=dtype, device=device)
    if n_rows and len(ratings):
        used, other = np.unique(np.asarray(other, np.int64), return_inverse=True)
        data = Ratings(
            to_tensor(rows, device, torch.int64),
            to_tensor(other, device, torch.int64),
            to_tensor(ratings, device, dtype),
            None if weights is None else to_tensor(weights, device, dtype),
            n_rows, len(used),
        )  # fmt: skip
        sets = ImplicitSets(data.user, data.item, n_rows, len(used), dtype)
        Yu = to_tensor(Y[used], device, dtype)
        Z = sets.user_sums(Yu)
        penalty = Penalty.build(data, alpha, alpha_bias, scaling)
        groups = RowGroups(
            data.user, data.item, data.rating, data.weight, n_rows, len(used), k
        )
        solve_rows_shifted(
            groups, X, bx, to_tensor(Q[used], device, dtype),
            to_tensor(bi[used], device, dtype),
            torch.tensor(mu, dtype=dtype, device=device), penalty.user_coef,
            penalty_diagonal(alpha * rating_scale, alpha_bias, k, X), Z,
        )  # fmt: skip
    return to_numpy(X, np_dtype), to_numpy(bx, np_dtype)


def implicit_sums(
    users: np.ndarray, items: np.ndarray, n_users: int, Y: np.ndarray
) -> np.ndarray:
    """z_u = |N(u)|^(-1/2) sum_{j in N(u)} y_j for the pairs given (NumPy)."""
    z = np.zeros((n_users, Y.shape[1]), dtype=np.float64)
    if len(users):
        key = np.unique(np.asarray(users, np.int64) * len(Y) + items)
        u, j = np.divmod(key, len(Y))
        np.add.at(z, u, Y[j].astype(np.float64))
        counts = np.bincount(u, minlength=n_users)
        z /= np.sqrt(np.maximum(counts, 1))[:, None]
    return z.astype(Y.dtype)


def user_implicit(F: ImplicitFactors, sets: ImplicitSets) -> torch.Tensor:
    """Z = N Y of the fitted model."""
    return sets.user_sums(F.Y)


def implicit_start(
    F: Factors, train: Ratings, start
) -> tuple[ImplicitFactors, ImplicitSets]:
    """``F`` with Y (zeros, or a warm start's), and N(u) of the training pairs.

    ``start`` is the previous model (in the solver's units) or None.
    """
    n_items, k = F.Q.shape
    Y = torch.zeros_like(F.Q)
    previous = None if start is None else start.implicit_factors
    if previous is not None:
        Y[: len(previous)] = to_tensor(previous, Y.device, Y.dtype)
    sets = ImplicitSets(train.user, train.item, train.n_users, n_items, F.P.dtype)
    return ImplicitFactors(F.P, F.Q, F.bu, F.bi, F.mu, Y), sets


def implicit_arrays(
    F: ImplicitFactors, sets: ImplicitSets, dtype: torch.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """Y and Z = N Y of the fitted model, as NumPy arrays of ``dtype``."""
    from skmf._device import numpy_dtype

    np_dtype = numpy_dtype(dtype)
    return to_numpy(F.Y, np_dtype), to_numpy(sets.user_sums(F.Y), np_dtype)
