"""The few collectives the row-parallel steps need, and their one-process form.

ALS and Gibbs update the rows of one side (users or items) independently given
the other side, so a fit can be sharded by rows: each process owns a
contiguous range of the users and one of the items, solves those rows from
the ratings it holds for them, then shares them. The steps
(:class:`~skmf._solvers._als.ALSStep`,
:class:`~skmf._solvers._gibbs.GibbsStep`, the spectral start and the fit
loop) take a communicator with these operations:

``rows(side)``
    The slice of the rows of ``side`` ("user" or "item") this process owns.
``share_rows(side, *tables)``
    After the owned rows of the tables (full-height tensors of ``side``)
    were updated, give every process the rows its ratings read (all of
    them, or only those its ratings touch: the other rows of a process's
    copy may then be stale, so anything that reads a whole table sums over
    the owned rows instead).
``complete(side, *tables)``
    Make every process's copy of the tables whole (once, at the end).
``gather(side, local)``
    The full table of ``side`` from each process's rows ``local``.
``sum(*values)``, ``sum_tensor(t)``, ``max(value)``
    Sums of numbers, or element-wise sums of a tensor, or the largest number,
    over the processes, the same on every process.
``agree(check)``
    Run a validation on every process; if it raises on one, raise on all.

:class:`LocalComm`, the communicator of an ordinary one-process fit, owns
every row and makes each collective the identity, so that the one-process
path runs exactly as without one. ``skmf.distributed`` implements them over
``torch.distributed``.
"""

from __future__ import annotations

import torch

__all__ = ["LOCAL", "LocalComm"]


class LocalComm:
    """The communicator of a one-process fit: every collective is the identity."""

    rank = 0
    size = 1

    def rows(self, side: str) -> slice:
        """All rows: one process owns them."""
        return slice(None)

    def share_rows(self, side: str, *tables: torch.Tensor) -> None:
        """Nothing to share."""

    def complete(self, side: str, *tables: torch.Tensor) -> None:
        """The tables are whole."""

    def gather(self, side: str, local: torch.Tensor) -> torch.Tensor:
        """``local`` is the full table."""
        return local

    def sum(self, *values):
        """The values themselves (a tuple, in the order given)."""
        return values

    def sum_tensor(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` itself."""
        return t

    def max(self, value: float) -> float:
        """``value`` itself."""
        return value

    def agree(self, check) -> None:
        """Run ``check``."""
        check()


#: The one-process communicator (stateless, shared).
LOCAL = LocalComm()
