"""Shared fixtures: the MovieLens folder and a small synthetic data set."""

import os
from pathlib import Path

import pytest
import torch

from skmf.datasets import make_ratings

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The shared MovieLens folder: $SKMF_TEST_DATA, else ../shared/data."""
    env = os.environ.get("SKMF_TEST_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def movielens_dir():
    path = shared_data_dir()
    if not (path / "ml-100k" / "u1.base").is_file():
        pytest.skip(
            f"MovieLens data not found at {path}; set SKMF_TEST_DATA to the folder "
            "that holds ml-100k/ and ml-1m/ to run the accuracy tests."
        )
    return path


@pytest.fixture(scope="session")
def small_ratings():
    """300 users x 200 items x 6000 ratings from a known rank-5 model."""
    return make_ratings(
        n_users=300, n_items=200, n_ratings=6000, n_components=5, noise=0.3,
        random_state=0,
    )  # fmt: skip


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(
        reason="needs a CUDA GPU; torch.cuda.is_available() is False"
    )
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
