"""
=======================================
Recommending movies to a brand-new user
=======================================

A model fitted on MovieLens 100K can serve a user who was not in the training
data from a handful of ratings, without retraining:
:meth:`~skmf.MFRegressor.recommend` with ``ratings=`` *folds the user in*
(their factors and bias are the exact ridge solution of the training objective
with the movies fixed, which is one ALS user update) and ranks the movies they
have not rated by predicted rating.

The MovieLens data is read from a local copy (see
:func:`~skmf.datasets.load_movielens`; set ``SKMF_DATA`` to the folder that
holds ``ml-100k/``). Without it, synthetic ratings from
:func:`~skmf.datasets.make_ratings` stand in and the movies are numbered.
"""

# %%
# Ratings and movie titles
# ------------------------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from skmf import MFRegressor
from skmf.datasets import load_movielens, make_ratings

try:
    ratings, movies = load_movielens(
        "100k", download_if_missing=False, return_items=True
    )
    titles = movies["title"]
    source = "MovieLens 100K"
except OSError:  # no local copy: synthetic ratings on the same scale
    ratings = make_ratings(
        n_users=943, n_items=1682, n_ratings=100_000, random_state=0
    ).frame
    titles = pd.Series({i: f"Movie #{i}" for i in range(1682)})
    source = "synthetic ratings"
print(f"{source}: {len(ratings):,} ratings of {ratings['item'].nunique():,} movies")

# %%
# Fit the model
# -------------
# The defaults: 16 factors, ALS, the penalty of each user and movie scaled by
# the square root of its number of ratings.
model = MFRegressor(random_state=0)
model.fit(ratings[["user", "item"]], ratings["rating"])

# %%
# A new user rates a handful of movies
# ------------------------------------
# A science-fiction fan who dislikes period dramas. The ratings are a dict
# ``{movie id: rating}``; the user id only has to be new.
liked = {
    "Star Wars (1977)": 5,
    "Empire Strikes Back, The (1980)": 5,
    "Alien (1979)": 5,
    "Terminator, The (1984)": 4,
    "Blade Runner (1982)": 5,
    "Sense and Sensibility (1995)": 1,
    "Emma (1996)": 1,
    "Titanic (1997)": 2,
}
by_title = pd.Series(titles.index, index=titles.to_numpy())
if set(liked) <= set(by_title.index):
    new_ratings = {int(by_title[t]): float(r) for t, r in liked.items()}
else:  # synthetic data: rate the first items of the catalogue instead
    new_ratings = dict(zip(range(8), [5.0, 5.0, 5.0, 4.0, 5.0, 1.0, 1.0, 2.0]))
new_user = int(ratings["user"].max()) + 1

item_ids, scores = model.recommend(new_user, n=10, ratings=new_ratings)
for item, score in zip(item_ids, scores):
    print(f"{score:4.2f}  {titles[item]}")

# %%
# Without any rating, a user gets the movies of highest :math:`\mu + b_i`,
# the same list for everyone:
cold_ids, cold_scores = model.recommend(new_user, n=10)

# %%
# Predicted ratings, with and without the handful of ratings
# ----------------------------------------------------------
fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharex=True)
panels = [
    (axes[0], item_ids, scores, "After rating 8 movies (folded in)"),
    (axes[1], cold_ids, cold_scores, r"No ratings: best $\mu + b_i$"),
]
for ax, ids, values, title in panels:
    labels = [titles[i] if len(titles[i]) <= 38 else titles[i][:36] + "…" for i in ids]
    ax.barh(np.arange(len(ids)), values, color="tab:blue")
    ax.set_yticks(np.arange(len(ids)), labels, fontsize=8.5)
    ax.invert_yaxis()  # best on top
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("predicted rating")
    for y, v in enumerate(values):
        ax.text(v - 0.05, y, f"{v:.2f}", va="center", ha="right", color="white",
                fontsize=8)  # fmt: skip
low, high = model.rating_range_
axes[0].set_xlim(low, max(high, float(np.max(scores)), float(np.max(cold_scores))))
fig.suptitle(f"Top 10 for a new user ({source})")
fig.tight_layout()
plt.show()

# %%
# Keeping the new user
# --------------------
# ``recommend`` leaves the model unchanged. :meth:`~skmf.MFRegressor.partial_fit`
# adds the user for good: it folds them in the same way, then takes one SGD
# step on the movies they rated.
model.partial_fit([(new_user, item, r) for item, r in new_ratings.items()])
kept_ids, _ = model.recommend(new_user, n=10)
print("same top 10 after partial_fit:", np.array_equal(kept_ids, item_ids))

# %%
# Movies close to the first one rated, by cosine similarity of their factors:
first = next(iter(new_ratings))
similar, cosine = model.similar_items(first, n=5)
print(f"closest to {titles[first]}:")
for item, c in zip(similar, cosine):
    print(f"  {c:.2f}  {titles[item]}")
