"""The sharded fit: :func:`skmf._solvers.fit_model` for one process of many.

Each process holds the ratings of the users it owns (grouped by user) and of
the items it owns (grouped by item), with global codes. The setup follows
``fit_model`` step by step with sums over the processes in place of sums over
the ratings (the units, the starting intercept and spread, the row weights),
the same draws from the same generators on every process (the initial
factors, the spectral start's sketch, Gibbs' noise of every row), and the
solvers' own steps run with a :class:`~skmf.distributed._comm.TorchComm`. The
model is therefore that of the one-process fit up to round-off, whatever the
number of processes.
"""

from __future__ import annotations

import numpy as np
import torch

from skmf._device import resolve_dtype, to_tensor
from skmf._solvers import (
    ALSStep,
    Factors,
    FitRecord,
    GibbsStep,
    Model,
    Penalty,
    Ratings,
    RowGroups,
    Settings,
    spectral_factors,
)
from skmf._solvers._engine import (
    _check_memory,
    _check_values,
    _from_units,
    _model,
    fit_record,
    initial_factors,
    run_steps,
)
from skmf.distributed._checkpoint import Checkpointer, fit_signature
from skmf.distributed._comm import agree

__all__ = ["DISTRIBUTED_SOLVERS", "ShardRatings", "fit_sharded"]

#: The solvers that run sharded (row-parallel).
DISTRIBUTED_SOLVERS = ("als", "gibbs")


class ShardRatings:
    """Ratings (global codes) as NumPy arrays: users, items, values, weights."""

    def __init__(self, users, items, ratings, weights):
        self.users = np.asarray(users, np.int64)
        self.items = np.asarray(items, np.int64)
        self.ratings = np.asarray(ratings, np.float64)
        self.weights = None if weights is None else np.asarray(weights, np.float64)

    def __len__(self) -> int:
        return len(self.ratings)

    def weight_sum(self, values=None) -> float:
        """sum w * values (values None: sum w)."""
        if values is None:
            return (
                float(len(self)) if self.weights is None else float(self.weights.sum())
            )
        if self.weights is None:
            return float(values.sum())
        return float(self.weights @ values)


def _units(comm, data: ShardRatings, fit_intercept: bool) -> tuple[float, float]:
    """``rating_units`` of all the processes' ratings (see the engine)."""
    big = comm.max(float(np.abs(data.ratings).max()) if len(data) else 0.0)
    if big == 0.0:
        return 0.0, 1.0
    x = data.ratings / big
    total, sx = (float(v) for v in comm.sum(data.weight_sum(), data.weight_sum(x)))
    centre = sx / total if fit_intercept else 0.0
    (ss,) = comm.sum(data.weight_sum((x - centre) ** 2))
    scale = float(np.sqrt(float(ss) / total))
    if not scale > 1e-12 * max(abs(centre), 1e-300):
        scale = 1.0
    return centre * big, scale * big


def _row_counts(comm, side: str, rows: np.ndarray, weights, n_local: int):
    """Weighted number of ratings of every row of ``side`` (float64, full)."""
    local = np.bincount(rows, weights=weights, minlength=n_local).astype(np.float64)
    return comm.gather(side, torch.from_numpy(local)).numpy()


def fit_sharded(
    by_user: ShardRatings,
    by_item: ShardRatings,
    shape: tuple[int, int],
    settings: Settings,
    *,
    random_state: np.random.RandomState,
    comm,
    device: torch.device,
    checkpoint_dir=None,
    checkpoint_every: int = 10,
    n_ratings: int,
    row_exchange: str = "auto",
) -> tuple[Model, FitRecord, tuple[np.ndarray, np.ndarray]]:
    """Fit this process's shard; every process gets the same model.

    Parameters
    ----------
    by_user, by_item : ShardRatings
        The ratings of the users and of the items this process owns
        (``comm.rows``), global codes.
    shape : (int, int)
        Number of users and of items of all the processes.
    settings : Settings
    random_state : numpy.random.RandomState
        In the same state on every process.
    comm : TorchComm
    device : torch.device
        This process's device.
    checkpoint_dir, checkpoint_every :
        See :func:`skmf.distributed.fit_shard`.
    n_ratings : int
        The number of ratings of all the processes.
    row_exchange : {"auto", "all_gather", "needed"}
        How the processes share the rows they solve (see
        :meth:`~skmf.distributed._comm.TorchComm.plan_rows`).

    Returns
    -------
    model : Model
    record : FitRecord
    row_counts : (ndarray, ndarray)
        The weighted number of ratings of every user and every item.
    """
    dtype = resolve_dtype(settings.dtype, device)
    n_users, n_items = int(shape[0]), int(shape[1])
    k = settings.n_components
    su, si = comm.rows("user"), comm.rows("item")
    nu, ni = su.stop - su.start, si.stop - si.start
    units = _units(comm, by_user, settings.fit_intercept)
    centre, scale = units
    r_u = (by_user.ratings - centre) / scale
    r_i = (by_item.ratings - centre) / scale
    agree(
        lambda: _check_values(by_user.ratings, r_u, by_user.weights, dtype),
        comm.group,
    )
    agree(
        lambda: _check_memory(
            n_users, n_items, len(by_user) + len(by_item), settings, device, dtype
        ),
        comm.group,
    )
    generator = torch.Generator().manual_seed(int(random_state.randint(2**31 - 1)))

    def tensors(rows, other, values, weights):
        return (
            to_tensor(rows, device, torch.int64),
            to_tensor(other, device, torch.int64),
            to_tensor(values, device, dtype),
            None if weights is None else to_tensor(weights, device, dtype),
        )

    user_side = tensors(by_user.users - su.start, by_user.items, r_u, by_user.weights)
    item_side = tensors(by_item.items - si.start, by_item.users, r_i, by_item.weights)

    # Initialization: the draws of fit_model, on every process.
    std_data = ShardRatings(by_user.users, by_user.items, r_u, by_user.weights)
    sums = comm.sum(std_data.weight_sum(), std_data.weight_sum(r_u))
    total, s1 = (float(v) for v in sums)
    mean = s1 / total if settings.fit_intercept else 0.0
    (s2,) = comm.sum(std_data.weight_sum((r_u - mean) ** 2))
    std = float(np.sqrt(float(s2) / total))
    start = initial_factors(n_users, n_items, settings, mean, std, generator, dtype)
    F = Factors(*(t.to(device) for t in start))

    user_n = _row_counts(comm, "user", by_user.users - su.start, by_user.weights, nu)
    item_n = _row_counts(comm, "item", by_item.items - si.start, by_item.weights, ni)
    counts = (to_tensor(user_n, device, dtype), to_tensor(item_n, device, dtype))
    # Penalty.build reads only the counts when they are given.
    penalty = Penalty.build(
        None, settings.alpha, settings.bias_penalty, settings.alpha_scaling, counts
    )
    groups = (
        RowGroups(*user_side, nu, n_items, k),
        RowGroups(*item_side, ni, n_users, k),
    )
    if settings.init == "svd":
        P0, Q0, r = spectral_factors(
            *groups, mean, k, generator, comm=comm, dtype=dtype, device=device
        )
        F.P[:, :r], F.Q[:, :r] = P0, Q0
    wu, wi = penalty.user_count, penalty.item_count
    F.P[wu == 0] = 0
    F.Q[wi == 0] = 0

    data = Ratings(*user_side, nu, n_items)  # each rating once over the processes
    if settings.solver == "als":
        step = ALSStep(
            F, data, penalty, fit_intercept=settings.fit_intercept, groups=groups,
            comm=comm,
        )  # fmt: skip
    else:
        step = GibbsStep(
            F, data, fit_intercept=settings.fit_intercept,
            max_iter=settings.max_iter, random_state=random_state, groups=groups,
            comm=comm,
        )  # fmt: skip
    del groups
    # The user rows this process reads are those of its items' ratings, and
    # the other way round (its own rows it solves itself).
    comm.plan_rows("user", by_item.users, row_exchange)
    comm.plan_rows("item", by_user.items, row_exchange)
    signature = fit_signature(
        shape=(n_users, n_items), n_ratings=n_ratings, settings=settings,
        total_weight=total, centre=centre, scale=scale,
    )  # fmt: skip
    wrapped = Checkpointer(
        step, F, comm, checkpoint_dir, checkpoint_every, signature, random_state
    )
    wrapped.restore()
    result = run_steps(
        wrapped, F, data, penalty, settings, comm=comm, show_progress=comm.rank == 0
    )
    comm.complete("user", F.P, F.bu)
    comm.complete("item", F.Q, F.bi)
    record = fit_record(result, units)
    return _from_units(_model(F, dtype), centre, scale), record, (user_n, item_n)
