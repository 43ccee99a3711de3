"""The row-parallel solvers' collectives over ``torch.distributed``.

:class:`TorchComm` implements the communicator of
:mod:`skmf._solvers._comm` for one process of an initialized process group:
each process owns a contiguous range of the user codes and one of the item
codes, keeps a copy of both factor tables, and after each half-sweep shares
the rows it updated (:meth:`TorchComm.share_rows`) in one of two ways, chosen
per side once per fit (:meth:`TorchComm.plan_rows`):

``"all_gather"``
    every process gets every row: each receives (P - 1) x the largest range.
``"needed"``
    every process gets only the rows its ratings read, from their owners, by
    one ``all_to_all_single`` whose routing (which rows go to whom) is worked
    out once per fit; the other rows of its copy are then stale, and the
    tables are made whole once at the end (:meth:`TorchComm.complete`).

Sums over the processes are computed in the same order on every process (an
all-gather of the partial sums, then a sum in rank order), so every process
takes the same decisions (stopping, Gibbs' draws) bit for bit.

It also counts the bytes each collective moves, for the benchmarks.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["ROW_EXCHANGES", "TorchComm", "agree", "balanced_bounds"]

#: The values of ``row_exchange``.
ROW_EXCHANGES = ("auto", "all_gather", "needed")

#: ``row_exchange="auto"`` sends only the needed rows of a side when no
#: process needs more than this share of the rows an all-gather brings it
#: (an all-to-all moves its bytes less evenly than the all-gather's ring, and
#: costs a gather and a scatter of the rows).
NEEDED_SHARE = 0.5


def agree(check, group=None) -> None:
    """Run ``check`` on every process; if it raises on one, raise on all.

    A ValueError or TypeError of ``check`` on any process is raised on every
    process (the same type; the others' message names the process), so that
    no process waits in a collective for one that has stopped.
    """
    error = None
    try:
        check()
    except (ValueError, TypeError) as exc:
        error = exc
    mine = None if error is None else (type(error) is TypeError, str(error))
    errors = [None] * dist.get_world_size(group)
    dist.all_gather_object(errors, mine, group=group)
    if error is not None:
        raise error
    for rank, found in enumerate(errors):
        if found is not None:
            kind = TypeError if found[0] else ValueError
            raise kind(f"Process {rank} of the sharded fit: {found[1]}")


def balanced_bounds(counts: np.ndarray, size: int) -> np.ndarray:
    """Boundaries of ``size`` contiguous ranges of rows with about equal ratings.

    ``counts`` is the number of ratings of each row; range ``r`` is
    ``bounds[r]:bounds[r + 1]``. Ranges may be empty (fewer rows than
    ranges). Every process computes the same bounds from the same counts.
    """
    n = len(counts)
    cum = np.cumsum(counts, dtype=np.int64)
    total = int(cum[-1]) if n else 0
    bounds = np.zeros(size + 1, dtype=np.int64)
    bounds[size] = n
    for r in range(1, size):
        # The first row whose cumulative count reaches r/size of the total
        # closes range r - 1.
        cut = int(np.searchsorted(cum, r * total / size, side="left")) + 1
        bounds[r] = min(max(cut, bounds[r - 1]), n)
    return bounds


class TorchComm:
    """Communicator over a ``torch.distributed`` process group.

    Parameters
    ----------
    user_bounds, item_bounds : ndarray of int64 of shape (size + 1,)
        Process ``r`` owns the users ``user_bounds[r]:user_bounds[r + 1]`` and
        likewise the items.
    device : torch.device
        Where the collectives' buffers live (the CPU for gloo, the process's
        GPU for NCCL).
    group : ProcessGroup or None
        The process group (None: the default one).
    """

    def __init__(self, user_bounds, item_bounds, device, group=None):
        self.group = group
        self.rank = dist.get_rank(group)
        self.size = dist.get_world_size(group)
        self.bounds = {
            "user": [int(b) for b in user_bounds],
            "item": [int(b) for b in item_bounds],
        }
        self.device = torch.device(device)
        #: Bytes received by this process, per kind of collective.
        self.bytes_received: dict[str, int] = defaultdict(int)
        #: How each side's rows are shared ("all_gather" or "needed").
        self.exchange_mode = {"user": "all_gather", "item": "all_gather"}
        # side -> (rows to send, their counts per process, rows received,
        # their counts per process), for the "needed" exchange.
        self._routes: dict[str, tuple] = {}

    # ------------------------------------------------------------ ranges
    def rows(self, side: str) -> slice:
        """The rows of ``side`` ("user" or "item") this process owns."""
        b = self.bounds[side]
        return slice(b[self.rank], b[self.rank + 1])

    def _counts(self, side: str) -> list[int]:
        b = self.bounds[side]
        return [b[r + 1] - b[r] for r in range(self.size)]

    # -------------------------------------------------------- collectives
    def _all_gather_padded(self, local: torch.Tensor, counts: list[int], kind: str):
        """Each process's ``local`` (counts[r] rows of the same columns)."""
        width = max(counts) if counts else 0
        shape = local.shape[1:]
        buf = local.new_zeros((width, *shape), device=self.device)
        buf[: local.shape[0]] = local.to(self.device)
        out = buf.new_empty((self.size * width, *shape))
        dist.all_gather_single(out, buf, group=self.group)
        item = buf.element_size() * buf[0].numel() if width else 0
        self.bytes_received[kind] += (self.size - 1) * width * item
        return [out[r * width : r * width + c] for r, c in enumerate(counts)]

    def gather(self, side: str, local: torch.Tensor) -> torch.Tensor:
        """The full table of ``side`` from each process's owned rows ``local``."""
        parts = self._all_gather_padded(local, self._counts(side), "gather")
        return torch.cat(parts).to(local.device)

    def plan_rows(self, side: str, needed: np.ndarray, policy: str = "auto") -> str:
        """Choose how to share the rows of ``side``; work out the routing.

        ``needed`` holds the codes of ``side`` this process's ratings read
        (any order, repeats allowed). Every process must call it. With
        ``policy="auto"``, the needed rows alone are exchanged when no
        process needs more than :data:`NEEDED_SHARE` of the rows an
        all-gather brings it. Returns the exchange chosen, the same on every
        process.
        """
        own = self.rows(side)
        codes = np.unique(np.asarray(needed, dtype=np.int64))
        codes = codes[(codes < own.start) | (codes >= own.stop)]
        gathered_rows = (self.size - 1) * max(self._counts(side), default=0)
        most = self.max(float(len(codes)))
        mode = policy
        if policy == "auto":
            few = 0 < gathered_rows and most <= NEEDED_SHARE * gathered_rows
            mode = "needed" if few else "all_gather"
        self.exchange_mode[side] = mode
        self._routes.pop(side, None)
        if mode == "needed" and self.size > 1:
            # codes is sorted and the ranges are contiguous: grouped by owner,
            # in rank order. Each owner learns which of its rows to send whom.
            owner = np.searchsorted(self.bounds[side], codes, side="right") - 1
            recv = np.bincount(owner, minlength=self.size)
            send, (asked,) = self._all_to_all(recv, codes, kind="plan")
            self._routes[side] = (
                torch.from_numpy(asked),
                send,
                torch.from_numpy(codes),
                recv.tolist(),
            )
        return mode

    def share_rows(self, side: str, *tables: torch.Tensor) -> None:
        """Give every process the rows of ``tables`` it reads, from their owners.

        All of them (``"all_gather"``), or only those of the plan
        (``"needed"``, see :meth:`plan_rows`).
        """
        if self.size == 1:
            return
        if side not in self._routes:
            self._gather_rows(side, tables, "share_rows")
            return
        send_rows, send, recv_rows, recv = self._routes[side]
        index = send_rows.to(tables[0].device)
        cols = [t.index_select(0, index).reshape(len(index), -1) for t in tables]
        local = torch.cat(cols, 1).to(self.device)
        got = local.new_empty((len(recv_rows), local.shape[1]))
        dist.all_to_all_single(got, local, recv, send, group=self.group)
        self.bytes_received["share_rows"] += got.numel() * got.element_size()
        self._scatter_columns(tables, got, recv_rows)

    def complete(self, side: str, *tables: torch.Tensor) -> None:
        """Fill every row of every process's ``tables`` from its owner."""
        if self.size > 1:
            self._gather_rows(side, tables, "complete")

    def _gather_rows(self, side: str, tables, kind: str) -> None:
        rows = self.rows(side)
        cols = [t[rows].reshape(t[rows].shape[0], -1) for t in tables]
        local = torch.cat(cols, 1)
        parts = self._all_gather_padded(local, self._counts(side), kind)
        self._scatter_columns(tables, torch.cat(parts), None)

    @staticmethod
    def _scatter_columns(tables, block, rows) -> None:
        """Copy the columns of ``block`` into ``tables`` (at ``rows``, or all)."""
        start = 0
        for t in tables:
            width = int(np.prod(t.shape[1:]))
            part = block[:, start : start + width].reshape(-1, *t.shape[1:])
            part = part.to(device=t.device, dtype=t.dtype)
            if rows is None:
                t.copy_(part)
            else:
                t[rows.to(t.device)] = part
            start += width

    def sum(self, *values):
        """Sums over the processes, in rank order: 0-d float64 tensors."""
        local = torch.tensor([float(v) for v in values], dtype=torch.float64)
        total = self.sum_tensor(local)
        return tuple(total[j] for j in range(len(values)))

    def sum_tensor(self, t: torch.Tensor) -> torch.Tensor:
        """Element-wise sum of ``t`` over the processes, in rank order."""
        local = t.detach().to(self.device).reshape(-1)
        out = local.new_empty(self.size * local.numel())
        dist.all_gather_single(out, local, group=self.group)
        out = out.view(self.size, *t.shape)
        item = local.element_size()
        self.bytes_received["sum"] += (self.size - 1) * local.numel() * item
        total = out[0].clone()
        for r in range(1, self.size):
            total += out[r]
        return total.to(t.device)

    def max(self, value: float) -> float:
        """The largest ``value`` over the processes."""
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.group)
        return float(t)

    def min(self, value: float) -> float:
        """The smallest ``value`` over the processes."""
        return -self.max(-value)

    def agree(self, check) -> None:
        """Run ``check`` on every process; if it raises on one, raise on all."""
        agree(check, self.group)

    def exchange(
        self, dest: np.ndarray, *columns: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        """Send each entry of ``columns`` to process ``dest`` (all-to-all).

        Returns the entries this process receives, from process 0's first, each
        process's in the order sent.
        """
        order = np.argsort(dest, kind="stable")
        send = np.bincount(dest, minlength=self.size)
        _, out = self._all_to_all(send, *(col[order] for col in columns))
        return tuple(out)

    def _all_to_all(self, send: np.ndarray, *columns: np.ndarray, kind="exchange"):
        """Entries grouped by destination, ``send[r]`` of them to process r.

        Returns how many each process sent this one, and the columns received
        (process 0's entries first).
        """
        recv = torch.empty(self.size, dtype=torch.int64, device=self.device)
        counts = torch.as_tensor(np.asarray(send, np.int64)).to(self.device)
        dist.all_to_all_single(recv, counts, group=self.group)
        recv = recv.cpu().tolist()
        out = []
        for col in columns:
            src = torch.as_tensor(np.ascontiguousarray(col)).to(self.device)
            got = src.new_empty((sum(recv), *src.shape[1:]))
            dist.all_to_all_single(got, src, recv, counts.tolist(), group=self.group)
            row = got.element_size() * (got[0].numel() if len(got) else 0)
            self.bytes_received[kind] += (sum(recv) - recv[self.rank]) * row
            out.append(got.cpu().numpy())
        return recv, out
