"""Minibatch SGD and Adam, vectorised: a handful of tensor ops per minibatch.

The objective (see ``_common``) is a sum over ratings of per-rating terms

    l_ui = w_ui (r_hat_ui - r_ui)^2
           + alpha      (s_u |p_u|^2 + s_i |q_i|^2)
           + alpha_bias (s_u b_u^2   + s_i b_i^2)

where s_u = w_ui c_u / n_u spreads the penalty of user u over its ratings
(n_u = sum of u's weights, the count the penalty was built from), so that the
l_ui add up to L exactly over an epoch. Each epoch visits the ratings in a
random order, in minibatches.

* ``sgd``: for every rating in the minibatch, the step is
  ``theta -= eta * grad l_ui`` (the per-rating step of Funk-SVD, Surprise and
  LIBMF), applied to all ratings of the batch at once with ``index_add_``.
  Each row's summed step is capped at one Newton step of that row's block:
  with H the row's curvature in the batch (the sum over its ratings of
  2 w |q_i|^2 + 2 alpha s_u for p_u, of 2 w + 2 alpha_bias s_u for b_u, and
  likewise for items; s_u already holds the weight w), the row steps
  ``eta / max(1, eta * H)``. H bounds the largest eigenvalue of the row's
  Hessian, so the step does not overshoot the row's own minimiser (the other
  rows held fixed), however large the batch or the factors; with
  ``eta * H <= 1`` it is plain per-rating SGD. All rows move at once, so this
  is a safeguard, not a guarantee: a learning rate far too large still
  diverges, and the divergence is reported.
  The intercept takes the mean of its per-rating steps.
* ``adam``: torch's Adam on the minibatch mean of l_ui (the textbook
  recipe), with dense moment estimates for all parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from skmf._solvers._common import Factors, Penalty, Ratings, Step, accumulator_dtype

__all__ = ["AdamStep", "SGDStep"]


@dataclass
class _Gradients:
    """Per-rating gradients (and, for SGD, curvatures) of a minibatch."""

    u: torch.Tensor
    i: torch.Tensor
    g_p: torch.Tensor
    g_q: torch.Tensor
    g_bu: torch.Tensor
    g_bi: torch.Tensor
    g_mu: torch.Tensor
    loss: torch.Tensor
    h_p: torch.Tensor | None = None
    h_q: torch.Tensor | None = None
    h_bu: torch.Tensor | None = None
    h_bi: torch.Tensor | None = None


class _MinibatchStep(Step):
    """Shared minibatch machinery: shuffling, slicing, per-rating gradients.

    Steps with ``per_unit_weight = True`` (the SGD ones) take their learning
    rate per unit of the mean sample weight: with weights they step
    ``learning_rate / mean(w)``, so that weights of any size (an integer
    weight being the same as repeated ratings) keep the steps of unit weights.
    """

    per_unit_weight = False

    def __init__(
        self,
        F: Factors,
        data: Ratings,
        penalty: Penalty,
        *,
        learning_rate: float,
        batch_size: int,
        fit_intercept: bool,
        generator: torch.Generator,
    ):
        self.F, self.data, self.penalty = F, data, penalty
        self.lr = float(learning_rate)
        if self.per_unit_weight and data.weight is not None:
            self.lr /= float(data.weight.mean())
        self.batch_size = int(batch_size)
        self.fit_intercept = fit_intercept
        device = data.user.device
        if device.type == "cpu":
            self.generator = generator
        else:  # shuffle where the data are, seeded from the CPU generator
            seed = int(torch.randint(2**62, (1,), generator=generator))
            self.generator = torch.Generator(device=device).manual_seed(seed)
        # Per-rating penalty share: s_u = w_ui * c_u / n_u.
        self.user_share, self.item_share = penalty.shares()

    #: Non-negative factors (``positive=True``): project after each minibatch.
    positive = False

    def _project(self) -> None:
        """Clamp the factors at 0 (the projection on the constraints)."""
        self.F.P.clamp_(min=0)
        self.F.Q.clamp_(min=0)

    def _row_steps(self, rows, h_factors, h_bias, n_rows):
        """-eta / max(1, eta * H_row) for each rating of the batch, (B, 2).

        H_row is the sum over the row's ratings in the batch of the factor
        curvature (column 0) and of the bias curvature (column 1).
        """
        h = torch.stack([h_factors, h_bias], 1)
        H = h.new_zeros(n_rows, 2).index_add_(0, rows, h)
        return -self.lr / (self.lr * H[rows]).clamp_min(1.0)

    def _set_mean_gradients(self, u, i, g_p, g_q, g_bu, g_bi, g_mu, scale) -> None:
        """Fill ``self.params``' gradients: the minibatch's per-rating
        gradients times ``scale``, summed per row (Adam)."""
        F = self.F
        for p in self.params:
            p.grad.zero_()
        F.P.grad.index_add_(0, u, g_p, alpha=scale)
        F.Q.grad.index_add_(0, i, g_q, alpha=scale)
        F.bu.grad.index_add_(0, u, g_bu, alpha=scale)
        F.bi.grad.index_add_(0, i, g_bi, alpha=scale)
        if self.fit_intercept:
            F.mu.grad.fill_(g_mu * scale)

    def _batches(self):
        n = len(self.data)
        perm = torch.randperm(n, generator=self.generator, device=self.generator.device)
        for s in range(0, n, self.batch_size):
            yield perm[s : s + self.batch_size]

    def _gradients(self, idx: torch.Tensor, curvatures: bool = False) -> _Gradients:
        """Per-rating gradients of l_ui for the ratings ``idx`` of a batch."""
        F, d, pen = self.F, self.data, self.penalty
        u, i, r = d.user[idx], d.item[idx], d.rating[idx]
        pu, qi, bu, bi = F.P[u], F.Q[i], F.bu[u], F.bi[i]
        e = (pu * qi).sum(1).add_(bu).add_(bi).add_(F.mu).sub_(r)
        su, si = self.user_share[u], self.item_share[i]
        if d.weight is not None:
            w = d.weight[idx]
            su, si = su * w, si * w
            we = w * e
        else:
            we = e
        loss = (we * e).sum() + pen.alpha * (
            su @ pu.square().sum(1) + si @ qi.square().sum(1)
        )
        loss = loss + pen.alpha_bias * (su @ bu.square() + si @ bi.square())
        a, ab = 2 * pen.alpha, 2 * pen.alpha_bias
        g_p = torch.addcmul(2 * we[:, None] * qi, (a * su)[:, None], pu)
        g_q = torch.addcmul(2 * we[:, None] * pu, (a * si)[:, None], qi)
        g_bu = torch.addcmul(2 * we, ab * su, bu)
        g_bi = torch.addcmul(2 * we, ab * si, bi)
        grads = _Gradients(u, i, g_p, g_q, g_bu, g_bi, 2 * we.sum(), loss)
        if not curvatures:
            return grads
        w2 = 2 * torch.ones_like(e) if d.weight is None else 2 * w
        # Diagonal second derivatives of l_ui in p_u, q_i, b_u, b_i.
        grads.h_p = torch.addcmul(a * su, w2, qi.square().sum(1))
        grads.h_q = torch.addcmul(a * si, w2, pu.square().sum(1))
        grads.h_bu = w2 + ab * su
        grads.h_bi = w2 + ab * si
        return grads


class SGDStep(_MinibatchStep):
    """One epoch of minibatch SGD with per-rating steps (see module docstring).

    The learning rate is per unit of the mean sample weight (see
    ``_MinibatchStep``).

    ``frozen_users`` and ``frozen_items`` (index tensors) name rows whose
    factors and biases take no step at all (``partial_fit`` keeps the rows it
    folded in at their exact solution).
    """

    per_unit_weight = True

    def __init__(
        self,
        F: Factors,
        data: Ratings,
        penalty: Penalty,
        *,
        frozen_users: torch.Tensor | None = None,
        frozen_items: torch.Tensor | None = None,
        **kwargs,
    ):
        super().__init__(F, data, penalty, **kwargs)
        self.free_users = self._free(frozen_users, data.n_users)
        self.free_items = self._free(frozen_items, data.n_items)

    def _free(self, frozen: torch.Tensor | None, n_rows: int):
        """1 for rows that move, 0 for frozen ones (None: all move)."""
        if frozen is None or frozen.numel() == 0:
            return None
        free = torch.ones(n_rows, dtype=self.F.P.dtype, device=self.F.P.device)
        free[frozen] = 0
        return free

    def __call__(self, iteration: int) -> float:
        F, lr, d = self.F, self.lr, self.data
        acc = accumulator_dtype(F.P.device)
        total = torch.zeros((), dtype=acc, device=F.P.device)
        for idx in self._batches():
            g = self._gradients(idx, curvatures=True)
            step_u = self._row_steps(g.u, g.h_p, g.h_bu, d.n_users)
            step_i = self._row_steps(g.i, g.h_q, g.h_bi, d.n_items)
            if self.free_users is not None:
                step_u *= self.free_users[g.u, None]
            if self.free_items is not None:
                step_i *= self.free_items[g.i, None]
            F.P.index_add_(0, g.u, g.g_p.mul_(step_u[:, :1]))
            F.Q.index_add_(0, g.i, g.g_q.mul_(step_i[:, :1]))
            F.bu.index_add_(0, g.u, g.g_bu.mul_(step_u[:, 1]))
            F.bi.index_add_(0, g.i, g.g_bi.mul_(step_i[:, 1]))
            if self.fit_intercept:
                F.mu.sub_(lr * g.g_mu / idx.shape[0])
            if self.positive:
                self._project()
            total += g.loss
        return float(total) / self.data.total_weight


class _Adam:
    """Adam's set-up and clean-up, mixed into a minibatch step (listed first)."""

    def _start_adam(self, *extra: torch.Tensor) -> None:
        """torch's Adam over P, Q, the biases, ``extra`` and mu (with an
        intercept), whose gradients the step fills in.

        The gradients start as zeros; torch's fused kernel on CUDA, its
        multi-tensor (foreach) one elsewhere.
        """
        F = self.F
        params = [F.P, F.Q, F.bu, F.bi, *extra]
        if self.fit_intercept:
            params.append(F.mu)
        for p in params:
            p.grad = torch.zeros_like(p)
        fused = params[0].device.type == "cuda"
        self.params = params
        self.optimizer = torch.optim.Adam(
            params, lr=self.lr, foreach=not fused, fused=fused or None
        )

    def close(self) -> None:
        for p in self.params:
            p.grad = None


class AdamStep(_Adam, _MinibatchStep):
    """One epoch of Adam on the minibatch mean of the per-rating terms."""

    def __init__(self, F: Factors, data: Ratings, penalty: Penalty, **kwargs):
        super().__init__(F, data, penalty, **kwargs)
        self._start_adam()

    def __call__(self, iteration: int) -> float:
        F = self.F
        acc = accumulator_dtype(F.P.device)
        total = torch.zeros((), dtype=acc, device=F.P.device)
        for idx in self._batches():
            g = self._gradients(idx)
            self._set_mean_gradients(
                g.u, g.i, g.g_p, g.g_q, g.g_bu, g.g_bi, g.g_mu, 1.0 / idx.shape[0]
            )
            self.optimizer.step()
            if self.positive:
                self._project()
            total += g.loss
        return float(total) / self.data.total_weight
