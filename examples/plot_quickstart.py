"""
==========
Quickstart
==========

Fit :class:`~skmf.MFRegressor` to MovieLens 100K, predict held-out ratings,
and compare the test RMSE with the simplest baseline, the mean rating.
"""

# %%
# The data
# --------
# :func:`~skmf.datasets.load_movielens` reads a local copy of MovieLens 100K
# (``download_if_missing=False``: nothing is downloaded here). Without one,
# the example falls back to synthetic ratings of the same shape.
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

print(
    f"{source}: {len(ratings):,} ratings of {ratings['user'].nunique():,} users "
    f"for {ratings['item'].nunique():,} items"
)
ratings.head()

# %%
# One row per rating: the (user, item) pairs are ``X``, the ratings ``y``.
# A random 80/20 split of the rows holds out 20 % of the ratings.
X = ratings[["user", "item"]].to_numpy()
y = ratings["rating"].to_numpy()
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)

# %%
# Fit, predict, score
# -------------------
# The defaults (ALS, 16 factors, ``alpha=0.95``) are a good start.
model = MFRegressor(random_state=0).fit(X_train, y_train)
y_pred = model.predict(X_test)

rmse = np.sqrt(np.mean((y_test - y_pred) ** 2))
baseline = np.sqrt(np.mean((y_test - y_train.mean()) ** 2))
print(f"fitted in {model.n_iter_} ALS sweeps")
print(f"test RMSE: {rmse:.4f}  (mean-rating baseline: {baseline:.4f})")
print(f"test R^2:  {model.score(X_test, y_test):.3f}")

# %%
# Users or items the model never saw are predicted from what is known: the
# mean plus the known bias.
print(model.predict([[X_train[0, 0], 10**9], [10**9, 10**9]]))
print(model.intercept_)

# %%
# Predicted and true ratings
# --------------------------
# True ratings are whole stars, predictions are continuous. Predictions are
# shrunk towards the mean (that is what the penalty does), but they follow
# the true rating: each box shows the predictions for one true rating.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")

bins = np.arange(0.5, 5.75, 0.25)
ax1.hist(y_pred, bins=bins, color="tab:orange", alpha=0.7, label="predicted")
stars, counts = np.unique(y_test, return_counts=True)
if len(stars) <= 10:  # whole stars: one bar each
    ax1.bar(stars, counts, width=0.25, color="tab:blue", alpha=0.6, label="true")
else:
    ax1.hist(y_test, bins=bins, color="tab:blue", alpha=0.5, label="true")
ax1.set_xlabel("rating")
ax1.set_ylabel("number of test ratings")
ax1.set_title("Distribution of test ratings")
ax1.legend()

groups = [y_pred[y_test == s] for s in stars] if len(stars) <= 10 else []
if groups:
    ax2.boxplot(groups, positions=stars, widths=0.5, showfliers=False)
    ax2.plot([1, 5], [1, 5], ls="--", color="grey", lw=1, label="perfect")
    ax2.set_xlabel("true rating")
    ax2.legend(loc="upper left")
else:
    ax2.scatter(y_test, y_pred, s=2, alpha=0.2)
    ax2.set_xlabel("true rating")
ax2.set_ylabel("predicted rating")
ax2.set_title(f"Predictions by true rating (RMSE {rmse:.3f})")
plt.show()
