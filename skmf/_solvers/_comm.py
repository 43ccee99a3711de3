"""The few collectives the row-parallel steps need, and their one-process form.

ALS and Gibbs update the rows of one side (users or items) independently given
the other side, so a fit can be sharded by rows: each process owns a
contiguous range of the users and one of the items, solves those rows from
the ratings it holds for them, then shares them. The steps
(:class:`~skmf._solvers._als.ALSStep`,
:class:`~skmf._solvers._gibbs.GibbsStep`, the spectral start and the fit
loop) take a communicator with three operations:

``rows(side)``
    The slice of the rows of ``side`` ("user" or "item") this process owns.
``share_rows(side, *tables)``
    After the owned rows of the tables (full-height tensors of ``side``)
    were updated, make every process's copy complete.
``gather(side, local)``
    The full table of ``side`` from each process's rows ``local``.
``sum(*values)``
    Sums of numbers over the processes, the same on every process.

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

    def gather(self, side: str, local: torch.Tensor) -> torch.Tensor:
        """``local`` is the full table."""
        return local

    def sum(self, *values):
        """The values themselves (a tuple, in the order given)."""
        return values


#: The one-process communicator (stateless, shared).
LOCAL = LocalComm()
