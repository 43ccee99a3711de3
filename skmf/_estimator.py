"""MFRegressor: the scikit-learn face of the torch solvers (no tensor math here)."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from skmf._data import encode_ids, factorize_ids, parse_ratings
from skmf._device import resolve_device, resolve_dtype, torch_threads
from skmf._solvers import SOLVERS, Factors, Penalty, Ratings, run_fit_loop

__all__ = ["MFRegressor"]

#: learning rates used when ``learning_rate="auto"``.
DEFAULT_LEARNING_RATES = {"sgd": 0.01, "adam": 0.005}

# Ratings per chunk in predict (bounds temporary memory).
_PREDICT_CHUNK = 1 << 15


class MFRegressor(RegressorMixin, BaseEstimator):
    r"""Biased matrix factorization for explicit ratings.

    Predicts the rating of user ``u`` for item ``i`` as

    .. math:: \hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i

    with user factors :math:`P` (n_users x k), item factors :math:`Q`
    (n_items x k), user and item biases and a global offset :math:`\mu`,
    learned from observed ratings by alternating least squares, SGD or Adam
    with torch, on the CPU or a GPU.

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    n_components : int, default=32
        Number of latent factors k.

    alpha : float, default=1.2
        Regularization strength :math:`\lambda` of the factors, in [0, inf).

    alpha_bias : float or None, default=None
        Regularization strength of the biases, in [0, inf). None uses
        ``alpha``.

    alpha_scaling : {"sqrt", "count", "none"}, default="sqrt"
        How the penalty of each user and item is scaled by its (weighted)
        number of ratings :math:`n`: "none" gives the textbook objective
        :math:`\lambda (\|P\|^2 + \|Q\|^2 + \|b\|^2)`; "count" multiplies
        each row's penalty by :math:`n`, the weighted-:math:`\lambda` of
        ALS-WR (Zhou et al. 2008); "sqrt" by :math:`\sqrt{n}`, in between,
        which gave the lowest test RMSE on MovieLens 100K and 1M with one
        ``alpha`` for both (see the accuracy page of the documentation).

    solver : {"als", "sgd", "adam"}, default="als"
        "als": alternating exact ridge solves for all users, then all items
        (batched Cholesky). "sgd": minibatch stochastic gradient descent with
        per-rating steps. "adam": minibatch Adam.

    max_iter : int, default=30
        Maximum number of ALS sweeps or SGD/Adam epochs.

    learning_rate : float or "auto", default="auto"
        Step size of "sgd" and "adam" (ignored by "als"). "auto" uses 0.01
        for "sgd" and 0.005 for "adam".

    batch_size : int or "auto", default="auto"
        Ratings per minibatch for "sgd" and "adam". "auto" uses
        ``clip(n_ratings // 100, 1024, 65536)``.

    fit_intercept : bool, default=True
        Whether to fit the global offset :math:`\mu` (unpenalized, started at
        the weighted mean rating). If False, :math:`\mu = 0` and the model is
        :math:`\hat r_{ui} = b_u + b_i + p_u^\top q_i`.

    tol : float, default=1e-3
        Relative tolerance of the stopping rule: training stops once the
        objective (or, with ``early_stopping``, the validation RMSE) has not
        improved by more than ``tol`` times its best value for
        ``n_iter_no_change`` iterations in a row.

    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training ratings,
        stop when their RMSE stops improving, and restore the best iteration.

    validation_fraction : float, default=0.1
        Fraction of the ratings held out when ``early_stopping=True``, in
        (0, 1).

    n_iter_no_change : int, default=2
        Number of iterations without improvement before stopping.

    init_std : float or "auto", default="auto"
        Standard deviation of the normal initialization of the factors. "auto"
        uses ``sqrt(0.1 * std(r) / sqrt(k))``, so that the initial
        :math:`p_u^\top q_i` are about a tenth of the rating spread whatever
        the rating scale.

    clip : bool, default=False
        Whether to clip predictions to the range of the training ratings.

    device : str or torch.device, default="cpu"
        Where to train: "cpu", "cuda", "cuda:N", "mps", "auto" (a GPU if there
        is one) or a :class:`torch.device`. Fitted attributes are NumPy arrays
        whatever the device.

    dtype : {"float32", "float64"}, default="float32"
        Floating-point type of the computation and of the fitted arrays.

    n_jobs : int or None, default=None
        Number of CPU threads torch uses while fitting and predicting. None
        keeps torch's setting (``torch.get_num_threads()``); -1 uses all
        cores.

    random_state : int, RandomState instance or None, default=None
        Seed of the initialization, the shuffling and the validation split.
        Pass an int for reproducible results.

    verbose : int, default=0
        If > 0, show a progress bar with the loss at each iteration.

    warm_start : bool, default=False
        If True, ``fit`` starts from the factors of the previous fit (users
        and items not seen before are appended) instead of a new
        initialization.

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, n_components)
        User factors :math:`P`, one row per entry of ``users_``.

    item_factors_ : ndarray of shape (n_items, n_components)
        Item factors :math:`Q`, one row per entry of ``items_``.

    user_bias_ : ndarray of shape (n_users,)
        User biases :math:`b_u`.

    item_bias_ : ndarray of shape (n_items,)
        Item biases :math:`b_i`.

    intercept_ : float
        Global offset :math:`\mu` (0.0 when ``fit_intercept=False``).

    users_ : ndarray of shape (n_users,)
        The user ids seen in ``fit``, in the order of the rows of
        ``user_factors_`` (sorted when the ids can be compared).

    items_ : ndarray of shape (n_items,)
        The item ids seen in ``fit``, likewise.

    n_iter_ : int
        Number of iterations run.

    loss_curve_ : list of float
        Objective divided by the total sample weight after each iteration
        (for "sgd" and "adam", accumulated over the epoch as it runs, as in
        scikit-learn's SGD estimators).

    validation_scores_ : list of float or None
        RMSE on the held-out ratings after each iteration when
        ``early_stopping=True`` (lower is better), else None.

    best_iteration_ : int or None
        Iteration (1-based) whose model was kept when ``early_stopping=True``.

    rating_range_ : tuple of float
        Smallest and largest training rating (used by ``clip``).

    n_features_in_ : int
        Number of columns of ``X`` in ``fit``: 2 for (user, item) pairs, 3 for
        triples, the number of columns of a sparse rating matrix.

    See Also
    --------
    sklearn.decomposition.NMF : Non-negative factorization of a full matrix.

    Notes
    -----
    With sample weights :math:`w_{ui}` (1 by default) and the observed set
    :math:`K`, every solver minimizes the same objective

    .. math::

        L = \sum_{(u,i) \in K} w_{ui} (r_{ui} - \hat r_{ui})^2
            + \lambda \Big(\sum_u c_u \|p_u\|^2 + \sum_i c_i \|q_i\|^2\Big)
            + \lambda_b \Big(\sum_u c_u b_u^2 + \sum_i c_i b_i^2\Big)

    with :math:`\lambda` = ``alpha``, :math:`\lambda_b` = ``alpha_bias`` and
    :math:`c = 1` (``alpha_scaling="none"``), :math:`c_u = n_u`, :math:`c_i =
    n_i` (``alpha_scaling="count"``) or :math:`c_u = \sqrt{n_u}`, :math:`c_i =
    \sqrt{n_i}` (``alpha_scaling="sqrt"``), where :math:`n_u = \sum_i w_{ui}`
    and :math:`n_i = \sum_u w_{ui}` are the weighted numbers of ratings. A rating of
    weight 0 is the same as an absent rating. ``loss_curve_`` reports
    :math:`L / \sum w`.

    *ALS* sets, for every user at once, :math:`(p_u, b_u)` to the exact
    minimizer of :math:`L` with everything else fixed:

    .. math::

        \Big(\sum_{i \in K_u} w_{ui} z_i z_i^\top + c_u\,
        \mathrm{diag}(\lambda, \dots, \lambda, \lambda_b)\Big)
        \begin{bmatrix} p_u \\ b_u \end{bmatrix}
        = \sum_{i \in K_u} w_{ui} (r_{ui} - \mu - b_i) z_i,
        \qquad z_i = \begin{bmatrix} q_i \\ 1 \end{bmatrix},

    then the same for items, then :math:`\mu` to the weighted mean of
    :math:`r_{ui} - b_u - b_i - p_u^\top q_i`. :math:`L` never increases.

    *SGD* and *Adam* write :math:`L = \sum_{(u,i)} \ell_{ui}` with
    :math:`\ell_{ui} = w_{ui}(\hat r_{ui} - r_{ui})^2 + \lambda (s_u \|p_u\|^2
    + s_i \|q_i\|^2) + \lambda_b (s_u b_u^2 + s_i b_i^2)`, where
    :math:`s_u = w_{ui} c_u / \sum_j w_{uj}` spreads each row's penalty over
    its ratings. Each epoch visits the ratings once in random order, in
    minibatches. SGD steps :math:`\theta \leftarrow \theta - \eta \nabla
    \ell_{ui}` for every rating of the batch at once (the per-rating step of
    Funk-SVD, capped at :math:`\eta / \max(1, \eta m)` for a row whose ratings
    in the batch weigh :math:`m`; :math:`\mu` takes the mean of its steps).
    Adam (Kingma and Ba, 2015) minimizes the minibatch mean of
    :math:`\ell_{ui}`.

    Users or items unknown at predict time get the best estimate available:
    :math:`\mu + b_i` for an unknown user, :math:`\mu + b_u` for an unknown
    item, :math:`\mu` for both.

    References
    ----------
    .. [1] Y. Koren, R. Bell and C. Volinsky, "Matrix factorization techniques
       for recommender systems", Computer 42(8), 2009.
    .. [2] Y. Zhou, D. Wilkinson, R. Schreiber and R. Pan, "Large-scale
       parallel collaborative filtering for the Netflix prize", AAIM 2008.

    Examples
    --------
    >>> import numpy as np
    >>> from skmf import MFRegressor
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 2], [2, 1], [2, 2]])
    >>> y = np.array([5.0, 3.0, 4.0, 1.0, 2.0, 4.0])
    >>> model = MFRegressor(n_components=2, random_state=0).fit(X, y)
    >>> model.predict([[0, 2], [2, 0]]).shape
    (2,)
    >>> model.users_
    array([0, 1, 2])
    >>> unknown_user = model.predict([[7, 0]])[0]  # mu + bias of item 0
    >>> bool(np.isclose(unknown_user, model.intercept_ + model.item_bias_[0]))
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "alpha_bias": [Interval(Real, 0, None, closed="left"), None],
        "alpha_scaling": [StrOptions({"sqrt", "count", "none"})],
        "solver": [StrOptions(set(SOLVERS))],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "learning_rate": [
            Interval(Real, 0, None, closed="neither"),
            StrOptions({"auto"}),
        ],
        "batch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "fit_intercept": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "init_std": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "clip": ["boolean"],
        "device": [str, torch.device],
        "dtype": [str, type, np.dtype, torch.dtype],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        *,
        n_components=32,
        alpha=1.2,
        alpha_bias=None,
        alpha_scaling="sqrt",
        solver="als",
        max_iter=30,
        learning_rate="auto",
        batch_size="auto",
        fit_intercept=True,
        tol=1e-3,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=2,
        init_std="auto",
        clip=False,
        device="cpu",
        dtype="float32",
        n_jobs=None,
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.alpha_bias = alpha_bias
        self.alpha_scaling = alpha_scaling
        self.solver = solver
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.init_std = init_std
        self.clip = clip
        self.device = device
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.regressor_tags.poor_score = True
        return tags

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the factors and biases to observed ratings.

        Parameters
        ----------
        X : array-like of shape (n_ratings, 2) or (n_ratings, 3), DataFrame, \
or sparse matrix of shape (n_users, n_items)
            (user, item) id pairs with the ratings in ``y``; (user, item,
            rating) triples; a DataFrame whose columns are user, item[,
            rating]; or a SciPy sparse rating matrix (any format) whose stored
            entries are the ratings, rows users and columns items. Ids may be
            of any hashable type.

        y : array-like of shape (n_ratings,), default=None
            Ratings of the (user, item) pairs. Must be None for triples and
            sparse matrices.

        sample_weight : array-like of shape (n_ratings,), default=None
            Non-negative weight of each rating (in the order of
            ``X.tocoo()`` for a sparse matrix). Weight 0 is the same as leaving
            the rating out.

        Returns
        -------
        self : MFRegressor
            The fitted model.
        """
        device = resolve_device(self.device)
        dtype = resolve_dtype(self.dtype, device)
        data = parse_ratings(X, y, sample_weight, need_ratings=True, caller="fit")
        users, items, ratings, weights = (
            data.users,
            data.items,
            data.ratings,
            data.weights,
        )
        if weights is not None:
            keep = weights > 0
            if not keep.any():
                raise ValueError(
                    "All sample weights are zero: there is no rating left to fit. "
                    "Give at least one rating a positive weight."
                )
            if not keep.all():
                users, items = users[keep], items[keep]
                ratings, weights = ratings[keep], weights[keep]
            if np.all(weights == 1.0):
                weights = None
        warm = self.warm_start and hasattr(self, "user_factors_")
        if warm:
            user_ids = _extend_ids(self.users_, users)
            item_ids = _extend_ids(self.items_, items)
            u_codes, i_codes = encode_ids(users, user_ids), encode_ids(items, item_ids)
        else:
            u_codes, user_ids = factorize_ids(users)
            i_codes, item_ids = factorize_ids(items)
        rng = check_random_state(self.random_state)
        self._check_params(len(ratings))

        with torch_threads(self.n_jobs):
            self._fit_tensors(
                u_codes, i_codes, ratings, weights, user_ids, item_ids, rng,
                device, dtype, warm,
            )  # fmt: skip
        self.users_, self.items_ = user_ids, item_ids
        self.n_features_in_ = data.n_columns
        self.rating_range_ = (float(ratings.min()), float(ratings.max()))
        return self

    def _check_params(self, n_ratings):
        if self.early_stopping and n_ratings < 2:
            raise ValueError(
                "early_stopping=True needs at least 2 ratings to hold out a "
                f"validation set; got {n_ratings}. Set early_stopping=False."
            )

    def _fit_tensors(
        self, u_codes, i_codes, ratings, weights, user_ids, item_ids, rng,
        device, dtype, warm,
    ):  # fmt: skip
        n_users, n_items, k = len(user_ids), len(item_ids), self.n_components
        np_dtype = np.float32 if dtype == torch.float32 else np.float64
        generator = torch.Generator().manual_seed(int(rng.randint(2**31 - 1)))

        # Held-out ratings for early stopping.
        train_idx = val_idx = None
        if self.early_stopping:
            n_val = max(1, int(round(self.validation_fraction * len(ratings))))
            if n_val >= len(ratings):
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} leaves no "
                    f"training rating out of {len(ratings)}; lower it."
                )
            perm = rng.permutation(len(ratings))
            val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])

        def to_ratings(index):
            sel = slice(None) if index is None else index
            w = None if weights is None else weights[sel]
            return Ratings(
                _tensor(u_codes[sel], None, device),
                _tensor(i_codes[sel], None, device),
                _tensor(ratings[sel], dtype, device),
                None if w is None else _tensor(w, dtype, device),
                n_users,
                n_items,
            )

        train = to_ratings(train_idx)
        validation = to_ratings(val_idx) if self.early_stopping else None

        # Initialization (on the CPU generator, so every device agrees).
        train_w = ratings if train_idx is None else ratings[train_idx]
        tw = None if weights is None else weights[slice(None) if train_idx is None
                                                  else train_idx]  # fmt: skip
        mean = float(np.average(train_w, weights=tw)) if self.fit_intercept else 0.0
        std = float(np.sqrt(np.average((train_w - mean) ** 2, weights=tw)))
        if self.init_std == "auto":
            init_std = math.sqrt(0.1 * max(std, 1e-3) / math.sqrt(k))
        else:
            init_std = float(self.init_std)
        P = torch.randn(n_users, k, generator=generator, dtype=dtype) * init_std
        Q = torch.randn(n_items, k, generator=generator, dtype=dtype) * init_std
        bu = torch.zeros(n_users, dtype=dtype)
        bi = torch.zeros(n_items, dtype=dtype)
        mu = torch.tensor(mean, dtype=dtype)
        if warm:
            n_u0, n_i0 = len(self.users_), len(self.items_)
            P[:n_u0] = torch.as_tensor(self.user_factors_, dtype=dtype)
            Q[:n_i0] = torch.as_tensor(self.item_factors_, dtype=dtype)
            bu[:n_u0] = torch.as_tensor(self.user_bias_, dtype=dtype)
            bi[:n_i0] = torch.as_tensor(self.item_bias_, dtype=dtype)
            if self.fit_intercept:
                mu.fill_(self.intercept_)
        F = Factors(P.to(device), Q.to(device), bu.to(device), bi.to(device),
                    mu.to(device))  # fmt: skip
        # Rows without training ratings (held out, or zero weight) stay at 0.
        wu, wi = train.row_weights()
        F.P[wu == 0] = 0
        F.Q[wi == 0] = 0

        alpha_bias = self.alpha if self.alpha_bias is None else self.alpha_bias
        penalty = Penalty.build(train, self.alpha, alpha_bias, self.alpha_scaling)
        step_cls = SOLVERS[self.solver]
        if self.solver == "als":
            step = step_cls(F, train, penalty, fit_intercept=self.fit_intercept)
        else:
            lr = self.learning_rate
            if lr == "auto":
                lr = DEFAULT_LEARNING_RATES[self.solver]
            batch = self.batch_size
            if batch == "auto":
                batch = int(np.clip(len(train) // 100, 1024, 65536))
            step = step_cls(
                F, train, penalty, learning_rate=lr, batch_size=batch,
                fit_intercept=self.fit_intercept, generator=generator,
            )  # fmt: skip
        progress = None
        if self.verbose:
            progress = tqdm(total=self.max_iter, desc=f"MFRegressor[{self.solver}]")
        try:
            result = run_fit_loop(
                step, F, train, penalty,
                max_iter=self.max_iter, tol=self.tol,
                n_iter_no_change=self.n_iter_no_change, validation=validation,
                solver_name=self.solver, progress=progress,
            )  # fmt: skip
        finally:
            if progress is not None:
                progress.close()
            if hasattr(step, "close"):
                step.close()

        def to_numpy(t):
            return t.detach().to("cpu").numpy().astype(np_dtype, copy=True)

        self.user_factors_ = to_numpy(F.P)
        self.item_factors_ = to_numpy(F.Q)
        self.user_bias_ = to_numpy(F.bu)
        self.item_bias_ = to_numpy(F.bi)
        self.intercept_ = float(F.mu)
        self.n_iter_ = result.n_iter
        self.loss_curve_ = result.loss_curve
        self.validation_scores_ = result.validation_scores
        self.best_iteration_ = result.best_iteration

    # -------------------------------------------------------------- predict
    def predict(self, X):
        """Predict ratings for (user, item) pairs.

        Parameters
        ----------
        X : array-like of shape (n, 2) or (n, 3), DataFrame, or sparse matrix
            (user, item) pairs; triples (the rating column is ignored); or a
            sparse matrix, whose stored entries are predicted in the order of
            ``X.tocoo()`` (row-major for CSR). Unknown users or items get
            :math:`\\mu` plus the known bias.

        Returns
        -------
        y_pred : ndarray of shape (n,)
            Predicted ratings (float64).
        """
        check_is_fitted(self)
        data = parse_ratings(X, None, None, need_ratings=False, caller="predict")
        return self._predict_ids(data.users, data.items)

    def _predict_ids(self, users, items):
        u = encode_ids(users, self.users_)
        i = encode_ids(items, self.items_)
        with torch_threads(self.n_jobs):
            pred = _predict_codes(
                u, i, self.user_factors_, self.item_factors_, self.user_bias_,
                self.item_bias_, self.intercept_,
            )  # fmt: skip
        if self.clip:
            np.clip(pred, *self.rating_range_, out=pred)
        return pred

    def score(self, X, y=None, sample_weight=None):
        """Coefficient of determination R^2 of the predicted ratings.

        Parameters
        ----------
        X : array-like, DataFrame or sparse matrix
            Test ratings, in any form accepted by :meth:`fit`.

        y : array-like of shape (n_ratings,), default=None
            True ratings of (user, item) pairs; None for triples and sparse
            matrices (their stored entries are scored).

        sample_weight : array-like of shape (n_ratings,), default=None
            Sample weights.

        Returns
        -------
        score : float
            :math:`R^2` of ``self.predict(X)`` against the true ratings.
        """
        check_is_fitted(self)
        data = parse_ratings(X, y, sample_weight, need_ratings=True, caller="score")
        pred = self._predict_ids(data.users, data.items)
        return float(r2_score(data.ratings, pred, sample_weight=data.weights))


def _extend_ids(known: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``known`` followed by the ids of ``ids`` not in it (sorted if possible)."""
    codes = encode_ids(ids, known)
    new = ids[codes < 0]
    if len(new) == 0:
        return known
    _, new_unique = factorize_ids(new)
    if known.dtype == new_unique.dtype:
        return np.concatenate([known, new_unique])
    return np.concatenate([known.astype(object), new_unique.astype(object)])


def _tensor(array: np.ndarray, dtype, device) -> torch.Tensor:
    """A tensor on ``device`` holding ``array`` (read-only arrays are copied)."""
    if not array.flags.writeable:
        array = array.copy()
    return torch.as_tensor(array, dtype=dtype, device=device)


def _predict_codes(u, i, P, Q, bu, bi, mu) -> np.ndarray:
    """mu + bu[u] + bi[i] + P[u] . Q[i], with code -1 meaning unknown (zeros).

    Works through the pairs in chunks small enough for the gathered factor
    rows to stay in the CPU cache (about 10M predictions per second on 2 cores).
    """
    out = torch.empty(len(u), dtype=torch.float64)
    Pt, Qt, but, bit, ut_all, it_all = (
        _tensor(a, None, "cpu") for a in (P, Q, bu, bi, u, i)
    )
    unknown = bool((ut_all < 0).any() or (it_all < 0).any())
    for s in range(0, len(u), _PREDICT_CHUNK):
        ut, it = ut_all[s : s + _PREDICT_CHUNK], it_all[s : s + _PREDICT_CHUNK]
        if unknown:
            ku, ki = ut >= 0, it >= 0
            ut, it = ut.clamp_min(0), it.clamp_min(0)
        pu, qi = Pt.index_select(0, ut), Qt.index_select(0, it)
        pred = torch.bmm(pu[:, None, :], qi[:, :, None]).view(-1)
        b_u, b_i = but.index_select(0, ut), bit.index_select(0, it)
        if unknown:
            pred.mul_(ku & ki)
            b_u.mul_(ku)
            b_i.mul_(ki)
        out[s : s + _PREDICT_CHUNK] = pred.add_(b_u).add_(b_i).add_(mu)
    return out.numpy()
