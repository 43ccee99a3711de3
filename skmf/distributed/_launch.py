"""``fit``: start local processes, fit sharded, return an ordinary estimator.

:func:`fit` parses the ratings once, gives each process a contiguous part of
them (written to a temporary folder, so that no process receives the whole
data set), and starts the processes with torch's elastic launcher
(``torch.distributed.launcher.api.elastic_launch``, c10d rendezvous on
``localhost:0``: a free port each time, so parallel fits never collide).
Each process runs :func:`~skmf.distributed.fit_shard`; process 0 writes the
fitted estimator back. A process that raises writes its error first; the
launcher then stops the others, and :func:`fit` raises that error (the same
exception type, the process's message) rather than the collectives' time-outs
it caused elsewhere.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import pickle
import sys
import tempfile
import time
import traceback
import types
import uuid
import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skmf._data import DEFAULT_COLUMNS, factorize_ids, parse_ratings
from skmf._estimator import _positive_ratings
from skmf.distributed._files import as_files, read_files, split_files
from skmf.distributed._shard import _check_options, check_estimator

__all__ = ["BACKENDS", "fit"]

#: The torch.distributed backends fit starts processes with.
BACKENDS = ("gloo", "nccl")


class RemoteTraceback(Exception):
    """The traceback of an error raised in one of the processes."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


@dataclass
class _Job:
    """What every process needs: the estimator, where its data is, the options."""

    estimator: object
    folder: str
    backend: str
    timeout: float
    gather: str = "rank0"
    checkpoint_dir: str | None = None
    checkpoint_every: int = 10
    columns: tuple = DEFAULT_COLUMNS
    row_exchange: str = "auto"
    files: list | None = None  # per process, or None: shard-<r>.npz


# ------------------------------------------------------------ processes
def _error_path(folder: str, attempt: int, rank: int) -> Path:
    return Path(folder) / f"error-{attempt}-{rank}.pkl"


def _write_error(folder: str, attempt: int, rank: int, exc: BaseException) -> None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    record = {
        "time": time.time(),
        "attempt": attempt,
        "rank": rank,
        "traceback": text,
        # Errors of the data or the parameters would only happen again after
        # a restart; a lost peer or a time-out may not.
        "deterministic": isinstance(exc, ValueError | TypeError),
    }
    try:
        record["error"] = pickle.dumps(exc)
    except Exception:  # an exception that cannot be pickled
        record["error"] = None
        record["type"] = type(exc).__name__
        record["message"] = str(exc)
    tmp = Path(folder) / f".error-{attempt}-{rank}.tmp"
    tmp.write_bytes(pickle.dumps(record))
    os.replace(tmp, _error_path(folder, attempt, rank))


def _set_threads(estimator) -> None:
    """Share the cores between the local processes (n_jobs=None, no OMP setting)."""
    import torch

    if estimator.n_jobs is None and "OMP_NUM_THREADS" not in os.environ:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))


def init_process_group(backend: str, timeout: float) -> None:
    """``torch.distributed.init_process_group`` for a process of a launch.

    From the launcher's environment (MASTER_ADDR, MASTER_PORT, RANK,
    WORLD_SIZE), with the store's keys under a prefix per attempt: after a
    restart, the processes must not read the addresses the processes of the
    previous attempt left in the store (gloo would try to connect to them).
    """
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    delta = datetime.timedelta(seconds=timeout)
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == str(True):
        # The launcher hosts the store.
        store = dist.TCPStore(
            os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
            is_master=False, timeout=delta,
        )  # fmt: skip
    else:  # process 0 hosts it
        store = dist.TCPStore(
            os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
            is_master=rank == 0, timeout=delta, multi_tenant=True,
        )  # fmt: skip
    store = dist.PrefixStore(f"skmf/attempt-{attempt}/", store)
    dist.init_process_group(
        backend, store=store, rank=rank, world_size=world, timeout=delta
    )


def _worker(job: _Job):
    """The entry point of each process started by :func:`fit`."""
    import torch.distributed as dist

    from skmf.distributed._shard import _fit_shard

    rank = int(os.environ["RANK"])
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    try:
        # After a restart, an error of the data or the parameters raised
        # before stops the run at once: it would only happen again.
        if attempt and any(r["deterministic"] for r in _errors(job.folder)):
            return None
        _set_threads(job.estimator)
        init_process_group(job.backend, job.timeout)
        try:
            if job.files is not None:
                X = read_files(job.files[rank], job.columns)
                y = w = None
            else:
                with np.load(Path(job.folder) / f"shard-{rank}.npz") as shard:
                    X = np.column_stack([shard["users"], shard["items"]])
                    y = shard["ratings"]
                    w = shard["weights"] if "weights" in shard.files else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                estimator, record = _fit_shard(
                    job.estimator, X, y, sample_weight=w, gather=job.gather,
                    checkpoint_dir=job.checkpoint_dir,
                    checkpoint_every=job.checkpoint_every, columns=job.columns,
                    row_exchange=job.row_exchange,
                )  # fmt: skip
            if rank == 0:
                tmp = Path(job.folder) / ".result.tmp"
                tmp.write_bytes(pickle.dumps((estimator, record)))
                os.replace(tmp, Path(job.folder) / "result.pkl")
        finally:
            dist.destroy_process_group()
    except BaseException as exc:
        if not _error_path(job.folder, attempt, rank).exists():
            _write_error(job.folder, attempt, rank, exc)
        raise


def _errors(folder: str) -> list[dict]:
    """The errors the processes wrote, of every attempt."""
    records = []
    for path in Path(folder).glob("error-*.pkl"):
        try:
            records.append(pickle.loads(path.read_bytes()))
        except Exception:  # being written, or damaged
            continue
    return records


def _raise_first_error(folder: str, failure: Exception) -> None:
    """Raise the error that stopped the fit (its type and message).

    The first error of the data or the parameters, if any; otherwise the
    first error of the last attempt.
    """
    records = _errors(folder)
    if records:
        fatal = [r for r in records if r["deterministic"]]
        last = max(r["attempt"] for r in records)
        records = fatal or [r for r in records if r["attempt"] == last]
    if not records:
        raise RuntimeError(
            f"A process of the sharded fit stopped without an error message "
            f"(killed, or out of memory?):\n{failure}"
        ) from failure
    first = min(records, key=lambda r: r["time"])
    cause = RemoteTraceback(
        f"\n\nProcess {first['rank']} of the sharded fit raised:\n\n"
        f"{first['traceback']}"
    )
    error = None
    if first.get("error") is not None:
        try:
            error = pickle.loads(first["error"])
        except Exception:
            error = None
    if not isinstance(error, BaseException):
        error = RuntimeError(
            f"{first.get('type', 'Error')}: {first.get('message', '')}"
        )
    raise error from cause


# ------------------------------------------------------------------ fit
def _check_launch(nproc, backend, timeout, max_restarts) -> None:
    if not isinstance(nproc, Integral) or isinstance(nproc, bool) or nproc < 1:
        raise ValueError(f"nproc must be an int >= 1; got {nproc!r}.")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}; got {backend!r}.")
    if isinstance(timeout, bool) or not isinstance(timeout, Real) or not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0; got {timeout!r}.")
    if (
        not isinstance(max_restarts, Integral)
        or isinstance(max_restarts, bool)
        or max_restarts < 0
    ):
        raise ValueError(f"max_restarts must be an int >= 0; got {max_restarts!r}.")


def _write_shards(folder: Path, data, u_codes, i_codes, nproc: int) -> None:
    """Contiguous parts of the ratings, one file per process."""
    cuts = np.linspace(0, len(u_codes), nproc + 1).round().astype(np.int64)
    for r in range(nproc):
        part = slice(cuts[r], cuts[r + 1])
        arrays = {
            "users": u_codes[part],
            "items": i_codes[part],
            "ratings": data.ratings[part],
        }
        if data.weights is not None:
            arrays["weights"] = data.weights[part]
        np.savez(folder / f"shard-{r}.npz", **arrays)


def fit(
    estimator,
    X,
    y=None,
    *,
    sample_weight=None,
    nproc=2,
    backend="gloo",
    checkpoint_dir=None,
    checkpoint_every=10,
    max_restarts=0,
    timeout=600.0,
    columns=DEFAULT_COLUMNS,
    row_exchange="auto",
):
    """Fit an MFRegressor with ``nproc`` local processes, ratings sharded.

    Starts ``nproc`` processes with torch's elastic launcher, splits the
    ratings between them and fits with the row-parallel ALS or Gibbs solver
    (see :func:`fit_shard` and the "Beyond one machine" page of the
    documentation). The result is the model ``estimator.fit(X, y)`` gives, up
    to round-off: an ordinary fitted MFRegressor with NumPy state.

    Parameters
    ----------
    estimator : MFRegressor
        The estimator to fit (``solver`` "als" or "gibbs",
        ``early_stopping=False``); it is fitted in place and returned.

    X : array-like, DataFrame, sparse matrix, path, or list of paths
        The ratings in any form :meth:`skmf.MFRegressor.fit` takes; or Parquet
        or CSV files of ratings (a path, a folder of them, or a list): each
        process then reads only its own files (Parquet needs pyarrow, the
        ``parquet`` extra).

    y : array-like of shape (n_ratings,), default=None
        Ratings of (user, item) pairs (not with files).

    sample_weight : array-like of shape (n_ratings,), default=None
        Weight of each rating (not with files).

    nproc : int, default=2
        Number of processes.

    backend : {"gloo", "nccl"}, default="gloo"
        The ``torch.distributed`` backend: "gloo" on CPUs, "nccl" for one GPU
        per process (with ``device="cuda"``).

    checkpoint_dir : str or path-like, default=None
        Folder for checkpoints of every process's rows, every
        ``checkpoint_every`` sweeps; a fit that finds one of the same fit
        there resumes from it.

    checkpoint_every : int, default=10
        Sweeps between checkpoints.

    max_restarts : int, default=0
        How many times the launcher restarts the processes after one is lost
        (with ``checkpoint_dir``, the fit then resumes from its checkpoint).

    timeout : float, default=600.0
        Seconds a process waits in a collective for the others before it
        fails (a hung process fails the fit instead of blocking it).

    columns : tuple of str, default=("user", "item", "rating")
        The column names of a DataFrame or of the files.

    row_exchange : {"auto", "all_gather", "needed"}, default="auto"
        How the processes share the factor rows they solve after each
        half-sweep (see :func:`fit_shard`).

    Returns
    -------
    estimator : MFRegressor
        The fitted estimator.
    """
    _check_launch(nproc, backend, timeout, max_restarts)
    _check_options("rank0", checkpoint_dir, checkpoint_every, row_exchange)
    check_estimator(estimator, "skmf.distributed.fit")
    files = as_files(X)
    if files is not None and (y is not None or sample_weight is not None):
        raise ValueError(
            "With rating files, y and sample_weight must be None: the files hold "
            "the (user, item, rating) columns."
        )
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    with tempfile.TemporaryDirectory(prefix="skmf-distributed-") as folder:
        job = _Job(
            estimator=_unfitted(estimator), folder=folder, backend=backend,
            timeout=float(timeout), checkpoint_dir=_path(checkpoint_dir),
            checkpoint_every=int(checkpoint_every), columns=tuple(columns),
            row_exchange=row_exchange,
        )  # fmt: skip
        data = None
        if files is None:
            data = _positive_ratings(
                parse_ratings(
                    X, y, sample_weight, need_ratings=True, caller="fit",
                    columns=columns,
                ),
                "fit",
            )  # fmt: skip
            u_codes, user_ids = factorize_ids(data.users)
            i_codes, item_ids = factorize_ids(data.items)
            _write_shards(Path(folder), data, u_codes, i_codes, nproc)
        else:
            job.files = split_files(files, nproc)
        config = LaunchConfig(
            min_nodes=1, max_nodes=1, nproc_per_node=nproc, rdzv_backend="c10d",
            rdzv_endpoint="localhost:0", run_id=f"skmf-{uuid.uuid4().hex}",
            max_restarts=int(max_restarts), monitor_interval=0.1,
            start_method="spawn",
        )  # fmt: skip
        # The launcher logs each failure with its traceback; fit raises the
        # error itself, once.
        quiet = logging.getLogger("torch.distributed.elastic")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        try:
            with _main_module_hidden():
                elastic_launch(config, _worker)(job)
        except ChildFailedError as failure:
            _raise_first_error(folder, failure)
        finally:
            quiet.setLevel(level)
        result = Path(folder) / "result.pkl"
        if not result.exists():  # stopped after a restart: an earlier error
            _raise_first_error(folder, RuntimeError("The processes gave no model."))
        fitted, record = pickle.loads(result.read_bytes())
    _copy_state(fitted, estimator)
    if data is not None:  # the ranks saw codes: the ids and columns of X
        estimator._set_inputs(data, user_ids, item_ids)
    if not record.converged:
        warnings.warn(
            f"MFRegressor ({estimator.solver!r}) reached max_iter="
            f"{estimator.max_iter} before the objective converged. Increase "
            "'max_iter', or raise 'tol'.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return estimator


@contextlib.contextmanager
def _main_module_hidden():
    """Start the processes without re-running the caller's script in them.

    The "spawn" start method imports the parent's ``__main__`` in each child
    (running a script without an ``if __name__ == "__main__"`` guard, a
    notebook's or a gallery example's code, again). The processes need only
    skmf, so they are started while ``__main__`` is an empty module.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _unfitted(estimator):
    from sklearn.base import clone

    return clone(estimator)


def _copy_state(fitted, estimator) -> None:
    """Give ``estimator`` the fitted state of ``fitted`` (its own attributes)."""
    for name in [n for n in vars(estimator) if n.endswith("_") or n.startswith("_")]:
        if name not in vars(fitted) and not name.startswith("__"):
            delattr(estimator, name)
    params = set(estimator.get_params(deep=False))
    for name, value in vars(fitted).items():
        if name not in params:
            setattr(estimator, name, value)


def _path(value):
    return None if value is None else os.fspath(value)
