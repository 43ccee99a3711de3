"""
======================================================
Grid search over the number of factors and the penalty
======================================================

The two parameters that matter most are the number of factors
``n_components`` (:math:`k`) and the penalty ``alpha`` (:math:`\\lambda`).
:class:`~sklearn.model_selection.GridSearchCV` tries every combination with
3-fold cross-validation on MovieLens 100K and keeps the best.
"""

# %%
# The data
# --------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, KFold

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

# %%
# The search
# ----------
# 4 values of :math:`k` times 4 values of ``alpha`` around the default 0.95,
# each fitted on 3 folds: 48 fits of about 67,000 ratings, then one refit of
# the best on all the data. The folds are shuffled: rows are ratings, so each
# fold holds out a third of the ratings.
param_grid = {
    "n_components": [8, 16, 32, 64],
    "alpha": [0.5, 0.75, 0.95, 1.5],
}
search = GridSearchCV(
    MFRegressor(random_state=0),
    param_grid,
    scoring="neg_root_mean_squared_error",
    cv=KFold(n_splits=3, shuffle=True, random_state=0),
)
search.fit(X, y)

print("best parameters:", search.best_params_)
print(f"best cross-validated RMSE: {-search.best_score_:.4f}")

# %%
# The results
# -----------
# ``cv_results_`` holds the mean and standard deviation of the test score
# over the folds and the mean fit time of every combination.
results = pd.DataFrame(search.cv_results_)
results["rmse"] = -results["mean_test_score"]
table = results.pivot(index="param_alpha", columns="param_n_components", values="rmse")
table.round(4)

# %%
# On MovieLens 100K the penalty matters far more than the number of factors.
# Down a column (one :math:`k`) the RMSE changes a lot: too small an
# ``alpha`` lets the factors overfit, too large a one shrinks every prediction
# towards the biases, and with the default scaling
# (``alpha_scaling="sqrt"``) the best ``alpha`` is the same for every
# :math:`k`. Along the row of the best ``alpha`` the RMSE barely moves with
# :math:`k`; along the other rows it moves more, and not steadily in one
# direction: more factors are not always better. The spreads below put
# numbers on this, next to the fold-to-fold standard deviation of the
# scores: the :math:`k` picked as best wins by less than that noise, so a
# smaller :math:`k`, which fits faster, is as good a choice.
best = search.best_params_
at_alpha = results[results["param_alpha"] == best["alpha"]]
at_k = results[results["param_n_components"] == best["n_components"]]
print(
    f"alpha = {best['alpha']}: RMSE over k spans "
    f"{at_alpha['rmse'].max() - at_alpha['rmse'].min():.4f}"
)
print(
    f"k = {best['n_components']}: RMSE over alpha spans "
    f"{at_k['rmse'].max() - at_k['rmse'].min():.4f}"
)
print(f"fold-to-fold standard deviation: {results['std_test_score'].mean():.4f}")

# %%
# The fit time grows with :math:`k`, for every ``alpha``.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
colors = plt.cm.viridis(np.linspace(0, 0.85, len(param_grid["alpha"])))
for alpha, color in zip(param_grid["alpha"], colors):
    rows = results[results["param_alpha"] == alpha].sort_values("param_n_components")
    k = rows["param_n_components"].to_numpy(dtype=float)
    ax1.errorbar(
        k,
        rows["rmse"],
        yerr=rows["std_test_score"],
        marker="o",
        capsize=3,
        color=color,
        label=f"alpha = {alpha}",
    )
    ax2.plot(k, rows["mean_fit_time"], marker="o", color=color, label=f"{alpha}")
ax1.plot(
    best["n_components"],
    -search.best_score_,
    marker="*",
    markersize=16,
    color="tab:red",
    linestyle="none",
    label="best",
)
for ax in (ax1, ax2):
    ax.set_xscale("log", base=2)
    ax.set_xticks(param_grid["n_components"], param_grid["n_components"])
    ax.set_xlabel("n_components (k)")
ax1.set_ylabel("cross-validated RMSE (3 folds)")
ax1.set_title(f"Validation RMSE on {source}")
ax1.legend(fontsize=8)
ax2.set_ylabel("mean fit time (s)")
ax2.set_title("Fit time per fold")
ax2.legend(title="alpha", fontsize=8)
plt.show()
