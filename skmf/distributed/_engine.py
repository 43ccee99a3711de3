"""The sharded fit: :func:`skmf._solvers.fit_model` for one process of many.

Each process holds the ratings of the users it owns (grouped by user) and of
the items it owns (grouped by item), with global codes, and calls the same
entry point as a one-process fit with a :class:`~skmf._solvers._engine.Shard`:
its sums run over the processes (the units, the row weights), every process
makes the same draws from the same generators (the initial factors, the
spectral start's sketch, Gibbs' noise of every row), and the solvers' steps
share their rows through a :class:`~skmf.distributed._comm.TorchComm`. The
model is therefore that of the one-process fit up to round-off, whatever the
number of processes. This module adds the row counts and the checkpoints.
"""

from __future__ import annotations

import numpy as np
import torch

from skmf._solvers import FitRecord, Model, Settings
from skmf._solvers._engine import Shard, fit_model
from skmf.distributed._checkpoint import Checkpointer, fit_signature

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
    """Fit this process's shard with :func:`skmf._solvers.fit_model`.

    Every process gets the same model.

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
    su, si = comm.rows("user"), comm.rows("item")
    user_n = _row_counts(
        comm, "user", by_user.users - su.start, by_user.weights, su.stop - su.start
    )
    item_n = _row_counts(
        comm, "item", by_item.items - si.start, by_item.weights, si.stop - si.start
    )

    def checkpointed(step, F, units):
        signature = fit_signature(
            shape=tuple(int(n) for n in shape), n_ratings=n_ratings,
            settings=settings, total_weight=step.total_weight, centre=units[0],
            scale=units[1],
        )  # fmt: skip
        wrapped = Checkpointer(
            step, F, comm, checkpoint_dir, checkpoint_every, signature, random_state
        )
        wrapped.restore()
        return wrapped

    shard = Shard(
        comm=comm,
        by_item=(by_item.items, by_item.users, by_item.ratings, by_item.weights),
        device=device,
        row_counts=(user_n, item_n),
        row_exchange=row_exchange,
        wrap=checkpointed,
    )
    model, record = fit_model(
        by_user.users, by_user.items, by_user.ratings, by_user.weights, shape,
        settings, random_state=random_state, shard=shard,
    )  # fmt: skip
    return model, record, (user_n, item_n)
