"""Checkpoints of a sharded fit: each process's rows, every few sweeps.

A checkpoint of sweep ``t`` is a folder ``sweep-<t>`` of ``checkpoint_dir``
with one file per process (``rank-<r>.pt``: the rows of both factor tables
that process owns, with their ranges, and the sampler's sums for Gibbs) and
the state every process shares (the intercept, the objective of each sweep,
the random generators' states, Gibbs' noise precision) in rank 0's file.
Once every process has written its file, rank 0 points ``latest`` at the
folder (an atomic rename) and removes the older one. A run that finds
``latest`` (a restart by torchrun or the elastic launcher) reads every file
of that folder, so it resumes with any number of processes, and replays the
recorded objectives through the stopping rule before sweeping on, ending
with the model the uninterrupted run would have.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import torch
import torch.distributed as dist

from skmf._solvers import Step

__all__ = ["Checkpointer", "fit_signature"]

# Test hook: "<rank>:<sweep>:<action>:<marker file>" makes that process, after
# that sweep (and its checkpoint), once (while the marker file does not exist):
# "exit" abruptly (os._exit(1), a lost process), "raise" a ValueError, or
# "hang" (sleep), to test resuming, error reports and time-outs.
FAIL_ONCE_ENV = "SKMF_DISTRIBUTED_FAIL_ONCE"

_TABLES = ("P", "Q", "bu", "bi")
_SIDE = {"P": "user", "bu": "user", "Q": "item", "bi": "item"}


def fit_signature(**values) -> str:
    """A short digest of what makes two fits the same (data sizes, settings)."""
    text = json.dumps({k: repr(v) for k, v in sorted(values.items())})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Checkpointer(Step):
    """Wraps a solver's step: checkpoints it, and replays a resumed fit.

    Parameters
    ----------
    step : Step
        The solver's step (ALSStep or GibbsStep).
    F : Factors
        The model tensors the step updates (full tables on every process).
    comm : TorchComm
        The communicator (owned rows, rank).
    directory : path or None
        Where to write the checkpoints (None: none are written or read).
    every : int
        Checkpoint after every ``every`` sweeps.
    signature : str
        Of the fit (:func:`fit_signature`); a checkpoint of another fit in
        ``directory`` is an error.
    random_state : numpy.random.RandomState
        The fit's generator (Gibbs draws from it): saved and restored.
    """

    def __init__(self, step, F, comm, directory, every, signature, random_state):
        self.step, self.F, self.comm = step, F, comm
        self.directory = None if directory is None else Path(directory)
        self.every = int(every)
        self.signature = signature
        self.rng = random_state
        self.losses: list[float] = []
        self.replay: list[float] = []
        self.resumed_from = 0

    # ------------------------------------------------------------- state
    def _sampler(self):
        """The Gibbs step's state, or None for ALS."""
        return self.step if hasattr(self.step, "tau") else None

    def _shared_state(self) -> dict:
        state = {
            "mu": self.F.mu.detach().cpu(),
            "losses": list(self.losses),
            "rng": self.rng.get_state(),
        }
        gibbs = self._sampler()
        if gibbs is not None:
            state.update(
                tau=gibbs.tau,
                n_kept=gibbs.n_kept,
                generator=gibbs.generator.get_state(),
                sum_mu=gibbs.sum.mu.detach().cpu(),
            )
        return state

    def _own_rows(self) -> dict:
        rows = {"user": self.comm.rows("user"), "item": self.comm.rows("item")}
        out = {"ranges": {s: (r.start, r.stop) for s, r in rows.items()}}
        gibbs = self._sampler()
        for name in _TABLES:
            out[name] = getattr(self.F, name)[rows[_SIDE[name]]].detach().cpu()
            if gibbs is not None:
                out["sum_" + name] = (
                    getattr(gibbs.sum, name)[rows[_SIDE[name]]].detach().cpu()
                )
        return out

    # -------------------------------------------------------------- save
    def save(self, sweep: int) -> None:
        """Write this process's part of the checkpoint of ``sweep``."""
        folder = self.directory / f"sweep-{sweep}"
        folder.mkdir(parents=True, exist_ok=True)
        payload = {"signature": self.signature, "rows": self._own_rows()}
        if self.comm.rank == 0:
            payload["shared"] = self._shared_state()
        tmp = folder / f".rank-{self.comm.rank}.pt.tmp"
        torch.save(payload, tmp)
        os.replace(tmp, folder / f"rank-{self.comm.rank}.pt")
        dist.barrier(group=self.comm.group)  # every part is written
        if self.comm.rank == 0:
            latest = self.directory / "latest"
            previous = _read_latest(self.directory)
            tmp = self.directory / ".latest.tmp"
            tmp.write_text(
                json.dumps(
                    {
                        "sweep": sweep,
                        "size": self.comm.size,
                        "signature": self.signature,
                    }
                )
            )
            os.replace(tmp, latest)
            if previous is not None and previous["sweep"] != sweep:
                shutil.rmtree(
                    self.directory / f"sweep-{previous['sweep']}", ignore_errors=True
                )

    # -------------------------------------------------------------- load
    def restore(self) -> int:
        """Load the latest checkpoint, if any: the number of sweeps it holds."""
        if self.directory is None:
            return 0
        latest = _read_latest(self.directory)
        if latest is None:
            return 0
        if latest["signature"] != self.signature:
            raise ValueError(
                f"checkpoint_dir={str(self.directory)!r} holds a checkpoint of "
                "another fit (other data or parameters). Use an empty folder for "
                "this fit, or delete that one."
            )
        folder = self.directory / f"sweep-{latest['sweep']}"
        F, gibbs = self.F, self._sampler()
        shared = None
        for r in range(int(latest["size"])):
            part = torch.load(folder / f"rank-{r}.pt", weights_only=False)
            rows = part["rows"]
            for name in _TABLES:
                lo, hi = rows["ranges"][_SIDE[name]]
                target = getattr(F, name)
                target[lo:hi] = rows[name].to(target.device, target.dtype)
                if gibbs is not None:
                    target = getattr(gibbs.sum, name)
                    target[lo:hi] = rows["sum_" + name].to(target.device, target.dtype)
            if "shared" in part:
                shared = part["shared"]
        F.mu.copy_(shared["mu"])
        self.rng.set_state(shared["rng"])
        if gibbs is not None:
            gibbs.tau = shared["tau"]
            gibbs.n_kept = shared["n_kept"]
            gibbs.generator.set_state(shared["generator"])
            gibbs.sum.mu.copy_(shared["sum_mu"])
        self.replay = list(shared["losses"])
        self.resumed_from = len(self.replay)
        if self.comm.rank == 0:
            with open(self.directory / "log.txt", "a") as log:
                log.write(
                    f"resumed from sweep {self.resumed_from} with "
                    f"{self.comm.size} processes\n"
                )
        return self.resumed_from

    # -------------------------------------------------------------- step
    def __call__(self, iteration: int) -> float:
        if iteration < len(self.replay):  # done before the restart
            loss = self.replay[iteration]
            self.losses.append(loss)
            return loss
        loss = self.step(iteration)
        self.losses.append(loss)
        sweep = iteration + 1
        if self.directory is not None and sweep % self.every == 0:
            self.save(sweep)
        _maybe_fail(self.comm.rank, sweep)
        return loss

    def finish(self) -> None:
        self.step.finish()

    def close(self) -> None:
        self.step.close()


def _read_latest(directory: Path) -> dict | None:
    try:
        return json.loads((directory / "latest").read_text())
    except FileNotFoundError:
        return None


def _maybe_fail(rank: int, sweep: int) -> None:
    spec = os.environ.get(FAIL_ONCE_ENV)
    if not spec:
        return
    which, at, action, marker = spec.split(":", 3)
    if int(which) != rank or int(at) != sweep or os.path.exists(marker):
        return
    Path(marker).write_text(f"{action} once\n")
    if action == "exit":
        os._exit(1)
    if action == "raise":
        raise ValueError(f"Injected failure of process {rank} at sweep {sweep}.")
    time.sleep(3600)  # "hang"
