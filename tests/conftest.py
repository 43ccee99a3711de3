"""Shared fixtures: the MovieLens data, no downloads, quiet short fits, small data.

The MovieLens tests read the data through :mod:`skmf.datasets` from the data
home, ``SKMF_DATA`` (else ``~/skmf_data``), as it is when the tests start, and
skip, saying what is missing, without it.
"""

import warnings
from pathlib import Path

import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from skmf.datasets import _movielens, get_data_home, make_ratings

#: The data home when the tests start. Read once, here: the ``no_download``
#: fixture points ``SKMF_DATA`` to an empty folder during a test.
DATA_HOME = Path(get_data_home())


def _require_movielens(variant: str, groups) -> Path:
    """DATA_HOME if it holds the files ``groups`` of ``variant``, else skip."""
    spec = _movielens._VARIANTS[variant]
    try:
        source, _ = _movielens._find_source(
            spec, DATA_HOME, groups, False, f"{spec.title} data"
        )
    except OSError:
        pytest.skip(
            f"{spec.title} not found in the data home {DATA_HOME}: no complete "
            f"{spec.folder}/ or {spec.archive} there; set SKMF_DATA to the folder "
            "that holds it"
        )
    source.close()
    return DATA_HOME


@pytest.fixture(scope="session")
def movielens_dir():
    """The data home, if it holds MovieLens 100K and its splits u1-u5; else skip."""
    splits = [(f"u{k}.{part}",) for k in range(1, 6) for part in ("base", "test")]
    return _require_movielens("100k", [("u.data",), ("u.item",), *splits])


@pytest.fixture(scope="session")
def movielens_1m_dir():
    """The data home, if it holds the MovieLens 1M ratings and movies; else skip."""
    spec = _movielens._VARIANTS["1m"]
    return _require_movielens("1m", [spec.ratings, (spec.items,)])


@pytest.fixture
def no_download(monkeypatch, tmp_path):
    """Fail on any download; point ``SKMF_DATA`` to an empty folder.

    Not autouse: a test module opts in with
    ``pytestmark = pytest.mark.usefixtures("no_download")``.
    """

    def download(url, path):
        pytest.fail(f"a test tried to download {url}")

    monkeypatch.setattr(_movielens, "_download", download)
    monkeypatch.setenv("SKMF_DATA", str(tmp_path / "empty_home"))


@pytest.fixture
def one_torch_thread():
    """Fit tiny test models on one thread.

    With several threads, torch's OpenMP workers wait for each other at every
    small operation; when other jobs load the cores this turns a 0.1 s fit into
    seconds. Opt in with ``pytestmark = pytest.mark.usefixtures(...)``.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def ratings_60x40():
    """60 users x 40 items, 900 distinct pairs from a rank-3 model, ratings 1-5."""
    return make_ratings(
        n_users=60, n_items=40, n_ratings=900, n_components=3, noise=0.3,
        random_state=0,
    )  # fmt: skip


@pytest.fixture
def quiet_short_fits():
    """Silence ConvergenceWarning: short test fits stop at max_iter on purpose.

    Not autouse: a test module opts in with
    ``pytestmark = pytest.mark.usefixtures("quiet_short_fits")``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


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


@pytest.fixture(autouse=True)
def _threads_independent_of_the_load(request, monkeypatch):
    """Tests compare fits bit for bit: keep torch's thread count fixed.

    With ``n_jobs=None`` skmf lowers the number of torch threads to the idle
    cores, which changes the order of floating-point sums when the machine's
    load changes between two fits. Here the load counter reads "unknown"
    (torch's setting is kept); tests marked ``load`` see the real counter.
    """
    if "load" in request.keywords:
        return
    from skmf import _device

    monkeypatch.setattr(_device, "_others_running", lambda: None)
