"""Ratings in Parquet or CSV files, split between the processes by file.

A sharded fit of data larger than one machine's memory reads it from files:
each process reads only the files given to it (contiguous runs of the sorted
list, balanced by size), Parquet with pyarrow (the ``parquet`` extra,
imported only when a Parquet file is read) and CSV with pandas.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["PARQUET", "CSV", "as_files", "read_files", "split_files"]

#: File name endings read as Parquet and as CSV.
PARQUET = (".parquet", ".pq")
CSV = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(PARQUET):
        return "parquet"
    if name.endswith(CSV):
        return "csv"
    return None


def as_files(X) -> list[Path] | None:
    """The rating files ``X`` names (a path, a folder or a list of paths).

    None when ``X`` is not a path or a list of paths (in-memory ratings).
    A folder stands for its Parquet and CSV files (not its subfolders').
    """
    if isinstance(X, str | os.PathLike):
        items = [X]
    elif (
        isinstance(X, list | tuple)
        and X
        and all(isinstance(x, str | os.PathLike) for x in X)
    ):
        items = list(X)
    else:
        return None
    if isinstance(X, str) and not os.path.exists(X):
        raise FileNotFoundError(f"No such file or folder of ratings: {X!r}.")
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and _kind(p))
            if not found:
                raise ValueError(
                    f"The folder {str(path)!r} holds no Parquet (.parquet, .pq) "
                    "or CSV (.csv, .csv.gz...) file of ratings."
                )
            files.extend(found)
        elif path.is_file():
            if _kind(path) is None:
                raise ValueError(
                    f"{str(path)!r} is neither a Parquet (.parquet, .pq) nor a CSV "
                    "(.csv, .csv.gz...) file; rename it or convert it."
                )
            files.append(path)
        else:
            raise FileNotFoundError(
                f"No such file or folder of ratings: {str(path)!r}."
            )
    return files


def split_files(files: list[Path], size: int) -> list[list[Path]]:
    """Contiguous runs of ``files`` for ``size`` processes, balanced by bytes.

    A process may get no file (more processes than files).
    """
    sizes = np.array([max(os.path.getsize(f), 1) for f in files], dtype=np.float64)
    cum = np.cumsum(sizes)
    total = cum[-1] if len(cum) else 0.0
    # File j goes to the process whose share of the bytes its middle falls in.
    middle = cum - sizes / 2
    owner = np.minimum((middle / max(total, 1.0) * size).astype(np.int64), size - 1)
    return [[f for f, o in zip(files, owner) if o == r] for r in range(size)]


def read_files(files: list[Path], columns) -> pd.DataFrame | None:
    """The ratings of ``files`` as one DataFrame (None for no files).

    Only ``columns`` are read when a file has them all (Parquet: only those
    columns are decoded); otherwise every column is read and the DataFrame
    columns are taken by position, as :meth:`skmf.MFRegressor.fit` does.
    """
    frames = []
    for path in files:
        if _kind(path) == "parquet":
            try:
                import pyarrow.parquet as pq
            except ImportError as exc:
                raise ImportError(
                    f"Reading the Parquet file {str(path)!r} needs pyarrow: "
                    "pip install 'skmf[parquet]' (or pip install pyarrow)."
                ) from exc
            names = pq.read_schema(path).names
            use = list(columns) if all(c in names for c in columns) else None
            frames.append(pq.read_table(path, columns=use).to_pandas())
        else:
            head = pd.read_csv(path, nrows=0)
            use = list(columns) if all(c in head.columns for c in columns) else None
            frames.append(pd.read_csv(path, usecols=use))
    if not frames:
        return None
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
