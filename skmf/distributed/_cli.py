"""``skmf fit`` across processes: under torchrun, or ``--nproc N`` local ones.

``torchrun --nproc-per-node=N -m skmf fit FILES... -o MODEL`` runs the fit in
each process torchrun starts (``WORLD_SIZE`` > 1): each reads its share of
the files with the command's own reader (the same columns, separators and id
rules as ``skmf fit``), they fit with :func:`~skmf.distributed.fit_shard`,
and process 0 saves the model. ``skmf fit FILES... --nproc N`` starts the N
processes itself (torch's elastic launcher) and runs the same.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["add_fit_arguments", "is_sharded", "run_fit"]


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``skmf fit`` for a sharded fit."""
    parser.add_argument(
        "more_ratings",
        nargs="*",
        metavar="RATINGS",
        help="more rating files (or folders of them): a sharded fit, each "
        "process reading its share of the files",
    )
    group = parser.add_argument_group(
        "sharded fit",
        "Under torchrun (WORLD_SIZE > 1) each process reads its share of the "
        "files and process 0 saves the model; see the 'Beyond one machine' "
        "page of the documentation",
    )
    group.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="start N local processes and fit sharded (solver als or gibbs)",
    )
    group.add_argument(
        "--checkpoint-dir",
        metavar="DIR",
        help="folder for checkpoints of a sharded fit; a restarted fit "
        "(torchrun --max-restarts) resumes from it",
    )
    group.add_argument(
        "--checkpoint-every",
        type=int,
        default=10,
        metavar="T",
        help="sweeps between checkpoints (default: 10)",
    )


def is_sharded(args) -> bool:
    """Whether ``skmf fit`` runs sharded (several files, --nproc, torchrun)."""
    return (
        bool(getattr(args, "more_ratings", None))
        or getattr(args, "nproc", None) is not None
        or int(os.environ.get("WORLD_SIZE", "1")) > 1
    )


def _files(args) -> list[Path]:
    from skmf._cli import CLIError
    from skmf.distributed._files import CSV, PARQUET

    files = []
    for name in [args.ratings, *args.more_ratings]:
        path = Path(name)
        if path.is_dir():
            found = sorted(
                p
                for p in path.iterdir()
                if p.is_file() and p.name.lower().endswith((*PARQUET, *CSV, ".tsv"))
            )
            if not found:
                raise CLIError(f"the folder {path} holds no rating file")
            files.extend(found)
        else:
            files.append(path)
    return files


def _load(args, files):
    """This process's files, read as ``skmf fit`` reads one (None: no file)."""
    import pandas as pd

    from skmf._cli import _load_ratings

    frames = [_load_ratings(argparse.Namespace(**{**vars(args), "ratings": str(f)}))
              for f in files]  # fmt: skip
    if not frames:
        return None
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _report(model, n_ratings, elapsed, output, out) -> None:
    print(
        f"Fitted MFRegressor on {n_ratings:,} ratings ({len(model.users_):,} "
        f"users, {len(model.items_):,} items) in {elapsed:.2f} s, sharded; "
        f"final objective {model.loss_curve_[-1]:.4f}",
        file=out,
    )
    print(f"Saved the model to {output}", file=out)


def _run_rank(args, out) -> int:
    """One process of a sharded ``skmf fit`` (inside torchrun or a launch)."""
    import torch.distributed as dist

    from skmf._cli import CLIError, _check_output, _make_model, _one_line
    from skmf._persist import save_model
    from skmf.distributed._files import split_files
    from skmf.distributed._launch import init_process_group
    from skmf.distributed._shard import fit_shard

    model = _make_model(args)
    backend = "nccl" if str(model.device).startswith("cuda") else "gloo"
    init_process_group(backend, timeout=600.0)
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        error, frame = None, None
        try:
            output = Path(args.output)
            if rank == 0:
                _check_output(output)
            frame = _load(args, split_files(_files(args), world)[rank])
        except CLIError as exc:
            error = (exc.status, _one_line(exc))
        # Every process stops on an error of one (none waits for it).
        errors = [None] * world
        dist.all_gather_object(errors, error)
        found = next((e for e in errors if e is not None), None)
        if found is not None:
            raise CLIError(found[1], status=found[0])
        counts = [None] * world
        dist.all_gather_object(counts, 0 if frame is None else len(frame))
        start = time.perf_counter()
        fitted = fit_shard(
            model, frame, gather="rank0", checkpoint_dir=args.checkpoint_dir,
            checkpoint_every=args.checkpoint_every,
        )  # fmt: skip
        elapsed = time.perf_counter() - start
        if rank == 0:
            try:
                save_model(fitted, output)
            except OSError as exc:
                raise CLIError(f"cannot write {output}: {_one_line(exc)}") from None
            _report(fitted, sum(counts), elapsed, output, out)
        return 0
    finally:
        dist.destroy_process_group()


def _worker(args) -> int:
    """A process started by ``skmf fit --nproc``: the command's error report."""
    from skmf._cli import PROG, CLIError, _one_line
    from skmf.distributed._launch import _set_threads

    _set_threads(argparse.Namespace(n_jobs=getattr(args, "n_jobs", None)))
    try:
        return _run_rank(args, sys.stdout)
    except CLIError as exc:
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return exc.status
    except Exception as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def run_fit(args, out) -> int:
    """``skmf fit`` with several files, ``--nproc`` or under torchrun."""
    import uuid

    from skmf._cli import CLIError, _check_output, _make_model

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under torchrun
        return _run_rank(args, out)
    nproc = 1 if args.nproc is None else args.nproc
    if nproc < 1:
        raise CLIError(f"--nproc must be at least 1; got {nproc}", status=2)
    if args.checkpoint_every < 1:
        raise CLIError(
            f"--checkpoint-every must be at least 1; got {args.checkpoint_every}",
            status=2,
        )
    from skmf.distributed._shard import check_estimator

    try:  # errors of the parameters before starting anything
        check_estimator(_make_model(args), "skmf fit (sharded)")
    except ValueError as exc:
        raise CLIError(str(exc), status=2) from None
    _check_output(Path(args.output))
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from skmf.distributed._launch import _main_module_hidden

    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, rdzv_backend="c10d",
        rdzv_endpoint="localhost:0", run_id=f"skmf-{uuid.uuid4().hex}",
        max_restarts=0, monitor_interval=0.1, start_method="spawn",
    )  # fmt: skip
    worker_args = argparse.Namespace(**{**vars(args), "nproc": None})
    try:
        with _main_module_hidden():
            statuses = elastic_launch(config, _worker)(worker_args)
    except ChildFailedError as exc:
        raise CLIError(f"a process of the sharded fit failed: {exc}") from None
    return max(statuses.values(), default=0)
