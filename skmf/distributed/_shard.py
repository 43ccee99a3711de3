"""``fit_shard``: the per-process (SPMD) entry point of a sharded fit.

Every process of an initialized ``torch.distributed`` process group calls
:func:`fit_shard` with its own part of the ratings. The processes agree on
the id maps, split the users and the items into contiguous ranges of their
codes balanced by number of ratings, exchange the ratings once so that each
holds the ratings of its users and of its items, fit with the row-parallel
solvers, and build the fitted :class:`~skmf.MFRegressor`.
"""

from __future__ import annotations

import os
import warnings
from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.distributed as dist
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from skmf._data import (
    DEFAULT_COLUMNS,
    RatingData,
    _common_id_dtype,
    encode_ids,
    factorize_ids,
    parse_ratings,
)
from skmf._device import resolve_device, torch_threads
from skmf._estimator import _positive_ratings
from skmf._recommend import rated_pairs
from skmf._solvers import Settings
from skmf.distributed._comm import ROW_EXCHANGES, TorchComm, agree, balanced_bounds
from skmf.distributed._engine import DISTRIBUTED_SOLVERS, ShardRatings, fit_sharded

__all__ = ["GATHER_OPTIONS", "check_estimator", "fit_shard"]

#: The values of ``gather``.
GATHER_OPTIONS = ("all", "rank0")

# What the last sharded fit of this process moved (for the benchmarks): bytes
# received per kind of collective, sweeps, the owned ranges.
_LAST_STATS: dict = {}


# ----------------------------------------------------------- validation
def check_estimator(estimator, caller: str) -> Settings:
    """Validate the estimator's parameters for a sharded fit; its Settings."""
    from skmf import MFRegressor

    if not isinstance(estimator, MFRegressor):
        raise TypeError(
            f"{caller} fits an skmf.MFRegressor; got {type(estimator).__name__}."
        )
    estimator._validate_params()
    settings = Settings.from_params(estimator.get_params(deep=False))
    if settings.solver not in DISTRIBUTED_SOLVERS:
        raise ValueError(
            f"{caller} runs the row-parallel solvers {list(DISTRIBUTED_SOLVERS)}; "
            f"got solver={settings.solver!r}. Use solver='als' (or 'gibbs'), or "
            "fit this estimator with MFRegressor.fit on one machine."
        )
    for name in ("implicit_feedback", "positive"):  # SVD++, nonnegative factors
        if getattr(settings, name, False):
            raise ValueError(
                f"{caller} fits the biased model with ALS or Gibbs: {name}=True "
                f"is not available. Set {name}=False, or fit this estimator with "
                "MFRegressor.fit on one machine."
            )
    if settings.early_stopping:
        raise ValueError(
            f"{caller} does not hold out a validation set: early_stopping=True "
            "is not available. Set early_stopping=False (ALS stops on its "
            "objective, with 'tol')."
        )
    if estimator.warm_start and hasattr(estimator, "user_factors_"):
        raise ValueError(
            f"{caller} fits from scratch: warm_start=True is not available. Set "
            "warm_start=False, or continue with MFRegressor.fit on one machine."
        )
    return settings


def _check_options(gather, checkpoint_dir, checkpoint_every, row_exchange) -> None:
    if gather not in GATHER_OPTIONS:
        raise ValueError(
            f"gather must be one of {list(GATHER_OPTIONS)}; got {gather!r}."
        )
    if row_exchange not in ROW_EXCHANGES:
        raise ValueError(
            f"row_exchange must be one of {list(ROW_EXCHANGES)}; got {row_exchange!r}."
        )
    if (
        not isinstance(checkpoint_every, Integral)
        or isinstance(checkpoint_every, bool)
        or checkpoint_every < 1
    ):
        raise ValueError(
            "checkpoint_every must be an int >= 1 (sweeps between checkpoints); "
            f"got {checkpoint_every!r}."
        )
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, str | os.PathLike):
        raise TypeError(
            "checkpoint_dir must be a path (str or os.PathLike) or None; got "
            f"{type(checkpoint_dir).__name__}."
        )


# ------------------------------------------------------------- the data
def _is_empty(X) -> bool:
    if X is None:
        return True
    if sp.issparse(X):
        return X.nnz == 0
    shape = getattr(X, "shape", None)
    if shape is not None:
        return len(shape) > 0 and shape[0] == 0
    try:
        return len(X) == 0
    except TypeError:
        return False


def _parse_local(X, y, sample_weight, columns) -> RatingData:
    """This process's ratings; no ratings at all is allowed here."""
    if _is_empty(X):
        empty = np.empty(0, dtype=np.float64)
        return RatingData(empty, empty, empty, None, 3, None)
    data = parse_ratings(
        X, y, sample_weight, need_ratings=True, caller="fit", columns=columns
    )
    return _positive_ratings(data, "fit")


def _first_appearance(ids: np.ndarray) -> np.ndarray:
    """The distinct ids in the order of their first appearance."""
    if ids.dtype.kind in "iu":
        _, first = np.unique(ids, return_index=True)
        return ids[np.sort(first)]
    return np.asarray(pd.unique(pd.Series(ids, dtype=ids.dtype)))


def _global_codes(ids: np.ndarray, group) -> tuple[np.ndarray, np.ndarray]:
    """Codes of this process's ids in the union of every process's ids.

    The union is sorted as :func:`skmf._data.factorize_ids` sorts ids (in the
    order of first appearance, process 0's first, when they cannot be
    compared), so a fit of data split in order gets the one-process maps.
    """
    parts = [None] * dist.get_world_size(group)
    dist.all_gather_object(parts, _first_appearance(ids) if len(ids) else None, group)
    parts = [p for p in parts if p is not None]
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    union = parts[0]
    for part in parts[1:]:
        common = _common_id_dtype(union, part)
        union = np.concatenate([union.astype(common), part.astype(common)])
    _, uniques = factorize_ids(union)
    return encode_ids(ids, uniques), uniques


def _shared_random_state(random_state, group) -> np.random.RandomState:
    """A RandomState in the same state on every process (process 0's)."""
    rng = check_random_state(random_state)
    if isinstance(random_state, Integral):
        return rng
    state = [rng.get_state()]
    dist.broadcast_object_list(state, src=0, group=group)
    shared = np.random.RandomState()
    shared.set_state(state[0])
    return shared


def _device(settings: Settings) -> torch.device:
    device = resolve_device(settings.device)
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        device = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(device)
    return device


# ------------------------------------------------------------------ fit
def fit_shard(
    estimator,
    X,
    y=None,
    *,
    sample_weight=None,
    gather="all",
    checkpoint_dir=None,
    checkpoint_every=10,
    columns=DEFAULT_COLUMNS,
    row_exchange="auto",
):
    """Fit an MFRegressor on ratings split between the processes of a group.

    Call it on every process of an initialized ``torch.distributed`` process
    group (for example under ``torchrun``), each with its own part of the
    ratings, in any form :meth:`skmf.MFRegressor.fit` takes. The processes
    agree on the user and item ids (ids of any type; a process may see ids
    the others do not, or no ratings at all), split the users and the items
    between them, and fit with the row-parallel ALS or Gibbs solver. The
    model is that of ``MFRegressor.fit`` on all the ratings, up to round-off.

    Parameters
    ----------
    estimator : MFRegressor
        The estimator to fit (``solver`` "als" or "gibbs",
        ``early_stopping=False``). Its ``random_state`` should be an int (with
        None or a RandomState, process 0's draw is used).

    X : array-like, DataFrame or sparse matrix
        This process's ratings, as for :meth:`skmf.MFRegressor.fit`; None or
        empty for none.

    y : array-like of shape (n_ratings,), default=None
        Ratings of the (user, item) pairs of ``X``.

    sample_weight : array-like of shape (n_ratings,), default=None
        Weight of each rating of this process.

    gather : {"all", "rank0"}, default="all"
        Which processes get the fitted estimator: every one, or only process
        0 (the others get None; the rated pairs of the users, kept for
        :meth:`~skmf.MFRegressor.recommend`, are then gathered on process 0
        only).

    checkpoint_dir : str or path-like, default=None
        A folder shared by the processes: every ``checkpoint_every`` sweeps
        each process writes the rows it owns there, and a fit that finds a
        checkpoint of the same fit resumes from it (after a restart by
        ``torchrun --max-restarts`` or the elastic launcher) and ends with
        the same model.

    checkpoint_every : int, default=10
        Sweeps between checkpoints.

    columns : tuple of str, default=("user", "item", "rating")
        The column names of a DataFrame ``X`` (see
        :meth:`skmf.MFRegressor.fit`).

    row_exchange : {"auto", "all_gather", "needed"}, default="auto"
        How the processes share the factor rows they solve after each
        half-sweep: every row to every process (``all_gather``), or to each
        process only the rows its ratings read (``needed``: one
        ``all_to_all_single``, routed once per fit). "auto" picks, for the
        users and for the items separately, the needed rows when no process
        needs more than half of what the all-gather would bring it. The
        model does not depend on it.

    Returns
    -------
    estimator : MFRegressor or None
        ``estimator``, fitted, on every process (``gather="all"``) or on
        process 0 (``gather="rank0"``; None on the others).
    """
    estimator, _ = _fit_shard(
        estimator, X, y, sample_weight=sample_weight, gather=gather,
        checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
        columns=columns, row_exchange=row_exchange,
    )  # fmt: skip
    return estimator


def _fit_shard(
    estimator, X, y, *, sample_weight, gather, checkpoint_dir, checkpoint_every,
    columns, row_exchange="auto",
):  # fmt: skip
    """:func:`fit_shard`, also returning the FitRecord (on every process)."""
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "fit_shard runs on each process of an initialized torch.distributed "
            "process group (torch.distributed.init_process_group, e.g. under "
            "torchrun). To start local processes, use skmf.distributed.fit."
        )
    _check_options(gather, checkpoint_dir, checkpoint_every, row_exchange)
    settings = check_estimator(estimator, "fit_shard")
    group = None
    rank, size = dist.get_rank(group), dist.get_world_size(group)

    found = {}

    def parse():
        found["data"] = _parse_local(X, y, sample_weight, columns)

    agree(parse, group)
    data = found["data"]
    u_codes, user_ids = _global_codes(data.users, group)
    i_codes, item_ids = _global_codes(data.items, group)
    n_users, n_items = len(user_ids), len(item_ids)
    n_ratings = int(dist_sum_int(np.array([len(data.ratings)]), group)[0])
    if n_ratings == 0:
        raise ValueError(
            "fit_shard got no ratings on any process: there are no ratings to "
            "fit (ratings of weight 0 are left out)."
        )
    estimator._check_params(settings, n_ratings)

    # Owners: contiguous ranges of the codes, balanced by number of ratings.
    user_counts = dist_sum_int(np.bincount(u_codes, minlength=n_users), group)
    item_counts = dist_sum_int(np.bincount(i_codes, minlength=n_items), group)
    device = _device(settings)
    comm_device = "cuda" if dist.get_backend(group) == "nccl" else "cpu"
    comm = TorchComm(
        balanced_bounds(user_counts, size),
        balanced_bounds(item_counts, size),
        device if comm_device == "cuda" else "cpu",
        group,
    )
    # One exchange: each rating to the owner of its user and of its item.
    ub, ib = comm.bounds["user"], comm.bounds["item"]
    columns_sent = [u_codes, i_codes, data.ratings]
    if data.weights is not None:
        columns_sent.append(data.weights)
    weighted = bool(float(comm.sum(float(data.weights is not None))[0]))
    if weighted and data.weights is None:
        columns_sent.append(np.ones(len(data.ratings)))

    def exchange(codes, bounds):
        owner = np.searchsorted(bounds, codes, side="right") - 1
        got = comm.exchange(owner, *columns_sent)
        return ShardRatings(*got[:3], got[3] if weighted else None)

    by_user = exchange(u_codes, ub)
    by_item = exchange(i_codes, ib)
    rng = _shared_random_state(estimator.random_state, group)
    with torch_threads(estimator.n_jobs):
        model, record, (user_n, item_n) = fit_sharded(
            by_user, by_item, (n_users, n_items), settings, random_state=rng,
            comm=comm, device=device, checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every, n_ratings=n_ratings,
            row_exchange=row_exchange,
        )  # fmt: skip

    _LAST_STATS.clear()
    _LAST_STATS.update(
        bytes_received=dict(comm.bytes_received), n_iter=record.n_iter,
        user_bounds=list(comm.bounds["user"]), item_bounds=list(comm.bounds["item"]),
        n_local=(len(by_user), len(by_item)),
        row_exchange=dict(comm.exchange_mode),
    )  # fmt: skip

    # The fitted state, as MFRegressor.fit sets it.
    has = len(data.ratings) > 0
    low = comm.min(float(data.ratings.min()) if has else np.inf)
    high = comm.max(float(data.ratings.max()) if has else -np.inf)
    described = [None] * size
    dist.all_gather_object(
        described, (data.n_columns, data.feature_names) if has else None, group
    )
    n_columns, names = next(d for d in described if d is not None)
    rated = None
    if estimator.keep_rated_pairs:  # this process's users', from the fit
        su = comm.rows("user")
        indptr, indices = record.rated_pairs or rated_pairs(
            by_user.users - su.start, by_user.items, su.stop - su.start, n_items
        )
        rated = _gather_rated((np.diff(indptr), indices), gather, rank, size, group)
    if gather == "rank0" and rank != 0:
        return None, record
    estimator._set_model(model)
    estimator.n_iter_ = record.n_iter
    estimator.loss_curve_ = record.loss_curve
    estimator.validation_scores_ = None
    estimator.best_iteration_ = None
    estimator._units = record.units
    estimator.users_, estimator.items_ = user_ids, item_ids
    estimator.n_features_in_ = n_columns
    if names is not None:
        estimator.feature_names_in_ = names
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    estimator.rating_range_ = (low, high)
    estimator._rated = rated
    estimator._user_n, estimator._item_n = user_n, item_n
    if not record.converged and rank == 0:
        warnings.warn(
            f"MFRegressor ({settings.solver!r}) reached max_iter="
            f"{settings.max_iter} before the objective converged (tol="
            f"{settings.stopping_tolerance:g}). Increase 'max_iter', or raise "
            "'tol'.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return estimator, record


def dist_sum_int(values: np.ndarray, group=None) -> np.ndarray:
    """Element-wise sums of int64 arrays over the processes (exact)."""
    t = torch.as_tensor(np.ascontiguousarray(values, np.int64))
    if dist.get_backend(group) == "nccl":
        t = t.cuda()
    dist.all_reduce(t, group=group)
    return t.cpu().numpy()


def _gather_rated(local, gather, rank, size, group):
    """The rated pairs' CSR arrays of all users, from each process's users."""
    if gather == "all":
        parts = [None] * size
        dist.all_gather_object(parts, local, group)
    else:
        parts = [None] * size if rank == 0 else None
        dist.gather_object(local, parts, dst=0, group=group)
        if rank != 0:
            return None
    counts = np.concatenate([p[0] for p in parts])
    indptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, np.concatenate([p[1] for p in parts]).astype(np.int32)
