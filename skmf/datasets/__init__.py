"""Rating data sets: synthetic ratings and the MovieLens loaders."""

from skmf.datasets._movielens import (
    get_data_home,
    load_movielens,
    load_movielens_split,
)
from skmf.datasets._synthetic import make_ratings

__all__ = ["get_data_home", "load_movielens", "load_movielens_split", "make_ratings"]
