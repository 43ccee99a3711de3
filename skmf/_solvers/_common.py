"""Shared pieces of the solvers: the model tensors, the objective, the fit loop.

Everything here works on torch tensors on one device and knows nothing of
scikit-learn. The objective minimised by every solver is

    L = sum_{(u,i) in K} w_ui (r_ui - mu - b_u - b_i - p_u . q_i)^2
        + alpha      * (sum_u c_u |p_u|^2 + sum_i c_i |q_i|^2)
        + alpha_bias * (sum_u c_u b_u^2   + sum_i c_i b_i^2)

with c = 1 (``alpha_scaling="none"``, the textbook objective), c = the
weighted number of ratings n of the row (``alpha_scaling="count"``, the
weighted-lambda of ALS-WR) or c = sqrt(n) (``alpha_scaling="sqrt"``).
``loss_curve_`` reports ``L / sum(w)``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from skmf._solvers._comm import LOCAL

__all__ = [
    "accumulator_dtype",
    "Factors",
    "Penalty",
    "Ratings",
    "FitResult",
    "Step",
    "objective",
    "run_fit_loop",
]

# Rows per chunk when a pass over all ratings gathers factor rows: bounds the
# temporary memory at CHUNK x n_components values.
CHUNK = 1 << 18


def accumulator_dtype(device: torch.device) -> torch.dtype:
    """The dtype of sums over many ratings on ``device``.

    float64, except on Apple's MPS, which has no float64 (float32 there).
    """
    return torch.float32 if device.type == "mps" else torch.float64


@dataclass
class Ratings:
    """Observed ratings as index and value tensors on the fitting device."""

    user: torch.Tensor  # int64 (n,)
    item: torch.Tensor  # int64 (n,)
    rating: torch.Tensor  # float (n,)
    weight: torch.Tensor | None  # float (n,), None for unit weights
    n_users: int
    n_items: int

    def __len__(self) -> int:
        return self.user.shape[0]

    @property
    def total_weight(self) -> float:
        if self.weight is None:
            return float(len(self))
        return float(self.weight.sum())

    def row_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weighted number of ratings of each user and of each item."""
        dtype = self.rating.dtype
        w = self.weight
        if w is None:
            w = torch.ones(len(self), dtype=dtype, device=self.rating.device)
        wu = torch.zeros(self.n_users, dtype=dtype, device=w.device)
        wi = torch.zeros(self.n_items, dtype=dtype, device=w.device)
        return wu.index_add_(0, self.user, w), wi.index_add_(0, self.item, w)


@dataclass
class Factors:
    """The model's parameters as tensors: r_hat = mu + bu + bi + P[u] . Q[i]."""

    P: torch.Tensor  # (n_users, k)
    Q: torch.Tensor  # (n_items, k)
    bu: torch.Tensor  # (n_users,)
    bi: torch.Tensor  # (n_items,)
    mu: torch.Tensor  # 0-d

    def clone(self) -> Factors:
        return copy.deepcopy(self)

    def copy_(self, other: Factors) -> None:
        for name in ("P", "Q", "bu", "bi", "mu"):
            getattr(self, name).copy_(getattr(other, name))


def penalty_scale(counts: torch.Tensor, scaling: str) -> torch.Tensor:
    """The per-row penalty coefficients c(n) of ``alpha_scaling`` (a new tensor)."""
    if scaling == "count":
        return counts.clone()
    if scaling == "sqrt":
        return counts.sqrt()
    return torch.ones_like(counts)


#: Every row (the slice of the one-process fit).
ALL = slice(None)


@dataclass
class Penalty:
    """Regularisation: strengths, per-row coefficients c and the counts n.

    ``user_count``/``item_count`` are the weighted numbers of ratings n the
    coefficients were computed from; the stochastic solvers spread each row's
    penalty over its ratings in shares c / n.
    """

    alpha: float
    alpha_bias: float
    user_coef: torch.Tensor  # c_u, (n_users,)
    item_coef: torch.Tensor  # c_i, (n_items,)
    user_count: torch.Tensor  # n_u, (n_users,)
    item_count: torch.Tensor  # n_i, (n_items,)

    @classmethod
    def build(
        cls,
        ratings: Ratings,
        alpha,
        alpha_bias,
        scaling: str,
        counts: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> Penalty:
        """The penalty of ``ratings``; ``counts`` replaces their row weights."""
        nu, ni = ratings.row_weights() if counts is None else counts
        return cls(
            float(alpha),
            float(alpha_bias),
            penalty_scale(nu, scaling),
            penalty_scale(ni, scaling),
            nu,
            ni,
        )

    def shares(self) -> tuple[torch.Tensor, torch.Tensor]:
        """c / n per unit of weight: each rating's share of its row's penalty."""
        return (
            self.user_coef / self.user_count.clamp_min(1e-30),
            self.item_coef / self.item_count.clamp_min(1e-30),
        )

    def value(self, F: Factors, users=ALL, items=ALL) -> float:
        """The penalty of the rows ``users`` and ``items`` (slices) of F."""
        uc, ic = self.user_coef[users], self.item_coef[items]
        P, Q, bu, bi = F.P[users], F.Q[items], F.bu[users], F.bi[items]
        a = self.alpha * (uc @ P.square().sum(1) + ic @ Q.square().sum(1))
        b = self.alpha_bias * (uc @ bu.square() + ic @ bi.square())
        return float(a + b)


def squared_error(F: Factors, data: Ratings) -> float:
    """sum w (r - r_hat)^2 over the ratings, accumulated in float64 (MPS: float32)."""
    acc = accumulator_dtype(F.P.device)
    total = torch.zeros((), dtype=acc, device=F.P.device)
    for s in range(0, len(data), CHUNK):
        sl = slice(s, s + CHUNK)
        u, i = data.user[sl], data.item[sl]
        e = (F.P[u] * F.Q[i]).sum(1).add_(F.bu[u]).add_(F.bi[i]).add_(F.mu)
        e = e.sub_(data.rating[sl]).square_()
        if data.weight is not None:
            e = e.mul_(data.weight[sl])
        total += e.sum(dtype=acc)
    return float(total)


def objective(F: Factors, data: Ratings, penalty: Penalty) -> float:
    """The objective L divided by the total weight (see the module docstring)."""
    return (squared_error(F, data) + penalty.value(F)) / data.total_weight


def rmse(F: Factors, data: Ratings) -> float:
    """Weighted root mean squared error of the model on ``data``."""
    return math.sqrt(squared_error(F, data) / data.total_weight)


@dataclass
class FitResult:
    """What a fit loop did: iterations, curves, and whether it converged."""

    n_iter: int
    loss_curve: list[float]
    validation_scores: list[float] | None
    best_iteration: int | None
    converged: bool = True


class Step:
    """One epoch or sweep of a solver, called with the 0-based iteration.

    ``__call__`` returns the objective it tracked during the iteration, or
    None (the fit loop then computes the exact objective). ``finish`` runs
    after the last iteration (Gibbs: the posterior means), ``close`` in any
    case (frees what the step holds).
    """

    def __call__(self, iteration: int) -> float | None:  # pragma: no cover
        raise NotImplementedError

    def finish(self) -> None:
        """Called once after the last iteration of a successful fit."""

    def close(self) -> None:
        """Called once when the fit ends, successful or not."""


def run_fit_loop(
    step: Step,
    F: Factors,
    train: Ratings,
    penalty: Penalty,
    *,
    max_iter: int,
    tol: float,
    n_iter_no_change: int,
    validation: Ratings | None,
    solver_name: str,
    progress=None,
    sampling: bool = False,
    comm=LOCAL,
    keep_best: bool = False,
) -> FitResult:
    """Run ``step`` (one epoch or sweep) until convergence or ``max_iter``.

    Without a validation set, training stops when the objective has not
    improved by more than ``tol`` (relative) for ``n_iter_no_change``
    iterations in a row; with one, when the validation RMSE has not improved
    by more than ``tol`` for that many iterations, and the best iterate is
    restored. A non-finite or exploding objective raises a ValueError.

    ``step`` returns the objective it tracked during the iteration (SGD and
    Adam: accumulated over the epoch) or None, in which case the exact
    objective is computed after the iteration.

    With ``keep_best=True`` (the stochastic solvers, whose objective can go
    up from one epoch to the next), the iterate of lowest objective is kept
    and restored if the last one is worse.

    With ``sampling=True`` (an MCMC sampler, whose tracked value, the
    sample's squared error, fluctuates) the loop runs ``max_iter`` iterations
    and only a non-finite or exploding value stops it.

    With the communicator ``comm`` of a sharded fit
    (:mod:`skmf._solvers._comm`), ``train`` is this process's part of the
    ratings; the step returns the objective of all of them, so every process
    takes the same decisions.
    """
    # Divergence: the objective exceeds 1000 x the first one (or x the mean
    # squared rating, the objective of the zero model, if that is larger).
    start = None
    r2 = train.rating.square()
    if train.weight is not None:
        r2 = r2 * train.weight
    r2, total = r2.sum(dtype=accumulator_dtype(r2.device)), train.total_weight
    r2, total = comm.sum(r2, total)
    scale = float(r2) / float(total)
    # The solvers see standardized ratings (mean square 1); ratings all equal
    # (mean square 0) must not make round-off look like divergence.
    scale = max(scale, 1.0)
    losses: list[float] = []
    scores: list[float] | None = [] if validation is not None else None
    best_score, best_iter, best_F = math.inf, None, None
    best_loss, no_improve = math.inf, 0
    n_iter = 0
    for it in range(max_iter):
        tracked = step(it)
        loss = objective(F, train, penalty) if tracked is None else tracked
        n_iter = it + 1
        if start is None and math.isfinite(loss):
            start = loss
        # Diverging: non-finite, far above its start, or twice its best so far
        # (ALS never increases it; SGD's epoch noise is far smaller). The floor
        # of 1e-3 x the mean squared rating keeps round-off of a near-zero
        # objective (an exact fit) from counting.
        if (
            not math.isfinite(loss)
            or loss > 1e3 * max(start, scale)
            or (
                not sampling and loss > 2 * min(losses, default=math.inf) + 1e-3 * scale
            )
        ):
            hint = (
                "Lower the 'learning_rate' or the 'batch_size' (e.g. by a factor "
                "of 10), or raise 'alpha'."
                if solver_name in ("sgd", "adam")
                else "Use dtype='float64'."
                if sampling
                else "Raise 'alpha', or use dtype='float64'."
            )
            if start is None:
                what = f"the objective is {loss} from the first iteration on"
            else:
                what = f"the objective went from {start:.4g} to {loss:.4g}"
            raise ValueError(
                f"The {solver_name!r} solver diverged at iteration {n_iter}: "
                f"{what}. {hint}"
            )
        losses.append(loss)
        if validation is not None:
            score = rmse(F, validation)
            if not math.isfinite(score):
                raise ValueError(
                    f"The {solver_name!r} solver produced non-finite predictions "
                    f"at iteration {n_iter}. Lower the 'learning_rate'."
                )
            scores.append(score)
            if score < best_score:
                if best_F is None:
                    best_F = F.clone()
                else:
                    best_F.copy_(F)
                best_iter = n_iter
            improved = best_score == math.inf or score < best_score - tol * best_score
            best_score = min(best_score, score)
        else:
            improved = best_loss == math.inf or loss < best_loss - tol * best_loss
            if keep_best and loss < best_loss:
                if best_F is None:
                    best_F = F.clone()
                else:
                    best_F.copy_(F)
            best_loss = min(best_loss, loss)
        no_improve = 0 if improved else no_improve + 1
        if progress is not None:
            postfix = {"loss": f"{loss:.5f}"}
            if scores:
                postfix["val_rmse"] = f"{scores[-1]:.5f}"
            progress.set_postfix(postfix, refresh=False)
            progress.update(1)
        if no_improve >= n_iter_no_change and not sampling:
            converged = True
            break
    else:
        converged = not (max_iter > 0 and validation is None and not sampling)
    if best_F is not None and (validation is not None or losses[-1] > best_loss):
        F.copy_(best_F)
    return FitResult(n_iter, losses, scores, best_iter, converged)
