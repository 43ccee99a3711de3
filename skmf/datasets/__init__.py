"""Rating data sets: synthetic ratings and (later) MovieLens loaders."""

from skmf.datasets._synthetic import make_ratings

__all__ = ["make_ratings"]
