"""Torch solvers for biased matrix factorization (no scikit-learn glue here).

:func:`fit_model` is the entry point: NumPy arrays in, a NumPy :class:`Model`
and a :class:`FitRecord` out. The step classes (one epoch or sweep of each
solver), the fit loop and the tensor containers are the building blocks
behind it.
"""

from skmf._solvers._als import ALSStep, RowGroups, group_ratings, solve_rows
from skmf._solvers._common import (
    Factors,
    FitResult,
    Penalty,
    Ratings,
    Step,
    objective,
    rmse,
    run_fit_loop,
)
from skmf._solvers._engine import (
    DEFAULT_LEARNING_RATES,
    SOLVERS,
    FitRecord,
    Model,
    Settings,
    estimate_bytes,
    fit_model,
    fold_in,
)
from skmf._solvers._gibbs import GibbsStep
from skmf._solvers._init import spectral_factors
from skmf._solvers._sgd import AdamStep, SGDStep
from skmf._solvers._svdpp import fold_in_implicit

__all__ = [
    "DEFAULT_LEARNING_RATES",
    "SOLVERS",
    "ALSStep",
    "AdamStep",
    "Factors",
    "FitRecord",
    "FitResult",
    "GibbsStep",
    "Model",
    "Penalty",
    "Ratings",
    "RowGroups",
    "SGDStep",
    "Settings",
    "Step",
    "estimate_bytes",
    "fit_model",
    "fold_in",
    "fold_in_implicit",
    "group_ratings",
    "objective",
    "rmse",
    "run_fit_loop",
    "solve_rows",
    "spectral_factors",
]
