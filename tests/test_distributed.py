"""Sharded training (skmf.distributed) with local gloo processes, on small data.

Each launch starts real processes (a few seconds each on 2 CPU cores), so the
tests share fits through module-scoped fixtures and check several things per
launch.
"""

import os
import pickle
import signal
import uuid
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

import skmf.distributed as sd
from skmf import MFRegressor
from skmf.datasets import make_ratings
from skmf.distributed._checkpoint import FAIL_ONCE_ENV

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

PARAMS = {"n_components": 4, "max_iter": 8, "random_state": 0}

# A test that launches processes must never hang the suite: each gets this many
# seconds of wall time before it fails (the fits' own process-group time-out is
# also short here).
TEST_SECONDS = 240


@pytest.fixture(autouse=True)
def _hard_time_limit():
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"test took more than {TEST_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def ratings():
    """~5K ratings, with a held-out tenth."""
    data = make_ratings(n_users=300, n_items=150, n_ratings=5500, random_state=0)
    X, y = data.X, data.y
    return X[:5000], y[:5000], X[5000:], y[5000:]


def _rmse(model, X, y):
    return float(np.sqrt(np.mean((model.predict(X) - y) ** 2)))


def _same_model(a, b, atol):
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_array_equal(a.users_, b.users_)
    np.testing.assert_array_equal(a.items_, b.items_)
    np.testing.assert_allclose(a.user_factors_, b.user_factors_, atol=atol)
    np.testing.assert_allclose(a.item_factors_, b.item_factors_, atol=atol)
    np.testing.assert_allclose(a.user_bias_, b.user_bias_, atol=atol)
    np.testing.assert_allclose(a.item_bias_, b.item_bias_, atol=atol)
    assert abs(a.intercept_ - b.intercept_) <= atol


@pytest.fixture(scope="module")
def gibbs_two(ratings):
    X, y, _, _ = ratings
    return sd.fit(MFRegressor(solver="gibbs", **PARAMS), X, y, nproc=2, timeout=60)


# ------------------------------------------------------------ agreement
@pytest.mark.parametrize(
    "solver, nproc, row_exchange",
    [
        ("als", 2, "auto"),
        ("als", 3, "needed"),
        ("gibbs", 2, "auto"),
        pytest.param("gibbs", 3, "needed", marks=pytest.mark.slow),
    ],
)
def test_fit_agrees_with_one_process(ratings, gibbs_two, solver, nproc, row_exchange):
    """Same factors (to round-off) and test RMSE as MFRegressor.fit, whatever
    the number of processes and the row exchange; the same fitted
    attributes, plain NumPy."""
    X, y, Xt, yt = ratings
    one = MFRegressor(solver=solver, **PARAMS).fit(X, y)
    if (solver, nproc) == ("gibbs", 2):
        model = gibbs_two
    else:
        model = sd.fit(
            MFRegressor(solver=solver, **PARAMS), X, y, nproc=nproc, timeout=60,
            row_exchange=row_exchange,
        )  # fmt: skip
    _same_model(model, one, atol=1e-4)
    assert abs(_rmse(model, Xt, yt) - _rmse(one, Xt, yt)) < 1e-4
    assert sorted(vars(model)) == sorted(vars(one))
    np.testing.assert_array_equal(model._rated[0], one._rated[0])
    np.testing.assert_array_equal(model._rated[1], one._rated[1])
    np.testing.assert_allclose(model._user_n, one._user_n)
    assert model.rating_range_ == one.rating_range_
    np.testing.assert_allclose(model.loss_curve_, one.loss_curve_, rtol=1e-4)
    # An ordinary estimator: recommends and pickles like any other.
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(Xt), model.predict(Xt))
    np.testing.assert_array_equal(
        model.recommend(X[0, 0], n=5), one.recommend(X[0, 0], n=5)
    )


def test_weights_dataframe_and_ids_of_any_type(ratings):
    """The forms MFRegressor.fit takes: a DataFrame of text ids, weights."""
    X, y, _, _ = ratings
    frame = pd.DataFrame(
        {"user": [f"u{u}" for u in X[:, 0]], "item": X[:, 1], "rating": y}
    )
    w = np.random.default_rng(0).uniform(0.5, 2, len(y))
    one = MFRegressor(**PARAMS).fit(frame, sample_weight=w)
    model = sd.fit(MFRegressor(**PARAMS), frame, sample_weight=w, nproc=2)
    _same_model(model, one, atol=1e-4)
    np.testing.assert_array_equal(model.feature_names_in_, one.feature_names_in_)


# ------------------------------------------------------------ fit_shard
def _spmd(parts, params, gather):
    """The fitted estimator of each process (``fit_shard`` on ``parts[r]``)."""
    import torch.distributed as dist

    rank = dist.get_rank()
    X, y = parts[rank]
    return sd.fit_shard(MFRegressor(**params), X, y, gather=gather)


def _spmd_worker(parts, params):
    import datetime

    import torch.distributed as dist

    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    try:
        every = _spmd(parts, params, "all")
        first = _spmd(parts, params, "rank0")
        return pickle.dumps((every, first))
    finally:
        dist.destroy_process_group()


def _launch(nproc, fn, *args):
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, rdzv_backend="c10d",
        rdzv_endpoint="localhost:0", run_id=uuid.uuid4().hex, max_restarts=0,
        monitor_interval=0.1,
    )  # fmt: skip
    return elastic_launch(config, fn)(*args)


@pytest.mark.slow
def test_fit_shard_mixed_ids_different_ids_per_rank_and_an_empty_rank(ratings):
    """Three processes: two with ids of mixed types that the other does not
    see, one without ratings. Every process (gather="all") or process 0 only
    (gather="rank0") gets the model of the one-process fit of all ratings."""
    X, y, _, _ = ratings
    users = np.array([f"s{u}" if u % 2 else int(u) for u in X[:, 0]], dtype=object)
    items = X[:, 1].astype(np.int64)
    # Process 0 gets the first 3000 ratings, process 1 the rest, process 2 none.
    whole = np.column_stack([users, items])
    parts = [(whole[:3000], y[:3000]), (whole[3000:], y[3000:]), (None, None)]
    one = MFRegressor(**PARAMS).fit(whole, y)
    out = _launch(3, _spmd_worker, parts, PARAMS)
    for rank in range(3):
        every, first = pickle.loads(out[rank])
        _same_model(every, one, atol=1e-4)
        if rank == 0:
            _same_model(first, one, atol=1e-4)
            np.testing.assert_array_equal(first._rated[1], one._rated[1])
        else:
            assert first is None


def _block_ratings(seed=0):
    """Two communities: users 0-199 rate items 0-99, users 200-399 items
    100-199, with 0.5 % of the ratings across. Split in two by ratings, each
    process reads few rows it does not own."""
    rng = np.random.default_rng(seed)
    n = 6000
    half = rng.integers(0, 2, n)
    users = rng.integers(0, 200, n) + 200 * half
    across = rng.random(n) < 0.005
    items = rng.integers(0, 100, n) + 100 * np.where(across, 1 - half, half)
    y = 3 + 0.5 * np.sin(users) * np.cos(items) + rng.normal(0, 0.3, n)
    return np.column_stack([users, items]), y


def _exchange_worker(X, y, params, row_exchange):
    import datetime

    import torch.distributed as dist

    from skmf.distributed import _shard

    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    try:
        rank, size = dist.get_rank(), dist.get_world_size()
        part = slice(rank * len(y) // size, (rank + 1) * len(y) // size)
        model = sd.fit_shard(
            MFRegressor(**params), X[part], y[part], row_exchange=row_exchange
        )
        return pickle.dumps((model, dict(_shard._LAST_STATS)))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("solver", ["als", "gibbs"])
def test_only_the_needed_rows_travel_and_the_model_is_the_same(solver):
    """On ratings in two communities, "auto" sends each process only the rows
    its ratings read (an all-to-all), far fewer bytes than the all-gather;
    the other rows of each process's copy are stale during the fit, and the
    model is still the one-process fit's (the penalty and Gibbs'
    hyperparameters sum over owned rows, the tables are completed at the end).
    """
    X, y = _block_ratings()
    params = {**PARAMS, "solver": solver}
    one = MFRegressor(**params).fit(X, y)
    runs = {
        mode: [
            pickle.loads(b)
            for b in _launch(2, _exchange_worker, X, y, params, mode).values()
        ]
        for mode in ("auto", "all_gather")
    }
    for mode, results in runs.items():
        for model, stats in results:
            _same_model(model, one, atol=1e-4)
            expected = "needed" if mode == "auto" else "all_gather"
            assert stats["row_exchange"] == {"user": expected, "item": expected}
    for (_, needed), (_, gathered) in zip(runs["auto"], runs["all_gather"]):
        sent = needed["bytes_received"]["share_rows"]
        assert 0 < sent < 0.25 * gathered["bytes_received"]["share_rows"]


def test_fit_shard_needs_a_process_group(ratings):
    X, y, _, _ = ratings
    with pytest.raises(RuntimeError, match="init_process_group"):
        sd.fit_shard(MFRegressor(), X, y)


# --------------------------------------------------- faults and errors
@pytest.mark.slow
def test_resumes_from_its_checkpoint_after_a_lost_process(
    ratings, gibbs_two, tmp_path, monkeypatch
):
    """Process 1 exits abruptly after sweep 3; the launcher restarts both, they
    resume from the checkpoint of sweep 2 and end with the uninterrupted
    fit's model (Gibbs: the generators' states are restored too)."""
    X, y, _, _ = ratings
    marker = tmp_path / "failed"
    monkeypatch.setenv(FAIL_ONCE_ENV, f"1:3:exit:{marker}")
    folder = tmp_path / "checkpoints"
    model = sd.fit(
        MFRegressor(solver="gibbs", **PARAMS), X, y, nproc=2,
        checkpoint_dir=folder, checkpoint_every=2, max_restarts=1, timeout=60,
    )  # fmt: skip
    assert marker.exists()  # process 1 did exit
    assert (folder / "log.txt").read_text() == "resumed from sweep 2 with 2 processes\n"
    _same_model(model, gibbs_two, atol=0)
    # Another fit in the same folder is refused.
    monkeypatch.delenv(FAIL_ONCE_ENV)
    with pytest.raises(ValueError, match="checkpoint of another fit"):
        sd.fit(
            MFRegressor(solver="gibbs", **{**PARAMS, "n_components": 3}), X, y,
            nproc=2, checkpoint_dir=folder,
        )  # fmt: skip


def test_a_failing_process_reports_its_error(ratings, tmp_path, monkeypatch):
    """A process that raises mid-fit stops the others; fit raises its error
    (same type, its message), not the collectives' time-outs."""
    X, y, _, _ = ratings
    monkeypatch.setenv(FAIL_ONCE_ENV, f"1:2:raise:{tmp_path / 'm'}")
    with pytest.raises(ValueError, match="Injected failure of process 1 at sweep 2"):
        sd.fit(MFRegressor(**PARAMS), X, y, nproc=2, timeout=60)


@pytest.mark.slow
def test_a_hung_process_times_out(ratings, tmp_path, monkeypatch):
    """A process that stops answering fails the fit after ``timeout`` seconds."""
    X, y, _, _ = ratings
    monkeypatch.setenv(FAIL_ONCE_ENV, f"1:2:hang:{tmp_path / 'm'}")
    with pytest.raises(RuntimeError, match="(?i)timed out|timeout"):
        sd.fit(MFRegressor(**PARAMS), X, y, nproc=2, timeout=3)


def test_bad_data_in_one_process_is_reported(tmp_path):
    """An error in one process's files reaches the caller with its message."""
    pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [3.0, 4.0]}).to_csv(
        tmp_path / "a.csv", index=False
    )
    pd.DataFrame({"user": [1, 3], "item": [2, 2], "rating": ["x", "4"]}).to_csv(
        tmp_path / "b.csv", index=False
    )
    with pytest.raises((ValueError, TypeError), match="(?i)rating"):
        sd.fit(MFRegressor(**PARAMS), tmp_path, nproc=2)


# --------------------------------------------------------------- files
def test_parquet_and_csv_files_split_by_file(ratings, tmp_path):
    """A folder of files: each process reads its own; the one-process model."""
    pytest.importorskip("pyarrow", reason="Parquet files need pyarrow")
    X, y, Xt, yt = ratings
    frame = pd.DataFrame({"user": X[:, 0], "item": X[:, 1], "rating": y})
    frame.iloc[:2000].to_parquet(tmp_path / "part-0.parquet")
    frame.iloc[2000:3500].to_parquet(tmp_path / "part-1.parquet")
    frame.iloc[3500:].to_csv(tmp_path / "part-2.csv", index=False)
    one = MFRegressor(**PARAMS).fit(frame)
    model = sd.fit(MFRegressor(**PARAMS), tmp_path, nproc=2)
    _same_model(model, one, atol=1e-4)
    assert model.n_features_in_ == one.n_features_in_


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    import builtins

    from skmf.distributed._files import read_files

    (tmp_path / "a.parquet").write_bytes(b"")
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError("no pyarrow")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"skmf\[parquet\]"):
        read_files([tmp_path / "a.parquet"], ("user", "item", "rating"))


def test_files_are_split_by_size():
    from skmf.distributed._files import split_files

    assert split_files([], 2) == [[], []]


# ------------------------------------------------------------- command
def _csv_parts(ratings, folder):
    X, y, _, _ = ratings
    frame = pd.DataFrame({"user": X[:, 0], "item": X[:, 1], "rating": y})
    paths = [folder / "r0.csv", folder / "r1.csv"]
    frame.iloc[:2500].to_csv(paths[0], index=False)
    frame.iloc[2500:].to_csv(paths[1], index=False)
    return frame, [str(p) for p in paths]


@pytest.mark.slow
def test_command_line_fit_with_nproc(ratings, tmp_path):
    """skmf fit FILES... --nproc 2 -o MODEL: the one-process model, saved."""
    import subprocess
    import sys

    from skmf._persist import load_model

    frame, paths = _csv_parts(ratings, tmp_path)
    out = tmp_path / "model.skmf"
    command = [sys.executable, "-m", "skmf", "fit", *paths, "--nproc", "2"]
    command += ["-o", str(out), "--random-state", "0", "--n-components", "4"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sharded" in result.stdout
    one = MFRegressor(random_state=0, n_components=4).fit(frame)
    _same_model(load_model(out), one, atol=1e-4)


def test_command_line_refuses_sgd_before_starting(ratings, tmp_path, capsys):
    from skmf._cli import main

    _, paths = _csv_parts(ratings, tmp_path)
    out = str(tmp_path / "m.skmf")
    assert main(["fit", *paths, "--nproc", "2", "--solver", "sgd", "-o", out]) == 2
    assert "row-parallel solvers ['als', 'gibbs']" in capsys.readouterr().err


# ---------------------------------------------------------- validation
@pytest.mark.parametrize(
    "params, match",
    [
        ({"solver": "sgd"}, r"row-parallel solvers \['als', 'gibbs'\]"),
        ({"solver": "adam"}, r"row-parallel solvers \['als', 'gibbs'\]"),
        ({"early_stopping": True}, "early_stopping=True is not available"),
        ({"alpha": -1.0}, "'alpha' parameter"),
    ],
)
def test_invalid_estimators_fail_before_starting(ratings, params, match):
    X, y, _, _ = ratings
    with pytest.raises(ValueError, match=match):
        sd.fit(MFRegressor(**params), X, y)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"nproc": 0}, "nproc must be an int >= 1"),
        ({"backend": "tcp"}, "backend must be one of"),
        ({"timeout": 0}, "timeout must be"),
        ({"checkpoint_every": 0}, "checkpoint_every must be"),
        ({"max_restarts": -1}, "max_restarts must be"),
        ({"row_exchange": "ring"}, "row_exchange must be one of"),
    ],
)
def test_invalid_options(ratings, kwargs, match):
    X, y, _, _ = ratings
    with pytest.raises(ValueError, match=match):
        sd.fit(MFRegressor(), X, y, **kwargs)


def test_files_take_no_y(tmp_path):
    (tmp_path / "a.csv").write_text("user,item,rating\n1,1,3\n")
    with pytest.raises(ValueError, match="y and sample_weight must be None"):
        sd.fit(MFRegressor(), tmp_path, [3.0])
    with pytest.raises(FileNotFoundError, match="No such file"):
        sd.fit(MFRegressor(), str(tmp_path / "missing.parquet"))


def test_import_is_light():
    """import skmf.distributed does not import the elastic launcher."""
    import subprocess
    import sys

    code = (
        "import sys, skmf.distributed; "
        "print('torch.distributed.launcher.api' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- Dask
def test_grid_search_in_dask_workers(ratings):
    """GridSearchCV with joblib's Dask backend fits skmf in Dask workers, each
    with the one thread Dask gives it (torch.get_num_threads() == 1)."""
    pytest.importorskip("distributed", reason="needs dask[distributed]")
    import joblib
    from distributed import Client, LocalCluster
    from sklearn.model_selection import GridSearchCV

    X, y, _, _ = ratings
    grid = {"alpha": [0.5, 2.0]}
    base = MFRegressor(n_components=4, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        local = GridSearchCV(
            base, grid, cv=2, scoring="neg_root_mean_squared_error"
        ).fit(X, y)
        with (
            LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # any free port: 8787 may be taken
            ) as cluster,
            Client(cluster) as client,
        ):

            def threads():
                import torch

                return torch.get_num_threads()

            assert set(client.run(threads).values()) == {1}
            with joblib.parallel_backend("dask"):
                search = GridSearchCV(
                    base, grid, cv=2, scoring="neg_root_mean_squared_error", n_jobs=2
                ).fit(X, y)
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )


def test_environment_hook_is_not_set():
    assert FAIL_ONCE_ENV not in os.environ
