"""
======================================
A map of the movies from their factors
======================================

Each item of a fitted :class:`~skmf.MFRegressor` is a vector :math:`q_i` of
``n_components`` factors (a row of ``item_factors_``), and items rated alike
by the same users get similar vectors. Projecting these vectors on their two
principal components (:class:`~sklearn.decomposition.PCA`) draws a map of
the movies of MovieLens 100K, coloured by the learned item bias
:math:`b_i` (``item_bias_``, how much better or worse than average a movie
is rated).
"""

# %%
# Fit on all the ratings
# ----------------------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.transforms import Bbox
from sklearn.decomposition import PCA

from skmf import MFRegressor
from skmf.datasets import get_data_home, load_movielens, make_ratings

try:
    ratings, movies = load_movielens(
        "100k", download_if_missing=False, return_items=True
    )
    source = "MovieLens 100K"
except FileNotFoundError:
    print(
        f"MovieLens 100K not found in {get_data_home()}: using synthetic ratings "
        "from make_ratings instead (items are labelled by number)."
    )
    ratings = make_ratings(
        n_users=943, n_items=1682, n_ratings=100_000, random_state=0
    ).frame
    ids = np.unique(ratings["item"])
    movies = pd.DataFrame({"title": [f"item {i}" for i in ids]}, index=ids)
    source = "synthetic ratings"

model = MFRegressor(random_state=0).fit(ratings[["user", "item", "rating"]])

# %%
# Project the factors of the movies with at least 50 ratings: the factors of
# rarely rated movies are shrunk towards 0 by the penalty and would crowd the
# centre of the map.
counts = ratings["item"].value_counts().reindex(model.items_).to_numpy()
keep = counts >= 50
factors = model.item_factors_[keep]
bias = model.item_bias_[keep]
popularity = counts[keep]
titles = movies["title"].reindex(model.items_[keep]).fillna("?").to_numpy()

pca = PCA(n_components=2, random_state=0)
xy = pca.fit_transform(factors)
print(
    f"{keep.sum()} movies with at least 50 ratings; the two components explain "
    f"{100 * pca.explained_variance_ratio_.sum():.0f} % of the factors' variance"
)


# %%
# Labels for some well-known movies
# ---------------------------------
# A few titles to find one's way on the map (the most rated movies if they are
# not found), placed by a small greedy search that avoids overlaps.
def short_title(title):
    """'Godfather, The (1972)' -> 'The Godfather'."""
    name = title.rsplit(" (", 1)[0] if title.endswith(")") else title
    for article in ("The", "A", "An"):
        if name.endswith(f", {article}"):
            name = f"{article} {name[: -len(article) - 2]}"
    return name


WELL_KNOWN = [
    "Star Wars (1977)",
    "Return of the Jedi (1983)",
    "Toy Story (1995)",
    "Fargo (1996)",
    "Pulp Fiction (1994)",
    "Godfather, The (1972)",
    "Silence of the Lambs, The (1991)",
    "Schindler's List (1993)",
    "Casablanca (1942)",
    "Titanic (1997)",
    "Independence Day (ID4) (1996)",
    "Liar Liar (1997)",
    "Scream (1996)",
    "English Patient, The (1996)",
    "Aladdin (1992)",
    "Monty Python and the Holy Grail (1974)",
    "Terminator 2: Judgment Day (1991)",
    "Forrest Gump (1994)",
    "Men in Black (1997)",
    "Shawshank Redemption, The (1994)",
    "Wizard of Oz, The (1939)",
    "Batman & Robin (1997)",
]
labelled = [np.flatnonzero(titles == t)[0] for t in WELL_KNOWN if t in set(titles)]
if len(labelled) < 10:
    labelled = list(np.argsort(-popularity)[:20])


def place_labels(ax, points, texts, fontsize=7.5):
    """Annotate ``points`` with ``texts``, choosing offsets that overlap least."""
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    taken = [  # small boxes around the labelled points
        Bbox.from_bounds(px - 4, py - 4, 8, 8)
        for px, py in ax.transData.transform(points)
    ]
    steps = [(dx, dy) for r in (8, 16, 26) for dx in (-r, 0, r) for dy in (-r, 0, r)]
    candidates = [(dx, dy) for dx, dy in steps if (dx, dy) != (0, 0)]

    def cost(box):
        overlap = sum(
            max(0, min(box.x1, o.x1) - max(box.x0, o.x0))
            * max(0, min(box.y1, o.y1) - max(box.y0, o.y0))
            for o in taken
        )
        inside = frame.x0 <= box.x0 and box.x1 <= frame.x1
        inside = inside and frame.y0 <= box.y0 and box.y1 <= frame.y1
        return overlap + (0 if inside else 1e6)

    for (x, y), text in zip(points, texts):
        best = None
        for rank, (dx, dy) in enumerate(candidates):
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
            label = ax.annotate(
                text,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=fontsize,
                arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.35"},
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                      "alpha": 0.8},
            )  # fmt: skip
            label.set_in_layout(False)
            box = label.get_window_extent(renderer)
            score = cost(box) + rank  # prefer the nearest offsets on a tie
            if best is None or score < best[0]:
                if best is not None:
                    best[1].remove()
                best = (score, label, box)
            else:
                label.remove()
        taken.append(best[2])


# %%
# The map
# -------
# Movies that the same users like lie close together. The colour is the
# learned item bias: the penalty does not explain everything with the
# factors, and well-liked classics stand out in red.
fig, ax = plt.subplots(figsize=(10, 8), layout="constrained")
norm = TwoSlopeNorm(vmin=bias.min(), vcenter=0.0, vmax=bias.max())
points = ax.scatter(
    xy[:, 0],
    xy[:, 1],
    c=bias,
    s=6 + 40 * popularity / popularity.max(),
    cmap="coolwarm",
    norm=norm,
    alpha=0.75,
    linewidths=0,
)
ax.scatter(
    xy[labelled, 0],
    xy[labelled, 1],
    s=30,
    facecolors="none",
    edgecolors="black",
    linewidths=0.8,
)
fig.colorbar(points, ax=ax, shrink=0.8, label="item bias $b_i$ (stars)")
ax.set_xlabel(f"principal component 1 ({100 * pca.explained_variance_ratio_[0]:.0f} %)")
ax.set_ylabel(f"principal component 2 ({100 * pca.explained_variance_ratio_[1]:.0f} %)")
ax.set_title(
    f"Item factors of MFRegressor on {source}, PCA to 2-D "
    "(point size: number of ratings)"
)
fig.canvas.draw()  # fix the layout before measuring the labels
place_labels(ax, xy[labelled], [short_title(t) for t in titles[labelled]])
plt.show()
