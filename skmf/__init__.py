"""skmf: biased matrix factorization for explicit ratings, scikit-learn style."""

from skmf import datasets, metrics
from skmf._estimator import MFRegressor

__version__ = "0.1.0.dev0"

__all__ = ["MFRegressor", "datasets", "metrics", "__version__"]
