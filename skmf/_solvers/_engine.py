"""The solvers' single entry point: NumPy arrays in, a NumPy model out.

:func:`fit_model` is all the estimator knows of the engine. It takes the
ratings as integer codes, values and weights, the parameters as a
:class:`Settings`, and optionally the model of a previous fit; it resolves
every "auto" parameter, moves the data to the device, builds the solver's
step, runs the fit loop and returns the fitted arrays (:class:`Model`) and
what the loop did (:class:`FitRecord`). ``fit``, ``fit`` with
``warm_start=True`` and ``partial_fit`` all go through it, and so does
sharded training. :func:`fold_in` (the exact solve of new rows with the other
side fixed) is the one other NumPy-level function, shared with serving.

Nothing else crosses the NumPy/torch boundary: no tensor leaves this module.

Every solver works in standardized units: the ratings minus their weighted
mean (0 without an intercept), divided by their weighted standard deviation
(root mean square without an intercept), and the fitted model is converted
back (mu = c + s mu', b = s b', p = sqrt(s) p', q = sqrt(s) q'). Fitting
a r + d thus gives the predictions a r_hat + d for any a > 0 and d, every
parameter meaning the same on every rating scale: ``alpha`` acts on
standardized ratings, so in the ratings' own units the factors' penalty is
alpha s and the biases' alpha_bias; ``learning_rate``, ``init_std`` and the
divergence checks are unit-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch
from tqdm.auto import tqdm

from skmf._data import CHUNK, small_pages
from skmf._device import (
    available_bytes,
    numpy_dtype,
    resolve_device,
    resolve_dtype,
    to_numpy,
    to_tensor,
    torch_dtype,
)
from skmf._solvers._als import (
    _BLOCK_VALUES,
    ALSStep,
    RowGroups,
    group_ratings,
    penalty_diagonal,
    solve_rows,
)
from skmf._solvers._comm import LOCAL
from skmf._solvers._common import (
    Factors,
    FitResult,
    Penalty,
    Ratings,
    Step,
    run_fit_loop,
)
from skmf._solvers._gibbs import GibbsStep
from skmf._solvers._init import spectral_factors
from skmf._solvers._nnls import PositiveALSStep, nnls_rows, nonnegative_start
from skmf._solvers._sgd import AdamStep, SGDStep
from skmf._solvers._svdpp import implicit_arrays, implicit_start, make_implicit_step

__all__ = [
    "DEFAULT_LEARNING_RATES",
    "SOLVERS",
    "FitRecord",
    "Model",
    "Settings",
    "estimate_bytes",
    "fit_model",
    "fold_in",
]

#: The solvers, by the name of the ``solver`` parameter.
SOLVERS = ("als", "sgd", "adam", "gibbs")

#: Learning rates used when ``learning_rate="auto"``.
DEFAULT_LEARNING_RATES = {"sgd": 0.01, "adam": 0.005}


@dataclass(frozen=True)
class Settings:
    """The estimator's parameters that the engine uses, as given (with "auto").

    Build it with :meth:`from_params` from ``estimator.get_params()``; the
    methods resolve the "auto" values.
    """

    n_components: int
    alpha: float
    alpha_bias: float | None
    alpha_scaling: str
    solver: str
    max_iter: int
    learning_rate: float | str
    batch_size: int | str
    fit_intercept: bool
    tol: float | str
    early_stopping: bool
    validation_fraction: float
    n_iter_no_change: int
    init: str
    init_std: float | str
    device: object
    dtype: object
    verbose: int
    implicit_feedback: bool = False
    positive: bool = False

    @classmethod
    def from_params(cls, params: dict, **overrides) -> Settings:
        """The settings of the parameters ``params``, some replaced by ``overrides``."""
        values = {f.name: params[f.name] for f in fields(cls)}
        values.update(overrides)
        return cls(**values)

    @property
    def bias_penalty(self) -> float:
        """``alpha_bias``, with None resolved to ``alpha``."""
        return float(self.alpha if self.alpha_bias is None else self.alpha_bias)

    @property
    def stopping_tolerance(self) -> float:
        """``tol``, with "auto" resolved (1e-2 for ALS on its objective, else 1e-3;
        1e-3 for ALS with ``implicit_feedback``)."""
        if self.tol != "auto":
            return float(self.tol)
        if self.implicit_feedback:
            return 1e-3
        return 1e-2 if self.solver == "als" and not self.early_stopping else 1e-3

    def step_size(self, solver: str | None = None) -> float:
        """``learning_rate``, with "auto" resolved for ``solver``."""
        if self.learning_rate != "auto":
            return float(self.learning_rate)
        return DEFAULT_LEARNING_RATES[solver or self.solver]

    def minibatch(self, n_ratings: int) -> int:
        """``batch_size``, with "auto" resolved: clip(n / 100, 1024, 65536)."""
        if self.batch_size != "auto":
            return int(self.batch_size)
        return int(np.clip(n_ratings // 100, 1024, 65536))

    def initial_std(self, rating_std: float) -> float:
        """``init_std``, with "auto" resolved: sqrt(0.1 std(r) / sqrt(k))."""
        if self.init_std != "auto":
            return float(self.init_std)
        return math.sqrt(0.1 * max(rating_std, 1e-3) / math.sqrt(self.n_components))


@dataclass
class Model:
    """The fitted parameters as NumPy arrays: r = mu + b_u + b_i + p_u . q_i."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    intercept: float
    # SVD++ (implicit_feedback): Y (n_items, k) and z_u = |N(u)|^-1/2 sum y_j.
    implicit_factors: np.ndarray | None = None
    user_implicit: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.user_factors.shape[0], self.item_factors.shape[0]


@dataclass
class FitRecord:
    """What the fit did (``n_iter_``, ``loss_curve_``, ...).

    ``units`` are the (centre, scale) of the standardized ratings the solver
    worked on; later updates of the model (``partial_fit``, fold-in) use them.
    """

    n_iter: int
    loss_curve: list[float]
    validation_scores: list[float] | None
    best_iteration: int | None
    converged: bool
    units: tuple[float, float] = (0.0, 1.0)
    #: The (user, item) pairs of all the ratings as CSR arrays (indptr int64,
    #: item codes int32, in input order within a user), when the fit grouped
    #: them anyway (ALS, Gibbs or the spectral start on the CPU, without early
    #: stopping; in a sharded fit, the pairs of this process's users, numbered
    #: from its first); else None.
    rated_pairs: tuple[np.ndarray, np.ndarray] | None = None


# -------------------------------------------------------------------- units
def rating_units(
    ratings: np.ndarray, weights: np.ndarray | None, fit_intercept: bool, comm=LOCAL
) -> tuple[float, float]:
    """(centre, scale) of the ratings: weighted mean and standard deviation.

    Without an intercept the centre is 0 and the scale the root mean square.
    Computed in float64 without overflow (on ratings divided by their largest
    magnitude). The scale is never 0: ratings all equal give their magnitude
    (1 if they are all 0). With a communicator, of the ratings of every
    process (each holding some, or none).
    """
    big = comm.max(_magnitude(ratings))
    if big == 0.0:
        return 0.0, 1.0
    # In float64; the ratings are divided by their largest magnitude only
    # where squares could overflow or underflow.
    factor = big if not 1e-100 < big < 1e100 else 1.0
    x = np.asarray(ratings, dtype=np.float64)
    if factor != 1.0:
        x = x / factor
    total = float(len(x)) if weights is None else float(weights.sum())
    sx = 0.0
    if fit_intercept and len(x):
        sx = float(x.sum() if weights is None else weights @ x)
    total, sx = (float(v) for v in comm.sum(total, sx))
    centre = sx / total if fit_intercept else 0.0
    # sum w (x - centre)^2 in chunks: no temporary of the ratings' size.
    ss = 0.0
    for start in range(0, len(x), CHUNK):
        d = x[start : start + CHUNK] - centre
        w = None if weights is None else weights[start : start + CHUNK]
        ss += float(d @ d) if w is None else float(w @ (d * d))
    (ss,) = comm.sum(ss)
    scale = math.sqrt(float(ss) / total)
    if not scale > 1e-12 * max(abs(centre), 1e-300):
        scale = 1.0 / factor  # all ratings (nearly) equal: any scale fits them
    return centre * factor, scale * factor


def _to_units(model: Model, centre: float, scale: float) -> Model:
    """``model`` for the ratings (r - centre) / scale."""
    root = math.sqrt(scale)
    return Model(
        model.user_factors / root,
        model.item_factors / root,
        model.user_bias / scale,
        model.item_bias / scale,
        (model.intercept - centre) / scale,
        *(None if t is None else t / root for t in _implicit(model)),
    )


def _from_units(model: Model, centre: float, scale: float) -> Model:
    """``model`` of the ratings (r - centre) / scale, for the ratings r."""
    root = math.sqrt(scale)
    dtype = model.user_factors.dtype
    return Model(
        (model.user_factors * root).astype(dtype),
        (model.item_factors * root).astype(dtype),
        (model.user_bias * scale).astype(dtype),
        (model.item_bias * scale).astype(dtype),
        centre + scale * model.intercept,
        *(None if t is None else (t * root).astype(dtype) for t in _implicit(model)),
    )


def _implicit(model: Model) -> tuple:
    return model.implicit_factors, model.user_implicit


# ------------------------------------------------------------- checks
def _magnitude(values: np.ndarray) -> float:
    """The largest absolute value (two passes, no temporary array)."""
    return max(-float(values.min()), float(values.max())) if len(values) else 0.0


def _check_values(
    ratings: np.ndarray,
    standardized: np.ndarray,
    weights,
    dtype: torch.dtype,
    units=None,
) -> None:
    """Ratings (as given and standardized) and weights must fit the dtype.

    The fitted state is kept in the ratings' units, so they must be
    representable in the dtype; the solvers work on the standardized ratings,
    whose squares and products must stay finite. ``units``: the (centre,
    scale) of a previous fit the ratings were standardized with (partial_fit,
    fold-in), for the message.
    """
    name = str(dtype).removeprefix("torch.")
    # Products of standardized values stay finite below `big`; values in the
    # ratings' units (the fitted biases) below `largest`.
    big = 1e18 if dtype == torch.float32 else 1e150
    largest = torch.finfo(dtype).max / 100 if dtype == torch.float32 else 1e150
    fix = "Use dtype='float64', or rescale" if dtype == torch.float32 else "Rescale"
    if _magnitude(ratings) > largest:
        raise ValueError(
            f"Ratings above {largest:.3g} in absolute value overflow the {name} "
            f"model. {fix} the ratings."
        )
    if _magnitude(standardized) > big:
        if units is None:
            raise ValueError(
                f"Some ratings lie more than {big:g} standard deviations from the "
                f"others, which overflows the {name} computation. Check the ratings "
                "for outliers or wrong values."
            )
        raise ValueError(
            f"Some ratings lie more than {big:g} standard deviations from the "
            f"ratings this model was fitted on (mean {units[0]:.6g}, standard "
            f"deviation {units[1]:.6g}), which overflows the {name} computation. "
            "Check the ratings, or fit a new model on all of them."
        )
    if weights is None:
        return
    if weights.max() > big:
        raise ValueError(
            f"Sample weights above {big:g} overflow the {name} computation. "
            f"{fix} the weights."
        )
    if dtype == torch.float32 and weights.min() < 1e-30:
        raise ValueError(
            "Sample weights below 1e-30 underflow the float32 computation. "
            "Use dtype='float64', or rescale the weights."
        )


# ------------------------------------------------------------------- memory
def estimate_bytes(
    n_users: int, n_items: int, n_ratings: int, settings: Settings, itemsize: int
) -> int:
    """An estimate of the peak memory of a fit (bytes), before any allocation.

    Counts the factor tables and the copies each solver keeps (Adam's moments,
    Gibbs' sums, the best iterate of early stopping), the ratings and their
    grouped layout, the spectral start's sketch and, for ALS and Gibbs, the
    Gram matrices of one block.
    """
    k, solver = int(settings.n_components), settings.solver
    rows = int(n_users) + int(n_items)
    copies = 2 + 3 * (solver == "adam") + 2 * (solver == "gibbs")
    copies += solver in ("sgd", "adam")  # the best iterate
    copies += settings.early_stopping
    total = rows * (k + 1) * itemsize * copies
    total += int(n_ratings) * 64  # codes, values and the grouped layout
    if settings.init == "svd":
        total += rows * (k + 8) * itemsize * 4
    if solver in ("als", "gibbs"):
        per_block = _BLOCK_VALUES["cpu"] // (k + 2)
        block_rows = min(max(n_users, n_items), max(1, per_block))
        total += block_rows * (k + 2) ** 2 * itemsize * 3
    else:
        total += settings.minibatch(n_ratings) * (k + 2) * itemsize * 12
    return total


def _check_memory(
    n_users: int, n_items: int, n_ratings: int, settings: Settings, device, dtype
) -> None:
    """Raise a ValueError, before any allocation, if the fit cannot fit in memory."""
    itemsize = torch.finfo(dtype).bits // 8
    need = estimate_bytes(n_users, n_items, n_ratings, settings, itemsize)
    have = available_bytes(device)
    if have is None or need <= have:
        return
    raise ValueError(
        f"This fit needs about {need / 2**30:.3g} GiB of memory on {device} "
        f"(n_components={settings.n_components}, solver={settings.solver!r}, "
        f"{n_users} users x {n_items} items, {n_ratings} ratings, "
        f"dtype={str(dtype).removeprefix('torch.')}) but only "
        f"{have / 2**30:.3g} GiB is available. Lower 'n_components', or use "
        "a device with more memory."
    )


# -------------------------------------------------------------------- fit
def _standardized(ratings: np.ndarray, units: tuple[float, float]) -> np.ndarray:
    """(ratings - centre) / scale, in float64 (one allocation, small pages)."""
    out = np.subtract(ratings, units[0], out=small_pages(len(ratings), np.float64))
    out /= units[1]
    return out


def _ratings(users, items, ratings, weights, shape, device, dtype) -> Ratings:
    return Ratings(
        to_tensor(users, device, torch.int64),
        to_tensor(items, device, torch.int64),
        to_tensor(ratings, device, dtype),
        None if weights is None else to_tensor(weights, device, dtype),
        int(shape[0]),
        int(shape[1]),
    )


def _make_step(
    settings: Settings,
    F: Factors,
    train: Ratings,
    penalty: Penalty,
    groups,
    generator: torch.Generator,
    rng: np.random.RandomState,
    comm=LOCAL,
) -> Step:
    """The solver's step (one epoch or sweep) for ``settings.solver``.

    ALS and Gibbs take a communicator (a sharded fit); the others run in one
    process.
    """
    solver = settings.solver
    if solver == "als" and settings.positive:
        return PositiveALSStep(
            F, train, penalty, fit_intercept=settings.fit_intercept, groups=groups
        )
    if solver == "als":
        return ALSStep(
            F, train, penalty, fit_intercept=settings.fit_intercept, groups=groups,
            comm=comm,
        )  # fmt: skip
    if solver == "gibbs":
        return GibbsStep(
            F, train, fit_intercept=settings.fit_intercept,
            max_iter=settings.max_iter, random_state=rng, groups=groups, comm=comm,
        )  # fmt: skip
    step_cls = {"sgd": SGDStep, "adam": AdamStep}[solver]
    return step_cls(
        F, train, penalty, learning_rate=settings.step_size(),
        batch_size=settings.minibatch(len(train)),
        fit_intercept=settings.fit_intercept, generator=generator,
    )  # fmt: skip


@dataclass
class Shard:
    """This process's part of a sharded fit (:mod:`skmf.distributed`).

    With a shard, the ratings given to :func:`fit_model` are those of the
    users this process owns (``comm.rows("user")``, global codes), each
    rating held by exactly one process in that layout.

    Attributes
    ----------
    comm : communicator
        The processes' collectives (:mod:`skmf._solvers._comm`).
    by_item : (ndarray, ndarray, ndarray, ndarray or None)
        The ratings of the items this process owns: item codes, user codes,
        ratings, weights.
    device : torch.device
        This process's device.
    row_counts : (ndarray, ndarray)
        The weighted number of ratings of every user and item, over all the
        processes.
    row_exchange : str
        How the processes share the rows they solve
        (:meth:`~skmf.distributed._comm.TorchComm.plan_rows`).
    wrap : callable or None
        ``wrap(step, F, units) -> step``: a wrapper of the solver's step
        (checkpoints), given the step, the factors and the units.
    """

    comm: object
    by_item: tuple
    device: torch.device
    row_counts: tuple[np.ndarray, np.ndarray]
    row_exchange: str = "auto"
    wrap: object = None


def fit_model(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    weights: np.ndarray | None,
    shape: tuple[int, int],
    settings: Settings,
    *,
    random_state: np.random.RandomState,
    start: Model | None = None,
    partial: bool = False,
    row_counts: tuple[np.ndarray, np.ndarray] | None = None,
    units: tuple[float, float] | None = None,
    shard: Shard | None = None,
) -> tuple[Model, FitRecord]:
    """Fit the model to ratings: the one entry point of the solvers.

    Parameters
    ----------
    users, items : ndarray of int64 of shape (n,)
        Row codes of each rating, in ``range(shape[0])`` and ``range(shape[1])``.
    ratings : ndarray of float64 of shape (n,)
    weights : ndarray of float64 of shape (n,) or None
        Positive sample weights (None: unit weights).
    shape : (int, int)
        Number of users and of items.
    settings : Settings
        The parameters.
    random_state : numpy.random.RandomState
        Seeds every draw (initialization, shuffling, validation split, Gibbs).
    start : Model or None
        A previous model whose rows are the first rows of each side: a warm
        start (``partial=False``: the new rows are initialized, and rows
        without ratings keep their values) or the model to update.
    partial : bool
        One incremental pass (``partial_fit``): rows beyond ``start`` are
        folded in exactly (users from their ratings of known items, then
        items from all their ratings) and stay fixed, the intercept stays
        fixed, and the known rows take one epoch of SGD whose penalty
        shares use ``row_counts``.
    row_counts : (ndarray, ndarray) or None
        With ``partial``: the weighted number of ratings of every user and
        item, the previous fits' and these.
    units : (float, float) or None
        With ``partial``: the ``units`` of the record of the fit that made
        ``start``. Otherwise computed from ``ratings``.
    shard : Shard or None
        This process's part of a sharded fit (ALS or Gibbs, from scratch,
        without early stopping): ``users``... are then the ratings of the
        users it owns. Every process gets the same model.

    Returns
    -------
    model : Model
    record : FitRecord
    """
    comm = LOCAL if shard is None else shard.comm
    device = resolve_device(settings.device) if shard is None else shard.device
    dtype = resolve_dtype(settings.dtype, device)
    n_users, n_items = int(shape[0]), int(shape[1])
    if units is None or not partial:
        units = rating_units(ratings, weights, settings.fit_intercept, comm)
    centre, scale = units
    raw = ratings
    ratings = _standardized(raw, units)
    n_held = len(ratings) + (0 if shard is None else len(shard.by_item[2]))
    comm.agree(
        lambda: _check_values(raw, ratings, weights, dtype, units if partial else None)
    )
    comm.agree(lambda: _check_memory(n_users, n_items, n_held, settings, device, dtype))
    generator = torch.Generator().manual_seed(int(random_state.randint(2**31 - 1)))
    given = start
    if start is not None:
        start = _to_units(start, centre, scale)
    if partial:
        model = _partial_pass(
            users, items, ratings, weights, shape, settings, start, row_counts,
            generator, device, dtype,
        )  # fmt: skip
        return _from_units(model, centre, scale), FitRecord(
            1, [], None, None, True, units
        )
    k = settings.n_components

    # Held-out ratings for early stopping.
    train_idx = val_idx = None
    if settings.early_stopping:
        n_val = max(1, int(round(settings.validation_fraction * len(ratings))))
        if n_val >= len(ratings):
            raise ValueError(
                f"validation_fraction={settings.validation_fraction} leaves no "
                f"training rating out of {len(ratings)}; lower it."
            )
        perm = random_state.permutation(len(ratings))
        val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])

    def subset(index):
        if index is None:
            return users, items, ratings, weights
        w = None if weights is None else weights[index]
        return users[index], items[index], ratings[index], w

    tu, ti, tr, tw = subset(train_idx)
    by_item = None  # the ratings grouped by item, when not train's
    if shard is None:
        train = _ratings(tu, ti, tr, tw, shape, device, dtype)
    else:  # this process's users' ratings, the users numbered from its first
        su, si = comm.rows("user"), comm.rows("item")
        nu, ni = su.stop - su.start, si.stop - si.start
        train = _ratings(tu - su.start, ti, tr, tw, (nu, n_items), device, dtype)
        item_ids, item_users, item_r, item_w = shard.by_item
        by_item = _ratings(
            item_ids - si.start, item_users, _standardized(item_r, units), item_w,
            (ni, n_users), device, dtype,
        )  # fmt: skip
    validation = None
    if settings.early_stopping:
        validation = _ratings(*subset(val_idx), shape, device, dtype)

    # Initialization (on the CPU generator, so that every device agrees).
    if train_idx is None:  # standardized: mean 0 (with an intercept), std 1
        mean, std = 0.0, 1.0
    else:
        mean, std = rating_units(tr, tw, settings.fit_intercept)
    P, Q, bu, bi, mu = initial_factors(
        n_users, n_items, settings, mean, std, generator, dtype
    )
    # Rows of a previous fit come first (warm start), then the new ones.
    n_u0, n_i0 = start.shape if start is not None else (0, 0)
    if start is not None:
        P[:n_u0] = to_tensor(start.user_factors, "cpu", dtype)
        Q[:n_i0] = to_tensor(start.item_factors, "cpu", dtype)
        bu[:n_u0] = to_tensor(start.user_bias, "cpu", dtype)
        bi[:n_i0] = to_tensor(start.item_bias, "cpu", dtype)
        if settings.fit_intercept:
            mu.fill_(start.intercept)
    F = Factors(*(t.to(device) for t in (P, Q, bu, bi, mu)))
    if settings.implicit_feedback:  # SVD++: Y, and N(u) from the training pairs
        F, sets = implicit_start(F, train, start)

    counts = None
    if shard is not None:
        counts = tuple(to_tensor(c, device, dtype) for c in shard.row_counts)
    penalty = Penalty.build(
        train, settings.alpha, settings.bias_penalty, settings.alpha_scaling, counts
    )
    # The counting sort by user gives the rated pairs of all the ratings
    # (of this process's users, sharded), unless some are held out.
    keep = train_idx is None
    groups = spectral_groups = None
    if settings.solver in ("als", "gibbs"):
        groups = group_ratings(train, k, by_item, keep_pairs=keep)
    if settings.init == "svd" and start is None:
        spectral_groups = groups or group_ratings(train, k, keep_pairs=keep)
        P0, Q0, r = spectral_factors(
            *spectral_groups, mean, k, generator, comm=comm, dtype=dtype,
            device=device,
        )  # fmt: skip
        F.P[:, :r], F.Q[:, :r] = P0, Q0
    grouped = groups or spectral_groups
    rated = grouped[0].csr if grouped else None
    del spectral_groups, grouped
    if settings.positive:
        spectral = r if settings.init == "svd" and start is None else 0
        nonnegative_start(F, spectral)
    # New rows without training ratings (held out by early stopping) start
    # at 0; rows of a previous fit (warm start) keep their factors.
    wu, wi = penalty.user_count, penalty.item_count
    F.P[n_u0:][wu[n_u0:] == 0] = 0
    F.Q[n_i0:][wi[n_i0:] == 0] = 0
    if settings.implicit_feedback:
        step = make_implicit_step(settings, F, train, penalty, groups, generator, sets)
    else:
        step = _make_step(
            settings, F, train, penalty, groups, generator, random_state, comm
        )
    if settings.positive:
        step.positive = True  # SGD and Adam project after each minibatch
    del groups
    if shard is not None:
        # A process reads the users of its items' ratings and the items of
        # its users' ratings (its own rows it solves itself).
        comm.plan_rows("user", shard.by_item[1], shard.row_exchange)
        comm.plan_rows("item", items, shard.row_exchange)
        if shard.wrap is not None:
            step = shard.wrap(step, F, units)
    result = run_steps(
        step, F, train, penalty, settings, validation=validation, comm=comm,
        show_progress=comm.rank == 0,
    )  # fmt: skip
    comm.complete("user", F.P, F.bu)
    comm.complete("item", F.Q, F.bi)
    record = fit_record(result, units)
    record.rated_pairs = rated
    model = _model(F, dtype)
    if settings.implicit_feedback:
        model.implicit_factors, model.user_implicit = implicit_arrays(F, sets, dtype)
    model = _from_units(model, centre, scale)
    if given is not None:
        # Rows of the previous fit without training ratings kept what they had;
        # restore them bit for bit (the change of units rounds).
        for side, codes, n0 in (("user", tu, n_u0), ("item", ti, n_i0)):
            idle = np.bincount(codes, minlength=n0)[:n0] == 0
            for name in (f"{side}_factors", f"{side}_bias"):
                getattr(model, name)[:n0][idle] = getattr(given, name)[idle]
    return model, record


def initial_factors(
    n_users: int,
    n_items: int,
    settings: Settings,
    mean: float,
    std: float,
    generator: torch.Generator,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, ...]:
    """Random factors N(0, init_std^2), zero biases and mu, on the CPU.

    Drawn from the CPU generator in global row order, so that every device
    and every sharding gets the same start.
    """
    k, init_std = settings.n_components, settings.initial_std(std)
    cpu = {"dtype": dtype, "device": "cpu"}
    P = torch.randn(n_users, k, generator=generator, **cpu) * init_std
    Q = torch.randn(n_items, k, generator=generator, **cpu) * init_std
    bu = torch.zeros(n_users, **cpu)
    bi = torch.zeros(n_items, **cpu)
    return P, Q, bu, bi, torch.tensor(mean, **cpu)


def run_steps(
    step: Step,
    F: Factors,
    train: Ratings,
    penalty: Penalty,
    settings: Settings,
    *,
    validation: Ratings | None = None,
    comm=LOCAL,
    show_progress: bool = True,
) -> FitResult:
    """Run the fit loop with ``settings``' stopping rule and progress bar.

    Calls ``step.finish()`` after a successful loop and ``step.close()`` in
    any case.
    """
    progress = None
    if settings.verbose and show_progress:
        progress = tqdm(total=settings.max_iter, desc=f"MFRegressor[{settings.solver}]")
    try:
        result = run_fit_loop(
            step, F, train, penalty,
            max_iter=settings.max_iter, tol=settings.stopping_tolerance,
            n_iter_no_change=settings.n_iter_no_change, validation=validation,
            solver_name=settings.solver, progress=progress,
            sampling=settings.solver == "gibbs",
            keep_best=settings.solver in ("sgd", "adam"), comm=comm,
        )  # fmt: skip
        step.finish()
    finally:
        if progress is not None:
            # Stopped before max_iter: end the bar at the iterations run.
            progress.total = progress.n
            progress.close()
        step.close()
    return result


def fit_record(result: FitResult, units: tuple[float, float]) -> FitRecord:
    """The record of a fit loop run on ratings standardized with ``units``.

    The curves are converted to the ratings' units: the objective by the
    scale squared, the validation RMSE by the scale.
    """
    scale = units[1]
    return FitRecord(
        result.n_iter,
        [loss * scale**2 for loss in result.loss_curve],
        None
        if result.validation_scores is None
        else [score * scale for score in result.validation_scores],
        result.best_iteration,
        result.converged,
        units,
    )


def _model(F: Factors, dtype: torch.dtype) -> Model:
    np_dtype = numpy_dtype(dtype)
    return Model(
        to_numpy(F.P, np_dtype),
        to_numpy(F.Q, np_dtype),
        to_numpy(F.bu, np_dtype),
        to_numpy(F.bi, np_dtype),
        float(F.mu),
    )


# ---------------------------------------------------------- partial pass
def _grow(array: np.ndarray, rows: int) -> np.ndarray:
    """``array`` followed by zero rows up to ``rows`` rows (a new array)."""
    out = np.zeros((rows, *array.shape[1:]), dtype=array.dtype)
    out[: len(array)] = array
    return out


def _partial_pass(
    users, items, ratings, weights, shape, settings, start, row_counts,
    generator, device, dtype,
) -> Model:  # fmt: skip
    """Fold the new rows in, then one SGD epoch of the known rows (see fit_model).

    Everything here is in standardized units (``start`` and ``ratings``).
    """
    n_users, n_items = shape
    n_u0, n_i0 = start.shape
    P, Q = _grow(start.user_factors, n_users), _grow(start.item_factors, n_items)
    bu, bi = _grow(start.user_bias, n_users), _grow(start.item_bias, n_items)
    mu = start.intercept
    fold = {
        "alpha": settings.alpha, "alpha_bias": settings.bias_penalty,
        "scaling": settings.alpha_scaling, "device": device,
        "positive": settings.positive,
    }  # fmt: skip
    w = weights
    new_u, new_i = users >= n_u0, items >= n_i0
    if n_users > n_u0:  # new users, from their ratings of known items
        s = new_u & ~new_i
        P[n_u0:], bu[n_u0:] = fold_in(
            users[s] - n_u0, items[s], ratings[s], None if w is None else w[s],
            n_users - n_u0, Q[:n_i0], bi[:n_i0], mu, **fold,
        )  # fmt: skip
    if n_items > n_i0:  # new items, from all their ratings
        s = new_i
        Q[n_i0:], bi[n_i0:] = fold_in(
            items[s] - n_i0, users[s], ratings[s], None if w is None else w[s],
            n_items - n_i0, P, bu, mu, **fold,
        )  # fmt: skip
    F = Factors(
        to_tensor(P, device, dtype),
        to_tensor(Q, device, dtype),
        to_tensor(bu, device, dtype),
        to_tensor(bi, device, dtype),
        torch.tensor(mu, dtype=dtype, device=device),
    )
    data = _ratings(users, items, ratings, weights, shape, device, dtype)
    counts = tuple(to_tensor(c, device, dtype) for c in row_counts)
    penalty = Penalty.build(
        data, settings.alpha, settings.bias_penalty, settings.alpha_scaling, counts
    )
    step = SGDStep(
        F, data, penalty,
        frozen_users=torch.arange(n_u0, n_users, device=device),
        frozen_items=torch.arange(n_i0, n_items, device=device),
        learning_rate=settings.step_size("sgd"),
        batch_size=settings.minibatch(len(ratings)),
        fit_intercept=False, generator=generator,
    )  # fmt: skip
    step.positive = settings.positive
    step(0)
    return _model(F, dtype)


# ------------------------------------------------------------------ fold-in
def fold_in(
    rows: np.ndarray,
    other: np.ndarray,
    ratings: np.ndarray,
    weights: np.ndarray | None,
    n_rows: int,
    Y: np.ndarray,
    by: np.ndarray,
    mu: float,
    *,
    alpha: float,
    alpha_bias: float,
    scaling: str,
    device: torch.device,
    rating_scale: float = 1.0,
    positive: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Factors and biases of new rows: the exact ALS row update, other side fixed.

    Row ``r`` gets the minimizer of
    ``sum_j w_rj (r_rj - mu - by_j - b_r - x_r . y_j)^2
    + c_r (alpha s |x_r|^2 + alpha_bias b_r^2)`` over its ratings, with
    ``s`` = ``rating_scale`` (the scale of the standardized ratings the model
    was fitted on: the same solve in those units), with
    ``c_r`` = 1, ``n_r`` or ``sqrt(n_r)`` (``scaling`` "none", "count",
    "sqrt") and ``n_r`` the weighted number of its ratings. Rows without a
    rating get zeros.

    Parameters
    ----------
    rows : ndarray of int64
        Row (0..n_rows-1) of each rating.
    other : ndarray of int64
        Index into ``Y`` of each rating.
    ratings, weights : ndarray of float64
        Rating values and weights (None: unit weights).
    n_rows : int
        Number of rows to solve.
    Y, by, mu : ndarray, ndarray, float
        The fixed other side: factors, biases, the intercept.
    alpha, alpha_bias : float
        Penalty strengths.
    scaling : {"none", "count", "sqrt"}
        How the penalty of a row scales with its number of ratings.
    device : torch.device
        Where to compute.
    rating_scale : float
        The scale of the fit's standardized ratings (``FitRecord.units``).
    positive : bool
        Constrain the factors to be >= 0 (the bias stays free): the NNLS row
        update of ``positive=True`` (:func:`skmf._solvers._nnls.nnls_rows`).

    Returns
    -------
    X : ndarray of shape (n_rows, k), dtype of ``Y``
    bx : ndarray of shape (n_rows,)
    """
    k = Y.shape[1]
    np_dtype = Y.dtype
    dtype = torch_dtype(np_dtype)
    if len(ratings):
        _check_values(ratings, ratings / rating_scale, weights, dtype)
    X = torch.zeros((n_rows, k), dtype=dtype, device=device)
    bx = torch.zeros(n_rows, dtype=dtype, device=device)
    if n_rows and len(ratings):
        # Only the rows of the other side that were rated take part: the work
        # is O(ratings), not O(len(Y)), which matters for a single new user.
        used, other = np.unique(np.asarray(other, np.int64), return_inverse=True)
        data = _ratings(
            rows, other, ratings, weights, (n_rows, len(used)), device, dtype
        )
        penalty = Penalty.build(data, alpha, alpha_bias, scaling)
        groups = RowGroups(
            data.user, data.item, data.rating, data.weight, n_rows, len(used), k
        )
        (nnls_rows if positive else solve_rows)(
            groups, X, bx, to_tensor(Y[used], device, dtype),
            to_tensor(by[used], device, dtype),
            torch.tensor(mu, dtype=dtype, device=device), penalty.user_coef,
            penalty_diagonal(alpha * rating_scale, alpha_bias, k, X),
        )  # fmt: skip
    return to_numpy(X, np_dtype), to_numpy(bx, np_dtype)
