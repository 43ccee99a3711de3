"""
==========================================
DataFrames, pipelines and cross-validation
==========================================

Ratings usually come as a table with more columns than the ids, and the ids
are not always integers. This example builds a pandas DataFrame with string
user and item ids and a timestamp column, selects the id columns with a
:class:`~sklearn.compose.ColumnTransformer` inside a
:class:`~sklearn.pipeline.Pipeline`, and cross-validates the pipeline with
:func:`~sklearn.model_selection.cross_val_score`, next to a baseline that
predicts the mean rating.
"""

# %%
# A table of ratings with string ids
# ----------------------------------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyRegressor
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline

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
    ratings["timestamp"] = np.arange(len(ratings))
    source = "synthetic ratings"

table = pd.DataFrame(
    {
        "user": "user-" + ratings["user"].astype(str),
        "item": "movie-" + ratings["item"].astype(str),
        "timestamp": ratings["timestamp"],
        "rating": ratings["rating"],
    }
)
table.head()

# %%
# The pipeline
# ------------
# The :class:`~sklearn.compose.ColumnTransformer` passes the ``user`` and
# ``item`` columns through, in that order, and drops the others; the
# :class:`~skmf.MFRegressor` maps the string ids to rows of its factor
# matrices (``users_``, ``items_``).
select_ids = ColumnTransformer([("ids", "passthrough", ["user", "item"])])
pipe = make_pipeline(select_ids, MFRegressor(random_state=0))
pipe

# %%
# Cross-validation
# ----------------
# scikit-learn's splitters split the rows of the table, and here a row is one
# rating: each fold holds out 20 % of the ratings, of users and items that
# also have ratings in training. (Cross-validating a sparse users x items
# matrix would instead hold out whole users; see the User Guide.)
#
# The same folds score a :class:`~sklearn.dummy.DummyRegressor` that predicts
# the mean training rating.
X, y = table.drop(columns="rating"), table["rating"]
cv = KFold(n_splits=5, shuffle=True, random_state=0)
scoring = "neg_root_mean_squared_error"

mf_rmse = -cross_val_score(pipe, X, y, cv=cv, scoring=scoring)
mean_rmse = -cross_val_score(
    make_pipeline(select_ids, DummyRegressor()), X, y, cv=cv, scoring=scoring
)
print(f"MFRegressor:   RMSE {mf_rmse.mean():.4f} +- {mf_rmse.std():.4f}")
print(f"mean baseline: RMSE {mean_rmse.mean():.4f} +- {mean_rmse.std():.4f}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
folds = np.arange(1, cv.get_n_splits() + 1)
ax.bar(folds - 0.2, mean_rmse, width=0.4, color="tab:grey", label="mean rating")
ax.bar(folds + 0.2, mf_rmse, width=0.4, color="tab:blue", label="MFRegressor")
for x, v in zip(folds + 0.2, mf_rmse):
    ax.annotate(f"{v:.3f}", (x, v), ha="center", va="bottom", fontsize=8)
ax.set_xticks(folds, [f"fold {k}" for k in folds])
ax.set_ylabel("test RMSE")
ax.set_ylim(0, max(mean_rmse) * 1.3)
ax.set_title(f"5-fold cross-validation on {source}")
ax.legend(loc="upper center", ncols=2)
plt.show()

# %%
# The fitted pipeline takes the whole table, extra columns included, and
# predicts from string ids; an id it has never seen gets the mean plus the
# known bias.
pipe.fit(X, y)
new = pd.DataFrame(
    {
        "user": ["user-1", "user-1", "someone-new"],
        "item": ["movie-50", "movie-1", "movie-50"],
        "timestamp": [0, 0, 0],
    }
)
new.assign(predicted=pipe.predict(new))
