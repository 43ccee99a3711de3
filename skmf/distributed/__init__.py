"""Sharded training: fit one MFRegressor with several processes.

:func:`fit` starts local processes with torch's elastic launcher and returns
the fitted estimator; :func:`fit_shard` is the per-process entry point for
processes started by someone else (``torchrun``, a cluster scheduler) inside
an initialized ``torch.distributed`` process group. Both run the row-parallel
solvers ("als", "gibbs"): each process owns a range of the users and one of
the items, and the model is that of ``MFRegressor.fit`` on all the ratings,
up to round-off, whatever the number of processes. See the "Beyond one
machine" page of the documentation.
"""

from skmf.distributed._launch import fit
from skmf.distributed._shard import fit_shard

__all__ = ["fit", "fit_shard"]
