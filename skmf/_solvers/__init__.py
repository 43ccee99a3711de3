"""Torch solvers for biased matrix factorization (no scikit-learn glue here)."""

from skmf._solvers._als import ALSStep, group_ratings
from skmf._solvers._common import (
    Factors,
    FitResult,
    Penalty,
    Ratings,
    objective,
    predict_tensor,
    rmse,
    run_fit_loop,
)
from skmf._solvers._gibbs import GibbsStep
from skmf._solvers._init import spectral_factors
from skmf._solvers._sgd import AdamStep, SGDStep

#: solver name -> class whose instances run one epoch or sweep when called.
SOLVERS = {"als": ALSStep, "sgd": SGDStep, "adam": AdamStep, "gibbs": GibbsStep}

__all__ = [
    "SOLVERS",
    "ALSStep",
    "AdamStep",
    "Factors",
    "GibbsStep",
    "FitResult",
    "Penalty",
    "Ratings",
    "SGDStep",
    "group_ratings",
    "objective",
    "predict_tensor",
    "rmse",
    "run_fit_loop",
    "spectral_factors",
]
