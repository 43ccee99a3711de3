"""
====================================
Learning curves of the three solvers
====================================

ALS, SGD and Adam minimize the same objective in different ways. With
``early_stopping=True`` each holds out 10 % of its training ratings, records
their RMSE after every iteration in ``validation_scores_`` and keeps the best
iteration; ``loss_curve_`` records the training objective. This example
plots both for the three solvers on MovieLens 100K.
"""

# %%
# The data
# --------
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skmf import MFRegressor
from skmf.datasets import get_data_home, load_movielens, make_ratings

try:
    ratings = load_movielens("100k", download_if_missing=False)
    source = "MovieLens 100K"
except FileNotFoundError:
    print(
        f"MovieLens 100K not found in {get_data_home()}: using synthetic ratings "
        "from make_ratings instead."
    )
    ratings = make_ratings(
        n_users=943, n_items=1682, n_ratings=100_000, random_state=0
    ).frame
    source = "synthetic ratings"

X = ratings[["user", "item"]].to_numpy()
y = ratings["rating"].to_numpy()
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)

# %%
# Fitting with early stopping
# ---------------------------
# A small ``tol`` and ``n_iter_no_change=5`` let every solver run a few
# iterations past its best, so the curves show where it levels off. SGD and
# Adam use their default learning rates (``learning_rate="auto"``).
solvers = {"als": 30, "sgd": 60, "adam": 60}  # solver: max_iter
models = {}
for solver, max_iter in solvers.items():
    model = MFRegressor(
        solver=solver,
        max_iter=max_iter,
        early_stopping=True,
        n_iter_no_change=5,
        tol=1e-4,
        random_state=0,
    )
    start = time.perf_counter()
    model.fit(X_train, y_train)
    elapsed = time.perf_counter() - start
    test_rmse = np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2))
    models[solver] = model
    print(
        f"{solver:>4}: {model.n_iter_:2d} iterations in {elapsed:5.2f} s, best "
        f"iteration {model.best_iteration_:2d}, validation RMSE "
        f"{min(model.validation_scores_):.4f}, test RMSE {test_rmse:.4f}"
    )

# %%
# The curves
# ----------
# An iteration is one ALS sweep (an exact solve for every user, then every
# item) or one SGD/Adam epoch (one pass over the ratings in minibatches), so
# the x-axes compare iterations, not time. ALS gets close to its best in a
# few sweeps and its objective decreases at every one; SGD and Adam need more
# epochs and their curves are noisier. The star marks the iteration each
# model kept. The SGD and Adam objectives are accumulated during each epoch
# while the parameters move (as in scikit-learn's SGD estimators), so they
# sit a little above the objective at the end of the epoch.
colors = {"als": "tab:blue", "sgd": "tab:orange", "adam": "tab:green"}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for solver, model in models.items():
    iters = np.arange(1, model.n_iter_ + 1)
    ax1.plot(iters, model.loss_curve_, color=colors[solver], label=solver)
    ax2.plot(iters, model.validation_scores_, color=colors[solver], label=solver)
    best = model.best_iteration_
    ax2.plot(
        best,
        model.validation_scores_[best - 1],
        marker="*",
        markersize=12,
        color=colors[solver],
    )
ax1.set_xlabel("iteration (ALS sweep or SGD/Adam epoch)")
ax1.set_ylabel("training objective L / sum of weights")
ax1.set_title("Training objective (loss_curve_)")
ax1.legend()
ax2.set_xlabel("iteration (ALS sweep or SGD/Adam epoch)")
ax2.set_ylabel("RMSE on the held-out 10 %")
ax2.set_title("Validation RMSE (validation_scores_)")
low = min(min(m.validation_scores_) for m in models.values())
ax2.set_ylim(low - 0.01, low + 0.12)
ax2.legend()
fig.suptitle(f"{source}: three solvers, one objective")
plt.show()
