"""
=============================================
Sharded training with two processes (gloo)
=============================================

:func:`skmf.distributed.fit` fits one :class:`~skmf.MFRegressor` with several
processes, each holding a part of the ratings: here two local processes that
talk through ``torch.distributed``'s gloo backend on the CPU. The model is the
one an ordinary fit gives, up to round-off, whatever the number of processes;
this example checks it. On one machine the processes share its cores, so this
is not faster: sharding is for ratings that do not fit in one machine's
memory, or for several GPUs (see the "Beyond one machine" page).
"""

# %%
# The data
# --------
import matplotlib.pyplot as plt
import numpy as np

import skmf.distributed
from skmf import MFRegressor
from skmf.datasets import make_ratings

data = make_ratings(n_users=2000, n_items=1000, n_ratings=55_000, random_state=0)
X, y = data.X[:50_000], data.y[:50_000]
X_test, y_test = data.X[50_000:], data.y[50_000:]

# %%
# One process, then two
# ---------------------
# The same estimator, fitted by ``MFRegressor.fit`` and by two processes.
# ``fit`` starts them with torch's elastic launcher, splits the ratings
# between them, and returns an ordinary fitted estimator.
params = {"n_components": 16, "tol": 1e-3, "random_state": 0}
one = MFRegressor(**params).fit(X, y)
two = skmf.distributed.fit(MFRegressor(**params), X, y, nproc=2)


def rmse(model):
    return np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2))


print(f"test RMSE, one process:   {rmse(one):.6f} ({one.n_iter_} sweeps)")
print(f"test RMSE, two processes: {rmse(two):.6f} ({two.n_iter_} sweeps)")
print(
    "largest difference of a factor: "
    f"{np.abs(two.user_factors_ - one.user_factors_).max():.2g} (users), "
    f"{np.abs(two.item_factors_ - one.item_factors_).max():.2g} (items)"
)

# %%
# The objective of each sweep is the same too: the processes sum their parts
# of it, in the same order on each, and stop together.
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(np.arange(1, one.n_iter_ + 1), one.loss_curve_, "o-", label="one process")
ax.plot(np.arange(1, two.n_iter_ + 1), two.loss_curve_, "x--", label="two processes")
ax.set_xlabel("sweep")
ax.set_ylabel("objective / total weight")
ax.set_yscale("log")
ax.set_title("ALS, sharded and not")
ax.legend()
fig.tight_layout()

# %%
# An ordinary estimator
# ---------------------
# The fitted state is plain NumPy: the sharded model recommends and pickles
# like any other.
user = X[0, 0]
print("top 5 items for user", user, ":", two.recommend(user, n=5))
