"""MFRegressor: the scikit-learn face of the torch solvers (no tensor math here)."""

from __future__ import annotations

import warnings
from dataclasses import replace
from functools import partial
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skmf._data import (
    RatingData,
    as_id_array,
    check_feature_names,
    encode_ids,
    extend_ids,
    factorize_ids,
    parse_ratings,
)
from skmf._device import (
    DEVICE_TYPES,
    DTYPE_TYPES,
    serving_device,
    torch_threads,
)
from skmf._recommend import (
    add_rated,
    gather_exclusions,
    predict_codes,
    rated_pairs,
    similar_rows,
    top_k,
)
from skmf._solvers import (
    SOLVERS,
    Model,
    Settings,
    fit_model,
    fold_in,
    fold_in_implicit,
)

__all__ = ["MFRegressor"]


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
    n_components : int, default=16
        Number of latent factors k.

    alpha : float, default=0.95
        Regularization strength of the factors, in [0, inf), per unit of the
        ratings' standard deviation :math:`\sigma` (the penalty of the
        objective in the Notes is :math:`\lambda = \alpha \sigma`): the
        same ``alpha`` means the same on a 1-5, a 1-100 or a -10-10 scale,
        and fitting :math:`a r + d` gives the predictions :math:`a \hat r +
        d`. The default was chosen on MovieLens and on synthetic ratings of
        several scales and shapes (see the Accuracy page of the
        documentation). "gibbs" learns its penalties from the data and uses
        ``alpha``, ``alpha_bias`` and ``alpha_scaling`` only in
        :meth:`partial_fit` and in :meth:`recommend` with ``ratings``.

    alpha_bias : float or None, default=None
        Regularization strength :math:`\lambda_b` of the biases, in [0,
        inf). It has no unit (biases are in the ratings' units, as the
        errors are). None uses ``alpha``.

    alpha_scaling : {"sqrt", "count", "none"}, default="sqrt"
        How the penalty of each user and item is scaled by its (weighted)
        number of ratings :math:`n`: "none" gives the textbook objective
        :math:`\lambda (\|P\|^2 + \|Q\|^2 + \|b\|^2)`; "count" multiplies
        each row's penalty by :math:`n`, the weighted-:math:`\lambda` of
        ALS-WR (Zhou et al. 2008); "sqrt" by :math:`\sqrt{n}`, in between,
        which gave the lowest test RMSE on MovieLens 100K and 1M with one
        ``alpha`` for both (see the accuracy page of the documentation).

    solver : {"als", "sgd", "adam", "gibbs"}, default="als"
        "als": alternating exact ridge solves for all users, then all items
        (batched Cholesky). "sgd": minibatch stochastic gradient descent with
        per-rating steps. "adam": minibatch Adam. "gibbs": Bayesian matrix
        factorization by Gibbs sampling, which learns its own penalties and
        keeps the posterior mean of the factors (see the Notes); the most
        accurate, at the cost of ``max_iter`` sweeps (use ``max_iter=50`` or
        more). With ``implicit_feedback=True``, Bayesian SVD++.

    max_iter : int, default=30
        Maximum number of ALS sweeps or SGD/Adam epochs; for "gibbs", the
        number of sweeps, of which the first 10 (a quarter if fewer) are
        burn-in.

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

    tol : float or "auto", default="auto"
        Relative tolerance of the stopping rule: training stops once the
        objective (or, with ``early_stopping``, the validation RMSE) has not
        improved by more than ``tol`` times its best value for
        ``n_iter_no_change`` iterations in a row. "auto" uses 1e-2 for "als"
        on its objective, which it computes exactly and never increases (on
        MovieLens the test RMSE stops improving once a sweep gains less than
        1 %), and 1e-3 otherwise (the epoch objective of "sgd" and "adam", and
        the validation RMSE, and ALS with ``implicit_feedback=True``, whose
        test RMSE keeps improving longer). "gibbs" ignores ``tol`` and
        ``n_iter_no_change`` and runs ``max_iter`` sweeps.

    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training ratings,
        stop when their RMSE stops improving, and restore the best iteration.
        Not available with "gibbs".

    validation_fraction : float, default=0.1
        Fraction of the ratings held out when ``early_stopping=True``, in
        (0, 1).

    n_iter_no_change : int, default=1
        Number of iterations in a row without improvement before stopping.
        Raise it for noisy curves, e.g. the validation RMSE of "sgd" with
        ``early_stopping``.

    init : {"svd", "random"}, default="svd"
        How the factors start. "svd": from a truncated randomized SVD of the
        matrix of centred ratings (:math:`P = U S^{1/2}`, :math:`Q = V
        S^{1/2}`, Halko et al. 2011), computed on the device from the
        ratings alone; ALS started there needs about a third of the sweeps of
        a random start for the same test error. "random": normal with
        standard deviation ``init_std``. Biases start at 0 either way.

    init_std : float or "auto", default="auto"
        Standard deviation of the normal initialization of the factors (with
        ``init="random"``, and for users and items new to a ``warm_start``
        fit), in the units of the standardized ratings (see the Notes):
        ``init_std * sqrt(std(r))`` in the ratings' units. "auto" uses
        ``sqrt(0.1 / sqrt(k))``, so that the initial :math:`p_u^\top q_i`
        are about a tenth of the rating spread.

    clip : bool, default=False
        Whether to clip predictions to the range of the training ratings. Off
        by default, so that ``predict`` is the model's formula: on MovieLens
        100K and 1M clipping lowered the test RMSE by at most 0.0001.

    device : str or device object, default="cpu"
        Where to train: "cpu", "cuda", "cuda:N", "mps", "auto" (a GPU if there
        is one) or a PyTorch device object. Fitted attributes are NumPy
        arrays whatever the device.

    dtype : {"float32", "float64"}, default="float32"
        Floating-point type of the computation and of the fitted arrays.

    n_jobs : int or None, default=None
        Number of CPU threads torch uses while fitting and predicting. None
        uses PyTorch's own thread count (its ``get_num_threads``), lowered to the
        cores that other processes leave idle when the call starts (on
        Linux): torch's threads wait for each other after every operation,
        so on a busy machine a thread without a core of its own slows the
        whole fit far beyond its share. As in joblib, -1 uses all cores, -2
        all but one, and so on; 0 is not allowed.

    random_state : int, RandomState instance or None, default=None
        Seed of the initialization, the shuffling and the validation split.
        Pass an int for reproducible results.

    verbose : int, default=0
        If > 0, show a progress bar with the loss at each iteration.

    warm_start : bool, default=False
        If True, ``fit`` starts from the factors and biases of the previous
        fit instead of a new initialization: users and items not seen before
        are appended, and those without ratings in the new data keep what
        they had. ``n_components`` must stay the same.

    keep_rated_pairs : bool, default=True
        Whether the fitted model keeps the (user, item) pairs it was trained
        on (4 bytes per rating), so that :meth:`recommend` can leave out what
        each user already rated. With False the model holds its parameters
        only; :meth:`recommend` then takes the pairs to leave out from its
        ``exclude`` argument.

    implicit_feedback : bool, default=False
        Whether to fit SVD++ (Koren 2008, [6]_): each user's factors get the
        implicit term :math:`z_u = |N(u)|^{-1/2} \sum_{j \in N(u)} y_j`
        over the set :math:`N(u)` of items the user rated in the training
        data, with learned item factors :math:`y_j` (``implicit_factors_``,
        penalized by :math:`50 \lambda \|y_j\|^2`, see the Notes), and the
        prediction is :math:`\mu + b_u + b_i + q_i^\top (p_u + z_u)`. Lowers
        the test RMSE of MovieLens (see the accuracy page) at about three
        times the fit time of ALS. With "als" (the default; exact user and
        item updates and a conjugate-gradient update of :math:`Y`, see the
        Notes), "sgd", "adam" and "gibbs" (Bayesian SVD++, the most
        accurate); not with ``positive``, ``early_stopping`` or
        :meth:`partial_fit`. A user unknown at fit time has an empty
        :math:`N(u)`; :meth:`recommend` with ``ratings`` takes :math:`N(u)`
        from those ratings.

    positive : bool, default=False
        Whether to constrain the factors :math:`P` and :math:`Q` to be
        non-negative (the biases and :math:`\mu` stay free), as in
        :class:`sklearn.decomposition.NMF`. "als" solves each row's
        non-negative least-squares problem exactly (batched on the device),
        "sgd" and "adam" project the factors on :math:`[0, \infty)` after
        every minibatch; ``init="svd"`` keeps the positive or the negative
        part of each singular pair (NNDSVD). Not with "gibbs" nor
        ``implicit_feedback``.

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

    implicit_factors_ : ndarray of shape (n_items, n_components) or None
        Implicit item factors :math:`y_j` of SVD++ (``implicit_feedback=True``),
        None otherwise.

    user_implicit_factors_ : ndarray of shape (n_users, n_components) or None
        With ``implicit_feedback=True``, each user's implicit term
        :math:`z_u = |N(u)|^{-1/2} \sum_{j \in N(u)} y_j` over the items of
        its training ratings, computed at the end of the fit so that predicting
        needs no rated pairs: the user's factors in the prediction are
        ``user_factors_ + user_implicit_factors_``. None otherwise.

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
        scikit-learn's SGD estimators; for "gibbs", the weighted mean squared
        training error of each sweep's sample).

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
    :math:`K`, the solvers "als", "sgd" and "adam" minimize the objective

    .. math::

        L = \sum_{(u,i) \in K} w_{ui} (r_{ui} - \hat r_{ui})^2
            + \lambda \Big(\sum_u c_u \|p_u\|^2 + \sum_i c_i \|q_i\|^2\Big)
            + \lambda_b \Big(\sum_u c_u b_u^2 + \sum_i c_i b_i^2\Big)

    with :math:`\lambda` = ``alpha`` times the weighted standard deviation
    :math:`\sigma` of the ratings (their root mean square when
    ``fit_intercept=False``), :math:`\lambda_b` = ``alpha_bias`` and
    :math:`c = 1` (``alpha_scaling="none"``), :math:`c_u = n_u`, :math:`c_i =
    n_i` (``alpha_scaling="count"``) or :math:`c_u = \sqrt{n_u}`, :math:`c_i =
    \sqrt{n_i}` (``alpha_scaling="sqrt"``), where :math:`n_u = \sum_i w_{ui}`
    and :math:`n_i = \sum_u w_{ui}` are the weighted numbers of ratings. A
    rating of weight 0 is the same as an absent rating. ``loss_curve_``
    reports :math:`L / \sum w`.

    Every solver works on the standardized ratings :math:`(r - m) /
    \sigma` (:math:`m` the weighted mean, 0 without an intercept) and the
    fitted model is converted back, which is the objective above: so
    ``learning_rate``, ``init_std`` and ``tol`` have no unit either, and a
    model fitted on ratings :math:`a r + d` (:math:`a > 0`) predicts
    :math:`a \hat r + d`, whatever the solver.

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
    Funk-SVD), each row's step capped at :math:`\eta / \max(1, \eta H)`,
    where :math:`H` is the row's curvature in the batch (for :math:`p_u`,
    :math:`\sum (2 w_{ui} \|q_i\|^2 + 2 \lambda s_u)`; for :math:`b_u`,
    :math:`\sum (2 w_{ui} + 2 \lambda_b s_u)`), so that no row's summed step
    overshoots its own minimizer however large the batch; :math:`\mu` takes
    the mean of its steps.
    Adam (Kingma and Ba, 2015) minimizes the minibatch mean of
    :math:`\ell_{ui}`.

    *Gibbs* samples the posterior of Bayesian matrix factorization [4]_: the
    ratings are :math:`\hat r_{ui}` plus Gaussian noise of precision
    :math:`\tau w_{ui}`, and each dimension :math:`d` of the users'
    :math:`[p_u, b_u]` has a Gaussian prior whose mean :math:`m_d` and
    precision :math:`\lambda_d` are themselves drawn from a Normal-Gamma
    hyperprior (libFM's, [5]_), likewise for the items; :math:`\tau` has a
    Gamma(1, 1) prior and :math:`\mu` a flat one. Each sweep draws the
    users' hyperparameters, then every :math:`[p_u, b_u]` at once from its
    Gaussian conditional, whose mean solves the ALS system above with the
    penalty :math:`\mathrm{diag}(\lambda) / \tau` and the prior mean
    added to the right-hand side; then the same for the items, then
    :math:`\mu` and :math:`\tau`. The fitted factors, biases and
    :math:`\mu` are the averages, over the sweeps after a burn-in (10
    sweeps, or a quarter of ``max_iter`` if fewer), of each row's
    conditional mean (a Rao-Blackwellized estimate of the posterior mean),
    so ``predict`` uses the same formula as for the other solvers. The
    sampler runs on the ratings divided by their standard deviation, so the
    hyperpriors do not depend on the rating scale. The
    penalties being learned, there is nothing to tune but ``n_components``
    and ``max_iter``.

    *SVD++* (``implicit_feedback=True``) predicts :math:`\hat r_{ui} = \mu
    + b_u + b_i + q_i^\top (p_u + z_u)` with :math:`z_u = |N(u)|^{-1/2}
    \sum_{j \in N(u)} y_j` and adds :math:`\lambda_Y \sum_j \|y_j\|^2`
    to :math:`L`, with :math:`\lambda_Y = 50 \lambda` whatever
    ``alpha_scaling`` (tuned on MovieLens 100K and 1M). ALS sweeps through
    four blocks, each update exact or a descent step, so :math:`L` never
    increases: (1) :math:`Y`, whose
    objective is a quadratic :math:`\frac12 \langle Y, H Y\rangle -
    \langle B, Y\rangle` with :math:`H V = N^\top (G_u (N V)_u) + \lambda_Y
    V`, where :math:`N` is the sparse matrix of the :math:`|N(u)|^{-1/2}`,
    :math:`G_u = \sum_{i \in K_u} w_{ui} q_i q_i^\top` and :math:`B =
    N^\top (\sum_i w_{ui} (r_{ui} - \mu - b_u - b_i - q_i^\top p_u)
    q_i)_u`: three iterations of Jacobi-preconditioned conjugate gradients
    started at the current :math:`Y`; (2) users: :math:`(p_u + z_u, b_u)`
    solves the ALS system above with :math:`\lambda c_u z_u` added to the
    factor part of the right-hand side (a ridge centred on :math:`z_u`);
    (3) items: the ALS item update with the users' factors :math:`p_u +
    z_u`; (4) :math:`\mu`. SGD and Adam use the per-rating terms above with
    :math:`p_u + z_u` in :math:`\hat r_{ui}` and :math:`\lambda_Y
    (w_{ui} / n_i) \|y_i\|^2` added (:math:`y_i`'s penalty spread over the
    ratings of item :math:`i`); the gradient of rating :math:`(u, i)`,
    :math:`2 w_{ui} e_{ui} |N(u)|^{-1/2} q_i`, reaches every :math:`y_j`,
    :math:`j \in N(u)` (Koren's SGD update, a minibatch at a time).

    With ``positive=True``, ALS sets each row's :math:`(p_u, b_u)` to the
    minimizer of the same row objective with :math:`p_u \ge 0`: a small
    quadratic program solved for every row of a block at once by coordinate
    descent (each coordinate set to its exact constrained minimizer) followed
    by an exact solve on the support found, accepted where it satisfies the
    Karush-Kuhn-Tucker conditions; SGD and Adam clamp the factors at 0 after
    each step (projected gradient).

    Users or items unknown at predict time get the best estimate available:
    :math:`\mu + b_i` for an unknown user, :math:`\mu + b_u` for an unknown
    item, :math:`\mu` for both.

    References
    ----------
    .. [1] Y. Koren, R. Bell and C. Volinsky, "Matrix factorization techniques
       for recommender systems", Computer 42(8), 2009.
    .. [2] Y. Zhou, D. Wilkinson, R. Schreiber and R. Pan, "Large-scale
       parallel collaborative filtering for the Netflix prize", AAIM 2008.
    .. [3] N. Halko, P.-G. Martinsson and J. A. Tropp, "Finding structure
       with randomness: probabilistic algorithms for constructing approximate
       matrix decompositions", SIAM Review 53(2), 2011.
    .. [4] R. Salakhutdinov and A. Mnih, "Bayesian probabilistic matrix
       factorization using Markov chain Monte Carlo", ICML 2008.
    .. [5] S. Rendle, "Factorization machines with libFM", ACM TIST 3(3),
       2012.
    .. [6] Y. Koren, "Factorization meets the neighborhood: a multifaceted
       collaborative filtering model", KDD 2008.

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
        # Bounded so that penalties stay finite in float32 (1e30 already
        # shrinks every factor and bias to 0).
        "alpha": [Interval(Real, 0, 1e30, closed="both")],
        "alpha_bias": [Interval(Real, 0, 1e30, closed="both"), None],
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
        "tol": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"svd", "random"})],
        # In standardized units: 1e3 is already 1e6 standard deviations for p.q.
        "init_std": [Interval(Real, 0, 1e3, closed="both"), StrOptions({"auto"})],
        "clip": ["boolean"],
        "device": DEVICE_TYPES,
        "dtype": DTYPE_TYPES,
        # joblib's rules: 1, 2, ... threads, or -1 (all cores), -2 (all but one)...
        "n_jobs": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Integral, None, -1, closed="right"),
            None,
        ],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "keep_rated_pairs": ["boolean"],
        "implicit_feedback": ["boolean"],
        "positive": ["boolean"],
    }

    def __init__(
        self,
        *,
        n_components=16,
        alpha=0.95,
        alpha_bias=None,
        alpha_scaling="sqrt",
        solver="als",
        max_iter=30,
        learning_rate="auto",
        batch_size="auto",
        fit_intercept=True,
        tol="auto",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=1,
        init="svd",
        init_std="auto",
        clip=False,
        device="cpu",
        dtype="float32",
        n_jobs=None,
        random_state=None,
        verbose=0,
        warm_start=False,
        keep_rated_pairs=True,
        implicit_feedback=False,
        positive=False,
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
        self.init = init
        self.init_std = init_std
        self.clip = clip
        self.device = device
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.keep_rated_pairs = keep_rated_pairs
        self.implicit_feedback = implicit_feedback
        self.positive = positive

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
            entries are the ratings, rows users and columns items (BSR and DIA
            matrices store whole blocks or diagonals: for them the nonzero
            entries are the ratings). Ids may be of any hashable type.

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
        settings, record = self._fit(X, y, sample_weight)
        if not record.converged:
            warnings.warn(
                f"MFRegressor ({settings.solver!r}) reached max_iter="
                f"{settings.max_iter} before the objective converged (tol="
                f"{settings.stopping_tolerance:g}). Increase 'max_iter', raise 'tol', "
                "or use early_stopping=True.",
                ConvergenceWarning,
                stacklevel=3,  # fit <- scikit-learn's _fit_context <- the caller
            )
        return self

    def _fit(self, X, y, sample_weight, **overrides):
        """Fit with some parameters replaced by ``overrides``.

        Returns the settings used and the fit record.
        """
        data = _positive_ratings(
            parse_ratings(X, y, sample_weight, need_ratings=True, caller="fit"), "fit"
        )
        users, items, ratings, weights = (
            data.users, data.items, data.ratings, data.weights,
        )  # fmt: skip
        warm = self.warm_start and hasattr(self, "user_factors_")
        if warm:
            self._check_n_components("warm_start=True")
            user_ids = extend_ids(self.users_, users)
            item_ids = extend_ids(self.items_, items)
            u_codes, i_codes = encode_ids(users, user_ids), encode_ids(items, item_ids)
        else:
            u_codes, user_ids = factorize_ids(users)
            i_codes, item_ids = factorize_ids(items)
        settings = Settings.from_params(self.get_params(deep=False), **overrides)
        self._check_params(settings, len(ratings))
        rng = check_random_state(self.random_state)
        shape = (len(user_ids), len(item_ids))
        with torch_threads(self.n_jobs):
            model, record = fit_model(
                u_codes, i_codes, ratings, weights, shape, settings,
                random_state=rng, start=self._model() if warm else None,
            )  # fmt: skip
        self._set_model(model)
        self.n_iter_ = record.n_iter
        self.loss_curve_ = record.loss_curve
        self.validation_scores_ = record.validation_scores
        self.best_iteration_ = record.best_iteration
        self._units = record.units
        self._set_inputs(data, user_ids, item_ids)
        self.rating_range_ = (float(ratings.min()), float(ratings.max()))
        self._rated = None
        if self.keep_rated_pairs:  # from the fit's grouping when it made one
            self._rated = record.rated_pairs or rated_pairs(u_codes, i_codes, *shape)
        self._user_n = _counts(u_codes, weights, shape[0])
        self._item_n = _counts(i_codes, weights, shape[1])
        return settings, record

    def _set_inputs(self, data: RatingData, user_ids, item_ids) -> None:
        """The id maps and the description of ``X`` seen in ``fit``."""
        self.users_, self.items_ = user_ids, item_ids
        self.n_features_in_ = data.n_columns
        if data.feature_names is not None:
            self.feature_names_in_ = data.feature_names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _model(self) -> Model:
        """The fitted parameters, as the solvers take them."""
        return Model(
            self.user_factors_, self.item_factors_, self.user_bias_,
            self.item_bias_, self.intercept_,
            getattr(self, "implicit_factors_", None),
            getattr(self, "user_implicit_factors_", None),
        )  # fmt: skip

    def _user_vectors(self, rows=None) -> np.ndarray:
        """The users' factors in the prediction, p_u plus z_u with SVD++, of
        the users ``rows`` (codes; None: all)."""
        rows = slice(None) if rows is None else rows
        Z = getattr(self, "user_implicit_factors_", None)
        P = self.user_factors_[rows]
        return P if Z is None else P + Z[rows]

    def _set_model(self, model: Model) -> None:
        self.user_factors_ = model.user_factors
        self.item_factors_ = model.item_factors
        self.user_bias_ = model.user_bias
        self.item_bias_ = model.item_bias
        self.intercept_ = model.intercept
        self.implicit_factors_ = model.implicit_factors
        self.user_implicit_factors_ = model.user_implicit

    def _check_names(self, data: RatingData, caller: str) -> None:
        """The DataFrame column names of ``X`` must be those of ``fit``."""
        fitted = getattr(self, "feature_names_in_", None)
        check_feature_names(fitted, data, f"MFRegressor.{caller}")

    def _check_n_components(self, what: str) -> None:
        """``n_components`` must be that of the fitted factors to continue."""
        fitted = self.user_factors_.shape[1]
        if fitted != self.n_components:
            raise ValueError(
                f"{what} continues from the factors of the previous fit, which "
                f"has n_components={fitted}, but n_components={self.n_components} "
                f"now. Keep n_components={fitted}, or call fit with "
                "warm_start=False to start anew."
            )

    @staticmethod
    def _check_params(settings: Settings, n_ratings: int) -> None:
        if settings.solver == "gibbs" and settings.positive:
            name = "positive"
            raise ValueError(
                f"{name}=True is not available with solver='gibbs'. Use solver="
                "'als' (the default), 'sgd' or 'adam', or set "
                f"{name}=False."
            )
        if settings.implicit_feedback and settings.positive:
            raise ValueError(
                "implicit_feedback=True and positive=True cannot be combined. Set "
                "one of them to False."
            )
        if settings.implicit_feedback and settings.early_stopping:
            raise ValueError(
                "early_stopping=True is not available with implicit_feedback=True. "
                "Set early_stopping=False (ALS stops on its objective, with 'tol')."
            )
        if settings.early_stopping and settings.solver == "gibbs":
            raise ValueError(
                "early_stopping=True is not available with solver='gibbs': the "
                "sampler runs max_iter sweeps and averages the samples. Set "
                "early_stopping=False, and choose max_iter (e.g. 100 to 200) by "
                "cross-validation if needed."
            )
        if settings.early_stopping and n_ratings < 2:
            raise ValueError(
                "early_stopping=True needs at least 2 ratings to hold out a "
                f"validation set; got {n_ratings}. Set early_stopping=False."
            )

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
        self._check_names(data, "predict")
        return self._predict_ids(data.users, data.items)

    def _predict_ids(self, users, items):
        u = encode_ids(users, self.users_)
        i = encode_ids(items, self.items_)
        # Each prediction is one thread's dot product: no load probe needed.
        with torch_threads(self.n_jobs, adapt=False):
            pred = predict_codes(
                u, i, self.user_factors_, self.item_factors_, self.user_bias_,
                self.item_bias_, self.intercept_,
                getattr(self, "user_implicit_factors_", None),
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
        self._check_names(data, "score")
        pred = self._predict_ids(data.users, data.items)
        return float(r2_score(data.ratings, pred, sample_weight=data.weights))

    # ------------------------------------------------------------ recommend
    def recommend(
        self, users, n=10, *, exclude_seen=True, items=None, ratings=None, exclude=None
    ):
        """Recommend to each user the items of highest predicted rating.

        The score of item ``i`` for user ``u`` is the predicted rating
        :math:`\\mu + b_u + b_i + p_u^\\top q_i`. It is computed with torch on
        the model's ``device``, one block of users at a time (the block of
        scores stays within a fixed memory budget, so the full users x items
        matrix is never formed), and the best ``n`` items of each user are
        kept with a top-k.

        Parameters
        ----------
        users : user id or array-like of shape (n_users,)
            One user id, or several (repeats allowed). A user unknown to the
            model (and without ``ratings``) gets the items of highest
            :math:`\\mu + b_i`, as :meth:`predict` would score them.

        n : int, default=10
            Number of items per user, at least 1.

        exclude_seen : bool, default=True
            Whether to leave out the items each user rated in the training
            data (the ratings of the last :meth:`fit` and of the later
            :meth:`partial_fit` calls) and in ``ratings``. A model fitted
            with ``keep_rated_pairs=False`` does not know the training pairs:
            it then leaves out the pairs of ``exclude`` and ``ratings``, and
            needs one of them.

        items : array-like of shape (n_candidates,), default=None
            The candidate items (duplicates are ignored). None: every item of
            ``items_``. A candidate unknown to the model is scored
            :math:`\\mu + b_u`, as :meth:`predict` would.

        ratings : array-like of shape (n_ratings, 3), DataFrame, or dict, \
default=None
            Ratings to serve users from without retraining: (user, item,
            rating) triples (any form :meth:`fit` accepts for triples), or,
            when ``users`` is a single id, a dict ``{item: rating}`` of that
            user's ratings (an empty dict is the same as None). Every user
            named there gets factors and a bias
            folded in from these ratings alone (the exact ridge solution of
            the objective in the Notes of :class:`MFRegressor` with the items
            fixed, i.e. the ALS user update), replacing, for this call, any
            factors learned in :meth:`fit`; ratings of items unknown to the
            model are ignored. The model itself is not changed; use
            :meth:`partial_fit` to keep new users.

        exclude : array-like of shape (n_pairs, 2), DataFrame, or sparse \
matrix, default=None
            (user, item) pairs to leave out, in any form :meth:`predict`
            accepts, in addition to the training pairs (with
            ``exclude_seen=True``); pairs of other users are ignored.

        Returns
        -------
        item_ids : ndarray of shape (n_users, n_cols), or (n_cols,) for one user
            The recommended item ids (from ``items_`` or ``items``), best
            first. ``n_cols`` is ``n``, or fewer when fewer candidates are
            left: the largest number of candidates any of the users has left
            after exclusion. A user with fewer candidates left is padded at
            the end of its row with a fill id that is never one of the
            candidates: -1 for integer ids (when -1 is itself an id, the
            integer below the smallest id or above the largest), NaN for
            float ids, "" for string ids, None for other ids (the array is
            then of object dtype). The padded scores are NaN: test
            ``np.isnan(scores)`` to find the padding whatever the ids.

        scores : ndarray of float64, same shape as ``item_ids``
            The predicted ratings of the recommended items, in decreasing
            order (clipped to ``rating_range_`` when ``clip=True``; NaN on
            padding).

        See Also
        --------
        similar_items : Items closest to given items in factor space.
        skmf.metrics.ndcg_at_k : Ranking quality on held-out ratings.

        Examples
        --------
        >>> import numpy as np
        >>> from skmf import MFRegressor
        >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 2], [2, 1], [2, 2]])
        >>> y = np.array([5.0, 3.0, 4.0, 1.0, 2.0, 4.0])
        >>> model = MFRegressor(n_components=2, random_state=0).fit(X, y)

        User 0 rated items 0 and 1, so only item 2 is left to recommend:

        >>> item_ids, scores = model.recommend(0, n=2)
        >>> item_ids
        array([2])
        >>> bool(np.isclose(scores[0], model.predict([[0, 2]])[0]))
        True

        Several users at once, without excluding the rated items:

        >>> item_ids, scores = model.recommend([0, 1], n=3, exclude_seen=False)
        >>> item_ids.shape
        (2, 3)

        A new user served from two ratings, without retraining:

        >>> model.recommend(7, n=5, ratings={0: 5.0, 2: 1.0})[0]
        array([1])
        """
        check_is_fitted(self)
        n = _check_top_n(n, "recommend")
        if exclude_seen and self._rated is None and exclude is None and not ratings:
            raise ValueError(
                "This model was fitted with keep_rated_pairs=False, so it does not "
                "know which items each user rated. Pass the (user, item) pairs to "
                "leave out as exclude=..., or set exclude_seen=False."
            )
        user_ids, single = as_id_array(users, "users")
        m = len(user_ids)
        Q, bi = self.item_factors_, self.item_bias_
        dtype, k = Q.dtype, Q.shape[1]
        u = encode_ids(user_ids, self.users_)
        known = u >= 0
        U = np.zeros((m, k), dtype=dtype)
        ub = np.zeros(m, dtype=dtype)
        U[known] = self._user_vectors(u[known])
        ub[known] = self.user_bias_[u[known]]

        # Candidates: their factors and offsets mu + b_i (0 and mu if unknown).
        # Item codes are those of items_, then n_items + j for the j-th
        # candidate unknown to the model (so that ratings can exclude it).
        unknown_cands = None
        if items is None:
            cand_ids, cand_pos = self.items_, None
            V, vb = Q, (bi + dtype.type(self.intercept_)).astype(dtype)
        else:
            cand_ids = pd.unique(as_id_array(items, "items")[0])
            codes = encode_ids(cand_ids, self.items_)
            has = codes >= 0
            V = np.zeros((len(cand_ids), k), dtype=dtype)
            vb = np.full(len(cand_ids), self.intercept_, dtype=dtype)
            V[has] = Q[codes[has]]
            vb[has] += bi[codes[has]]
            cand_pos = np.full(len(self.items_), -1, dtype=np.int64)
            cand_pos[codes[has]] = np.flatnonzero(has)
            unknown_cands = cand_ids[~has]
            cand_pos = np.concatenate([cand_pos, np.flatnonzero(~has)])
        if isinstance(ratings, dict) and not ratings:
            ratings = None  # no ratings: the user is served as without them

        n_codes = len(self.items_)
        if unknown_cands is not None:
            n_codes += len(unknown_cands)
        sources = []
        if exclude_seen and self._rated is not None:
            sources.append((self._rated, len(self.items_), u))
        if exclude is not None:
            sources.append(self._exclusions(exclude, user_ids, unknown_cands))
        device = serving_device(self.device)
        with torch_threads(self.n_jobs):
            if ratings is not None:
                P_new, b_new, rows, rated = self._fold_in_ratings(
                    ratings, users if single else None, user_ids, device,
                    unknown_cands,
                )  # fmt: skip
                has = rows >= 0
                U[has], ub[has] = P_new[rows[has]], b_new[rows[has]]
                if exclude_seen:
                    sources.append((rated, n_codes, rows))
            exclude = gather_exclusions(sources, cand_pos, m) if sources else None
            scores, pos = top_k(U, ub, V, vb, n, exclude, device)
        item_ids = _ids_at(cand_ids, pos)
        if self.clip:
            np.clip(scores, *self.rating_range_, out=scores)
        if single:
            return item_ids[0], scores[0]
        return item_ids, scores

    def similar_items(self, items, n=10):
        """Find the items closest to given items by cosine similarity of factors.

        The similarity of items ``i`` and ``j`` is
        :math:`q_i^\\top q_j / (\\|q_i\\| \\|q_j\\|)` (0 when a factor vector is
        zero), computed with torch on the model's ``device`` one block of
        query items at a time, as in :meth:`recommend`. Biases play no part.

        Parameters
        ----------
        items : item id or array-like of shape (n_queries,)
            One item id, or several; each must be in ``items_``.

        n : int, default=10
            Number of similar items per query, at least 1; at most
            ``len(items_) - 1`` are returned (the item itself is left out).

        Returns
        -------
        item_ids : ndarray of shape (n_queries, n_cols), or (n_cols,) for one item
            The most similar items, most similar first, with ``n_cols =
            min(n, len(items_) - 1)``.

        similarities : ndarray of float64, same shape as ``item_ids``
            Their cosine similarities, in [-1, 1], in decreasing order.

        Raises
        ------
        ValueError
            If an item is not in ``items_``.

        See Also
        --------
        recommend : Items of highest predicted rating for users.

        Examples
        --------
        >>> import numpy as np
        >>> from skmf import MFRegressor
        >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 2], [2, 1], [2, 2]])
        >>> y = np.array([5.0, 3.0, 4.0, 1.0, 2.0, 4.0])
        >>> model = MFRegressor(n_components=2, random_state=0).fit(X, y)
        >>> item_ids, similarities = model.similar_items(0, n=5)
        >>> sorted(item_ids.tolist())
        [1, 2]
        >>> bool(np.all(np.abs(similarities) <= 1 + 1e-6))
        True
        """
        check_is_fitted(self)
        n = _check_top_n(n, "similar_items")
        ids, single = as_id_array(items, "items")
        codes = encode_ids(ids, self.items_)
        if (codes < 0).any():
            unknown = ids[codes < 0]
            raise ValueError(
                f"similar_items needs items seen in fit; {len(unknown)} are not in "
                f"items_, e.g. {unknown[:5].tolist()}. Fold new items in with "
                "partial_fit first."
            )
        with torch_threads(self.n_jobs):
            sims, pos = similar_rows(
                self.item_factors_, codes, n, serving_device(self.device)
            )
        item_ids = self.items_[pos]
        if single:
            return item_ids[0], sims[0]
        return item_ids, sims

    # ---------------------------------------------------------- partial_fit
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model with new ratings: one incremental pass over them.

        On a model not fitted yet, this is :meth:`fit` with ``max_iter=1``
        (one ALS sweep or one SGD/Adam epoch). On a fitted model:

        1. Users not in ``users_`` are appended and *folded in*: their factors
           and bias are set to the exact minimizer of the objective (see the
           Notes of :class:`MFRegressor`) with the items fixed, from their
           ratings of known items in ``X`` -- the ALS user update, with their
           penalty scaled by the weighted number of these ratings.
        2. Items not in ``items_`` are appended and folded in likewise, with
           all users fixed (including those just folded in), from all their
           ratings in ``X``.
        3. Users and items known before this call take one epoch of the SGD
           solver over the ratings of ``X`` (learning rate ``learning_rate``,
           0.01 for "auto" whatever the solver; batch size ``batch_size``;
           shuffled with ``random_state``): their factors and biases move,
           each rating carrying the share :math:`c_u / n_u` of its user's
           penalty (and likewise for its item), with :math:`n_u` counting the
           ratings of the previous fits and of ``X``. The rows folded in stay
           at their exact solution and :math:`\\mu` (``intercept_``) does not
           change.

        Old ratings are not stored with their values, so known rows are not
        re-solved exactly (that would forget the old ratings): they move by
        SGD steps. The (user, item) pairs of ``X`` are added to the ones
        :meth:`recommend` excludes, and ``rating_range_`` is widened to
        include the new ratings; ``n_iter_``, ``loss_curve_`` and the other
        attributes of the last :meth:`fit` are left as they are.

        Parameters
        ----------
        X : array-like of shape (n_ratings, 2) or (n_ratings, 3), DataFrame, \
or sparse matrix of shape (n_users, n_items)
            New ratings, in any form accepted by :meth:`fit`.

        y : array-like of shape (n_ratings,), default=None
            Ratings of the (user, item) pairs. Must be None for triples and
            sparse matrices.

        sample_weight : array-like of shape (n_ratings,), default=None
            Non-negative weight of each rating.

        Returns
        -------
        self : MFRegressor
            The updated model.

        Raises
        ------
        ValueError
            If ``early_stopping=True``: an incremental pass has no validation
            split.

        See Also
        --------
        fit : Train on all ratings (``warm_start=True`` starts from the
            current model).

        Examples
        --------
        >>> import numpy as np
        >>> from skmf import MFRegressor
        >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 2], [2, 1], [2, 2]])
        >>> y = np.array([5.0, 3.0, 4.0, 1.0, 2.0, 4.0])
        >>> model = MFRegressor(n_components=2, random_state=0)
        >>> model = model.partial_fit(X, y)  # the first call fits one iteration
        >>> model.n_iter_
        1
        >>> model = model.partial_fit([[3, 0], [3, 2]], [5.0, 2.0])  # a new user
        >>> model.users_
        array([0, 1, 2, 3])
        >>> model.recommend(3, n=3)[0]
        array([1])
        """
        if self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True: an incremental "
                "pass has no validation split. Set early_stopping=False, or use "
                "fit."
            )
        if self.implicit_feedback:
            raise ValueError(
                "partial_fit does not support implicit_feedback=True: the sets "
                "N(u) of the users' rated items would change for every user in X. "
                "Fit again on all the ratings (warm_start=True starts from the "
                "current model), or serve new users with recommend(..., ratings=)."
            )
        if not hasattr(self, "user_factors_"):
            self._fit(X, y, sample_weight, max_iter=1)
            return self
        self._check_n_components("partial_fit")
        data = _positive_ratings(
            parse_ratings(X, y, sample_weight, need_ratings=True, caller="partial_fit"),
            "partial_fit",
        )
        self._check_names(data, "partial_fit")
        users, items, ratings, w = (
            data.users, data.items, data.ratings, data.weights,
        )  # fmt: skip
        user_ids = extend_ids(self.users_, users)
        item_ids = extend_ids(self.items_, items)
        u, i = encode_ids(users, user_ids), encode_ids(items, item_ids)
        shape = (len(user_ids), len(item_ids))
        # Ratings so far per row: those of the previous fits, then these.
        user_n = _counts(u, w, shape[0])
        item_n = _counts(i, w, shape[1])
        user_n[: len(self._user_n)] += self._user_n
        item_n[: len(self._item_n)] += self._item_n
        settings = Settings.from_params(
            self.get_params(deep=False),
            dtype=self.user_factors_.dtype.name,
            device=serving_device(self.device),
        )
        with torch_threads(self.n_jobs):
            model, _ = fit_model(
                u, i, ratings, w, shape, settings,
                random_state=check_random_state(self.random_state),
                start=self._model(), partial=True, row_counts=(user_n, item_n),
                units=self._units,
            )  # fmt: skip
        self._set_model(model)
        if self._rated is not None:
            self._rated = add_rated(self._rated, u, i, *shape)
        self._user_n, self._item_n = user_n, item_n
        self.users_, self.items_ = user_ids, item_ids
        low, high = self.rating_range_
        self.rating_range_ = (
            min(low, float(ratings.min())),
            max(high, float(ratings.max())),
        )
        return self

    # ------------------------------------------------------ private helpers
    def _exclusions(self, exclude, user_ids, extra_items):
        """The ``exclude`` pairs of ``recommend`` as an exclusion source."""
        data = parse_ratings(
            exclude, None, None, need_ratings=False, caller="recommend"
        )
        rows, uniques = factorize_ids(user_ids)
        cols, n_codes = self._item_codes(data.items, extra_items)
        pair_rows = encode_ids(data.users, uniques)
        keep = (pair_rows >= 0) & (cols >= 0)
        rated = rated_pairs(pair_rows[keep], cols[keep], len(uniques), n_codes)
        return rated, n_codes, rows

    def _item_codes(self, items, extra_items):
        """Codes of ``items``: those of ``items_``, then ``len(items_) + j`` for
        ``extra_items[j]`` (None: no such codes), -1 for other items.

        Returns the codes and the number of codes.
        """
        codes = encode_ids(items, self.items_)
        n_codes = len(self.items_)
        if extra_items is not None and len(extra_items):
            extra = encode_ids(items, extra_items)
            extra = np.where(extra >= 0, n_codes + extra, -1)
            codes = np.where(codes >= 0, codes, extra)
            n_codes += len(extra_items)
        return codes, n_codes

    def _fold_in_ratings(self, ratings, single_user, user_ids, device, extra_items):
        """Fold in the users of ``ratings`` (the ``ratings`` of recommend).

        Returns their factors and biases, the row of each of ``user_ids`` among
        them (-1: not in ``ratings``) and their rated pairs (boolean CSR) with
        item codes those of ``items_``, then ``len(items_) + j`` for
        ``extra_items[j]`` (items unknown to the model; None: no such codes).
        """
        if isinstance(ratings, dict):
            if single_user is None:
                raise ValueError(
                    "ratings as a dict {item: rating} is for a single user; for "
                    "several users pass (user, item, rating) triples."
                )
            r_items = as_id_array(list(ratings.keys()), "ratings")[0]
            r_users = as_id_array([single_user] * len(r_items), "users")[0]
            data = parse_ratings(
                pd.DataFrame({"user": r_users, "item": r_items}),
                list(ratings.values()), None, need_ratings=True,
                caller="recommend",
            )  # fmt: skip
        else:
            data = parse_ratings(
                ratings, None, None, need_ratings=True, caller="recommend"
            )
        rows, uniques = factorize_ids(data.users)
        cols = encode_ids(data.items, self.items_)
        keep = cols >= 0
        settings = Settings.from_params(self.get_params(deep=False))
        Y = getattr(self, "implicit_factors_", None)
        P_new, b_new = (fold_in if Y is None else partial(fold_in_implicit, Y=Y))(
            rows[keep], cols[keep], data.ratings[keep], None, len(uniques),
            self.item_factors_, self.item_bias_, self.intercept_,
            alpha=settings.alpha, alpha_bias=settings.bias_penalty,
            scaling=settings.alpha_scaling, device=device,
            rating_scale=self._units[1],
            **({"positive": self.positive} if Y is None else {}),
        )  # fmt: skip
        cols, n_codes = self._item_codes(data.items, extra_items)
        seen = cols >= 0
        rated = rated_pairs(rows[seen], cols[seen], len(uniques), n_codes)
        return P_new, b_new, encode_ids(user_ids, uniques), rated


def _counts(codes: np.ndarray, weights, n: int) -> np.ndarray:
    """The weighted number of ratings of each of ``n`` rows (float64)."""
    return np.bincount(codes, weights=weights, minlength=n).astype(np.float64)


def _positive_ratings(data: RatingData, caller: str) -> RatingData:
    """``data`` without its ratings of weight 0 (weights None if all are 1)."""
    weights = data.weights
    if weights is None:
        return data
    keep = weights > 0
    if not keep.any():
        raise ValueError(
            f"All sample weights are zero: there is no rating left to {caller}. "
            "Give at least one rating a positive weight."
        )
    if not keep.all():
        data = replace(
            data, users=data.users[keep], items=data.items[keep],
            ratings=data.ratings[keep], weights=weights[keep],
        )  # fmt: skip
    if np.all(data.weights == 1.0):
        data = replace(data, weights=None)
    return data


def _check_top_n(n, caller: str) -> int:
    """Validate the ``n`` of recommend/similar_items."""
    if isinstance(n, bool) or not isinstance(n, Integral):
        raise TypeError(
            f"The 'n' parameter of {caller} must be an int >= 1. Got {n!r} of type "
            f"{type(n).__name__} instead."
        )
    if n < 1:
        raise ValueError(
            f"The 'n' parameter of {caller} must be >= 1. Got {n} instead."
        )
    return int(n)


def _ids_at(ids: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``ids[positions]``, with a fill id where the position is -1 (padding).

    The fill is never one of ``ids`` (see :func:`_padding_id`).
    """
    if len(ids) == 0:
        return np.empty(positions.shape, dtype=ids.dtype)
    out = ids[np.maximum(positions, 0)]
    pad = positions < 0
    if pad.any():
        fill = _padding_id(ids)
        if fill is None:
            out = out.astype(object)
        out[pad] = fill
    return out


def _padding_id(ids: np.ndarray):
    """A value of the dtype of ``ids`` that is not one of them (None: object).

    -1 for integer ids (or, when -1 is an id, the integer below the smallest
    id, else above the largest), NaN for float ids, "" for string ids, None
    otherwise (and when every value of the dtype is an id).
    """
    kind = ids.dtype.kind
    if kind in "iu":
        info = np.iinfo(ids.dtype)
        if kind == "i" and not (ids == -1).any():
            return ids.dtype.type(-1)
        low, high = int(ids.min()), int(ids.max())
        if low > info.min:
            return ids.dtype.type(low - 1)
        if high < info.max:
            return ids.dtype.type(high + 1)
        return None  # every integer of the dtype is an id
    if kind == "f":
        return np.nan  # NaN is never an id
    if kind in "US":
        empty = ids.dtype.type()
        if not (ids == empty).any():
            return empty
        return None
    return None
