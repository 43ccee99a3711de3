"""The ``skmf`` command: ``demo``, ``fit``, ``evaluate`` and ``recommend``.

Errors are reported as one line on stderr (``skmf: error: ...``) with a non-zero
exit status, never as a traceback (``skmf --debug ...`` shows it).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["main"]

PROG = "skmf"

#: Compression suffixes pandas reads transparently.
_COMPRESSION = (".gz", ".bz2", ".xz", ".zst", ".zip")

#: Model parameters settable on the command line: dest -> (type, metavar).
_MODEL_OPTIONS = {
    "n_components": (int, "K"),
    "alpha": (float, "ALPHA"),
    "solver": (str, None),
    "max_iter": (int, "N"),
    "random_state": (int, "SEED"),
    "device": (str, "DEVICE"),
    "n_jobs": (int, "N"),
}

# Shape of the synthetic demo data at 100,000 ratings (that of MovieLens 100K).
_DEMO_USERS, _DEMO_ITEMS, _DEMO_RATINGS = 943, 1682, 100_000


class CLIError(Exception):
    """An error the command reports as one line, with an exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block)."""

    def error(self, message):
        raise CLIError(f"{message} (see '{self.prog} --help')", status=2)


# ------------------------------------------------------------------- parsers
def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "ratings",
        metavar="RATINGS",
        help="rating file: .csv, .tsv, .parquet, or .dat ('::' separated, "
        "MovieLens style, no header), optionally compressed (.gz, .bz2, .xz, "
        ".zip); any other name needs --sep",
    )
    group = parser.add_argument_group("columns")
    for what, position in (("user", 0), ("item", 1), ("rating", 2)):
        group.add_argument(
            f"--{what}-col",
            metavar=what[0].upper(),
            help=f"name of the {what} column, or its 0-based position (default: "
            f"'{what}' if the file has a header, else position {position})",
        )
    group.add_argument(
        "--sep",
        help="field separator of a text file (default: from the extension; "
        r"'\t' for tab)",
    )
    group.add_argument(
        "--no-header",
        action="store_true",
        help="the text file has no header row: give columns by position",
    )
    group.add_argument(
        "--string-ids",
        action="store_true",
        help="keep the user and item ids of a text file as text; by default a "
        "column of plain integers (no leading zero, sign or space) becomes "
        "integer ids and any other column stays text, so '001' and '1' are "
        "two ids",
    )


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    from skmf._estimator import MFRegressor
    from skmf._solvers import SOLVERS

    defaults = MFRegressor().get_params()
    group = parser.add_argument_group(
        "model", "MFRegressor parameters (default: the estimator's default)"
    )
    for dest, (kind, metavar) in _MODEL_OPTIONS.items():
        extra = {"choices": sorted(SOLVERS)} if dest == "solver" else {}
        group.add_argument(
            "--" + dest.replace("_", "-"),
            type=kind,
            metavar=metavar,
            help=f"default: {defaults[dest]!r}",
            **extra,
        )
    group.add_argument(
        "-v", "--verbose", action="store_true", help="show a progress bar per fit"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``skmf`` command."""
    from skmf import __version__

    parser = _Parser(
        prog=PROG,
        description="Biased matrix factorization for explicit ratings (skmf "
        f"{__version__}).",
    )
    parser.add_argument("--version", action="version", version=f"skmf {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback on errors"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="fit on MovieLens 100K (or synthetic data) and report test RMSE",
        description="Fit MFRegressor on the official split u1 of MovieLens 100K "
        "when a local copy is found (nothing is downloaded), else, unless "
        "--data-home is given, on synthetic ratings, and print the test RMSE "
        "of the model and of the global mean, the fit time and the device.",
    )
    demo.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps, auto")
    demo.add_argument(
        "--data-home",
        metavar="DIR",
        help="folder holding ml-100k/ or ml-100k.zip; an error if it does not "
        "(default: $SKMF_DATA, else ~/skmf_data, with synthetic data if the "
        "data is not there)",
    )
    demo.add_argument(
        "--synthetic",
        action="store_true",
        help="use synthetic ratings even if MovieLens 100K is available",
    )
    demo.add_argument(
        "--n-ratings",
        type=int,
        default=_DEMO_RATINGS,
        metavar="N",
        help=f"number of synthetic ratings (default: {_DEMO_RATINGS})",
    )

    fit = commands.add_parser(
        "fit",
        help="fit a model to a rating file and save it",
        description="Fit MFRegressor to the ratings of a file and save the "
        "fitted estimator to --output as an skmf model file (.npz data that "
        "cannot run code when loaded; suffix .skmf recommended).",
    )
    _add_data_arguments(fit)
    _add_model_arguments(fit)
    fit.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="MODEL",
        help="model file to write, e.g. model.skmf (checked before fitting)",
    )
    _add_sharded_arguments(fit)

    evaluate = commands.add_parser(
        "evaluate",
        help="k-fold cross-validated RMSE and MAE on a rating file",
        description="Cross-validate MFRegressor on the ratings of a file: "
        "KFold(n_splits=K, shuffle=True, random_state=0) over the ratings; "
        "prints the RMSE and MAE of every fold and their mean and standard "
        "deviation.",
    )
    _add_data_arguments(evaluate)
    _add_model_arguments(evaluate)
    evaluate.add_argument(
        "--cv", type=int, default=5, metavar="K", help="number of folds (default: 5)"
    )

    recommend = commands.add_parser(
        "recommend",
        help="top-n items for a user from a saved model",
        description="Print the n best items for a user from a model saved by "
        "'skmf fit'. Model files hold data only: loading one runs no code; "
        "pickle and joblib files are refused.",
    )
    recommend.add_argument("model", metavar="MODEL", help="model file of 'skmf fit'")
    recommend.add_argument("--user", required=True, metavar="U", help="user id")
    recommend.add_argument(
        "-n", type=int, default=10, metavar="N", help="number of items (default: 10)"
    )
    return parser


# --------------------------------------------------------------------- input
def _format_kind(path: Path) -> tuple[str, str | None]:
    """The file format from the name, and the compression suffix if any."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = None
    if suffixes and suffixes[-1] in _COMPRESSION:
        compression = suffixes.pop()
    return (suffixes[-1] if suffixes else ""), compression


def _read_double_colon(path: Path, nrows=None, text_columns=None) -> pd.DataFrame:
    """Read a '::' separated file without header (MovieLens .dat).

    ``text_columns``: the positions of the fields read as text (None: all).
    """
    kept = None if text_columns is None else list(text_columns)
    try:  # fast: split on ":" and keep the even fields
        dtype = str if kept is None else {2 * j: str for j in kept}
        frame = pd.read_csv(
            path, sep=":", header=None, encoding="latin-1", nrows=nrows, dtype=dtype
        )
        n = frame.shape[1]
        if n % 2 == 1 and all(frame[j].isna().all() for j in range(1, n, 2)):
            frame = frame.iloc[:, ::2]
            frame.columns = range(frame.shape[1])
            return frame
    except pd.errors.ParserError:
        pass
    return pd.read_csv(
        path,
        sep="::",
        header=None,
        engine="python",
        encoding="latin-1",
        nrows=nrows,
        dtype=str if kept is None else dict.fromkeys(kept, str),
    )


def _parse_sep(sep: str) -> str:
    """The field separator given with --sep, its backslash escapes decoded.

    ``--sep '\\t'`` typed on the shell is a backslash and a ``t``: escapes are
    decoded as in a Python string, other characters (``'§'``, a real tab) are
    kept as they are.
    """
    try:
        # backslashreplace keeps non-Latin-1 characters through the round trip;
        # latin-1 keeps the others (unicode_escape decodes bytes as latin-1).
        value = sep.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as exc:
        raise CLIError(
            f"--sep '{sep}' is not a valid separator ({exc.reason}); give one "
            r"character such as ';' or '\t', with '\\' for a backslash",
            status=2,
        ) from None
    if not value:
        raise CLIError(
            r"--sep must not be empty; give one character such as ';' or '\t'",
            status=2,
        )
    return value


class _Table:
    """How to read a rating file: its format, separator and header."""

    def __init__(self, path_arg: str, sep: str | None, no_header: bool):
        if sep is not None:
            sep = _parse_sep(sep)
        path = Path(path_arg)
        if not path.exists():
            raise CLIError(f"rating file not found: {path}")
        if path.is_dir():
            raise CLIError(f"{path} is a folder, not a rating file")
        kind, _ = _format_kind(path)
        self.path, self.no_header, self.parquet = path, no_header, False
        self._parquet = None  # the frame of a parquet file, read once
        if kind == ".parquet" and sep is None:
            self.parquet = True
        elif sep is None:
            if kind == ".dat":
                sep = "::"
            elif kind == ".csv":
                sep = ","
            elif kind in (".tsv", ".tab"):
                sep = "\t"
            else:
                raise CLIError(
                    f"cannot tell the format of {path} from its name: use a .csv, "
                    ".tsv, .parquet or .dat file, or give the field separator with "
                    r"--sep (e.g. --sep '\t' --no-header for MovieLens u.data)"
                )
        self.sep = sep
        # '::' files (MovieLens .dat) have no header.
        self.named = self.parquet or not (no_header or sep == "::")

    def read(self, nrows=None, columns=None, text_columns=None) -> pd.DataFrame:
        """Read the file: ``nrows`` rows (None: all) of the fields at positions
        ``columns`` (None: all), those at ``text_columns`` as text (None: all).
        """
        path, sep = self.path, self.sep
        try:
            if self.parquet:
                if self._parquet is None:
                    try:
                        self._parquet = pd.read_parquet(path)
                    except ImportError as exc:
                        raise CLIError(
                            f"reading {path} needs pyarrow or fastparquet: pip "
                            f"install pyarrow ({exc})"
                        ) from None
                frame = self._parquet
                if columns is not None:
                    frame = frame.iloc[:, sorted(columns)]
                return frame if nrows is None else frame.iloc[:nrows]
            if sep == "::":
                frame = _read_double_colon(path, nrows, text_columns)
                return frame if columns is None else frame.iloc[:, sorted(columns)]
            header = "infer" if self.named else None
            dtype = str
            if text_columns is not None:
                dtype = {self.labels[j]: str for j in text_columns}
            # The C engine takes one-byte separators only: choose the Python
            # engine here rather than have pandas warn that it falls back to it.
            engine = "c" if len(sep.encode()) == 1 else "python"
            return pd.read_csv(
                path,
                sep=sep,
                header=header,
                engine=engine,
                nrows=nrows,
                usecols=None if columns is None else sorted(columns),
                dtype=dtype,
                skipinitialspace=sep != " ",
            )
        except CLIError:
            raise
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            # pandas' ParserError and EmptyDataError are ValueErrors.
            raise CLIError(f"cannot read {path}: {_one_line(exc)}") from None
        except re.error as exc:  # a separator of several characters is a regex
            raise CLIError(
                f"--sep {sep!r} is not a valid regular expression (separators of "
                f"several characters are): {_one_line(exc)}",
                status=2,
            ) from None

    def peek(self) -> pd.DataFrame:
        """The first rows, every field as text; refuses a single column."""
        frame = self.read(nrows=_PEEK_ROWS)
        self.labels = list(frame.columns)
        if frame.shape[1] == 1:
            raise CLIError(
                f"{self.path} has a single column when split on {self.sep!r}; if "
                "its fields are separated otherwise, give the separator with --sep "
                r"(e.g. --sep ';' or --sep '\t')"
            )
        return frame


#: Rows read first to find the columns and check the header.
_PEEK_ROWS = 50


def _is_number(text) -> bool:
    try:
        float(str(text).strip())
    except ValueError:
        return False
    return True


def _resolve_column(table, peek, spec, default, position, option) -> int:
    """The position of the column meant by ``spec`` (a name or a 0-based position).

    Names are matched with surrounding whitespace removed.
    """
    named, path = table.named, table.path
    labels = [str(c).strip() for c in peek.columns]
    if spec is None:
        if named and default in labels:
            return labels.index(default)
        if not named and position < len(labels):
            return position
        spec = default if named else str(position)
    spec = spec.strip()
    if named and spec in labels:
        return labels.index(spec)
    if spec.lstrip("-").isdigit() and -len(labels) <= int(spec) < len(labels):
        return int(spec) % len(labels)
    shown = ", ".join(labels[:30])
    if len(labels) > 30:
        shown += f", ... ({len(labels)} columns)"
    first = [str(v).strip() for v in peek.iloc[0]] if len(peek) else []
    if not named and table.no_header and spec in first:
        raise CLIError(
            f"column {spec!r} not found in {path}: --no-header was given, but the "
            f"first line ({', '.join(first[:30])}) looks like a header; drop "
            f"--no-header to give {option} by name"
        )
    if named and not table.parquet and any(_is_number(label) for label in labels):
        raise CLIError(
            f"column {spec!r} not found in {path}, whose first line ({shown}) "
            "looks like data, not a header: if the file has no header, add "
            f"--no-header (then {option} is a 0-based position)"
        )
    hint = (
        f"; give the column with {option}"
        if named
        else f"; the file has no header, so give {option} as a 0-based position"
    )
    raise CLIError(
        f"column {spec!r} not found in {path}; available columns: {shown}{hint}"
    )


_POWERS_OF_10 = 10 ** np.arange(1, 19, dtype=np.int64)


def _plain_ints(text: np.ndarray) -> np.ndarray | None:
    """The ids as int64 if each is an integer written plainly, else None.

    Plainly: as ``str(int(id))`` writes it (ASCII digits, a '-' sign at most,
    no '+', leading zero, underscore or space), so no two ids merge.
    """
    try:
        ints = text.astype(np.int64)  # int(): also takes '+1', '01', '1_0'
    except (ValueError, OverflowError, TypeError):
        return None
    lengths = np.fromiter(map(len, text), dtype=np.int64, count=len(text))
    digits = 1 + np.searchsorted(_POWERS_OF_10, np.abs(ints), side="right")
    if np.array_equal(lengths, digits + (ints < 0)) and "".join(text).isascii():
        return ints
    return None


def _ids(column: pd.Series, keep_text: bool) -> pd.Series:
    """The ids of a text column: text without surrounding spaces, or int64.

    The column becomes int64 only when every id is an integer written plainly
    (see :func:`_plain_ints`), so that each id prints as it is in the file:
    ``001`` and ``1`` stay two ids, ``0195153448`` keeps its zero.
    """
    stripped = column.str.strip()
    text = stripped.to_numpy(dtype=object)
    ints = None
    if not keep_text and not stripped.isna().any():
        ints = _plain_ints(text)
    if ints is None:
        return pd.Series(text, index=column.index, dtype=object)
    return pd.Series(ints, index=column.index)


#: Column names of times or ids, as tokens of the name (``movieId``, ``ts``).
_NOT_RATING_NAMES = {"time", "timestamp", "stamp", "date", "datetime", "ts", "id"}


def _check_rating_values(ratings: pd.Series, label, shown: str, path) -> None:
    """Warn (one line) when the rating column looks like times or ids.

    ``label`` is the column's name (None without header), ``shown`` how the
    message names the column.
    """
    values = ratings.to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    reason = None
    tokens = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", str(label))
    if isinstance(label, str) and {t.lower() for t in tokens} & _NOT_RATING_NAMES:
        reason = "its name"
    elif len(values) and np.abs(values).max() > 1e8:
        reason = f"values such as {values[np.abs(values).argmax()]:.0f}"
    elif (
        len(values) > 1
        and np.abs(values).max() > 1000
        and np.all(values == np.round(values))
        and len(np.unique(values)) == len(values)
    ):
        reason = (
            f"integer values up to {np.abs(values).max():.0f}, a different one "
            "on every row"
        )
    if reason is not None:
        print(
            f"{PROG}: warning: the rating column {shown} of {path} looks "
            f"like times or ids ({reason}), not ratings; if so, choose the rating "
            "column with --rating-col",
            file=sys.stderr,
        )


def _load_ratings(args) -> pd.DataFrame:
    """The user, item and rating columns of the rating file of ``args``.

    User and item ids of text files are read as text (see :func:`_ids`).
    """
    table = _Table(args.ratings, args.sep, args.no_header)
    peek = table.peek()
    cols = [
        _resolve_column(table, peek, spec, default, pos, option)
        for spec, default, pos, option in (
            (args.user_col, "user", 0, "--user-col"),
            (args.item_col, "item", 1, "--item-col"),
            (args.rating_col, "rating", 2, "--rating-col"),
        )
    ]
    labels = [str(peek.columns[j]).strip() for j in cols]
    path = args.ratings
    if len(set(cols)) < 3:
        raise CLIError(
            f"the user, item and rating columns must differ; got {labels} for {path}"
        )
    if table.named and not table.parquet and all(map(_is_number, labels)):
        print(
            f"{PROG}: warning: the first line of {path} ({', '.join(labels)}) was "
            "read as the header but looks like data; if the file has no header, "
            "add --no-header",
            file=sys.stderr,
        )
    frame = table.read(columns=cols, text_columns=cols[:2])
    frame.columns = sorted(cols)  # read in file order
    ratings = frame[cols].copy()
    ratings.columns = ["user", "item", "rating"]
    if len(ratings) == 0:
        raise CLIError(f"{args.ratings} holds no ratings")
    if not table.parquet:
        for what in ("user", "item"):
            ratings[what] = _ids(ratings[what], args.string_ids)
    rating_name = repr(labels[2]) if table.named else f"at position {cols[2]}"
    if not pd.api.types.is_numeric_dtype(ratings["rating"]):
        values = pd.to_numeric(ratings["rating"], errors="coerce")
        # Quote a value that is there but not a number, not a missing one.
        bad_mask = values.isna() & ratings["rating"].notna()
        bad = ratings["rating"][bad_mask]
        if len(bad) and not table.named and bad.index[0] == 0 and len(bad) == 1:
            first = ", ".join(str(v).strip() for v in peek.iloc[0].tolist()[:30])
            raise CLIError(
                f"the first line of {args.ratings} ({first}) looks like a header, "
                "not ratings"
                + (
                    ": drop --no-header to read it as one"
                    if table.no_header
                    else "; remove it"
                )
            )
        if len(bad):
            raise CLIError(
                f"the rating column {rating_name} of {args.ratings} holds values "
                f"that are not numbers, e.g. {bad.iloc[0]!r}; choose another "
                "column with --rating-col"
            )
        ratings["rating"] = values
    if pd.api.types.is_numeric_dtype(ratings["rating"]):
        _check_rating_values(
            ratings["rating"], labels[2] if table.named else None, rating_name, path
        )
    return ratings


def _make_model(args, **params):
    from skmf._estimator import MFRegressor

    for dest in _MODEL_OPTIONS:
        value = getattr(args, dest, None)
        if value is not None:
            params[dest] = value
    if getattr(args, "verbose", False):
        params["verbose"] = 1
    model = MFRegressor(**params)
    _validate_params(model)
    return model


def _validate_params(model) -> None:
    """Refuse invalid parameter values as usage errors, before any work."""
    from sklearn.utils._param_validation import InvalidParameterError

    try:
        model._validate_params()
    except InvalidParameterError as exc:
        raise CLIError(str(exc), status=2) from None


def _device_name(device) -> str:
    from skmf._device import resolve_device

    return str(resolve_device(device))


def _rmse(y, pred) -> float:
    return float(np.sqrt(np.mean((np.asarray(y) - pred) ** 2)))


# ------------------------------------------------------------------ commands
def _demo(args, out) -> int:
    from skmf.datasets import get_data_home, load_movielens_split, make_ratings

    device = _device_name(args.device)
    source = None
    if not args.synthetic:
        home = get_data_home(args.data_home)
        if args.data_home is not None and not Path(home).is_dir():
            raise CLIError(
                f"--data-home {args.data_home}: folder not found; give the folder "
                "that holds ml-100k/ or ml-100k.zip, or leave out --data-home (or "
                "use --synthetic) to run on synthetic data",
                status=2,
            )
        try:
            train, test = load_movielens_split(
                "u1", data_home=args.data_home, download_if_missing=False
            )
            source = (
                f"MovieLens 100K, official split u1 (from {home}): "
                f"{len(train):,} training and {len(test):,} test ratings"
            )
        except FileNotFoundError:
            if args.data_home is not None:
                raise CLIError(
                    f"MovieLens 100K (with its split u1) not found in --data-home "
                    f"{home}: put ml-100k.zip or ml-100k/ there, or leave out "
                    "--data-home (or use --synthetic) to run on synthetic data"
                ) from None
            print(
                f"MovieLens 100K not found in {home} (put ml-100k.zip or ml-100k/ "
                "there, or use --data-home or SKMF_DATA); using synthetic data.",
                file=out,
            )
    if source is None:
        n = args.n_ratings
        if n < 10:
            raise CLIError(f"--n-ratings must be at least 10; got {n}", status=2)
        scale = math.sqrt(n / _DEMO_RATINGS)  # same density as MovieLens 100K
        n_users = max(10, round(_DEMO_USERS * scale))
        n_items = max(10, round(_DEMO_ITEMS * scale))
        data = make_ratings(
            n_users=n_users, n_items=n_items, n_ratings=n, random_state=0
        ).frame
        draws = np.random.RandomState(0).rand(n)
        test_mask = draws < 0.2
        # At least one test and one training rating, even for a small n (the
        # split is unchanged when both sides already have some).
        test_mask[np.argmin(draws)] = True
        test_mask[np.argmax(draws)] = False
        train, test = data[~test_mask], data[test_mask]
        source = (
            f"synthetic ratings from make_ratings ({n_users:,} users, "
            f"{n_items:,} items): {len(train):,} training and {len(test):,} "
            "test ratings"
        )
    print(f"Data: {source}", file=out)
    print(f"Fitting MFRegressor(verbose=1) on {device}...", file=out, flush=True)
    model = _make_model(args, verbose=1, random_state=0)
    columns = ["user", "item", "rating"]
    start = time.perf_counter()
    model.fit(train[columns])
    elapsed = time.perf_counter() - start
    rmse = _rmse(test["rating"], model.predict(test[["user", "item"]]))
    baseline = _rmse(test["rating"], np.full(len(test), train["rating"].mean()))
    print(f"Test RMSE: {rmse:.4f} (global-mean baseline: {baseline:.4f})", file=out)
    print(f"Fit time: {elapsed:.2f} s on {device}", file=out)
    return 0


def _check_output(output: Path) -> None:
    """Refuse a model path that cannot be written, before any work."""
    if output.is_dir():
        raise CLIError(
            f"-o/--output {output} is a folder; give the name of the model file "
            f"to write (e.g. {output / 'model.skmf'})",
            status=2,
        )
    folder = output.parent
    if not folder.exists():
        raise CLIError(f"cannot write {output}: folder {folder} not found")
    if not folder.is_dir():
        raise CLIError(f"cannot write {output}: {folder} is not a folder")
    if output.exists() and not output.is_file():
        raise CLIError(f"cannot write {output}: it exists and is not a file")
    try:  # the model is written the same way: a new file in the folder
        fd, probe = tempfile.mkstemp(prefix=f".{output.name}.", dir=folder)
    except OSError as exc:
        raise CLIError(
            f"cannot write {output}: no permission to create files in the folder "
            f"{folder} ({exc.strerror or _one_line(exc)}); choose another "
            "-o/--output"
        ) from None
    os.close(fd)
    os.unlink(probe)


def _add_sharded_arguments(parser: argparse.ArgumentParser) -> None:
    from skmf.distributed._cli import add_fit_arguments

    add_fit_arguments(parser)


def _fit(args, out) -> int:
    from skmf._persist import save_model
    from skmf.distributed._cli import is_sharded, run_fit

    if is_sharded(args):  # several files, --nproc, or under torchrun
        return run_fit(args, out)
    output = Path(args.output)
    _check_output(output)
    model = _make_model(args)
    ratings = _load_ratings(args)
    device = _device_name(model.device)
    start = time.perf_counter()
    model.fit(ratings)
    elapsed = time.perf_counter() - start
    rmse = _rmse(ratings["rating"], model.predict(ratings[["user", "item"]]))
    try:
        save_model(model, output)
    except OSError as exc:
        raise CLIError(f"cannot write {output}: {_one_line(exc)}") from None
    print(
        f"Fitted MFRegressor on {len(ratings):,} ratings ({len(model.users_):,} "
        f"users, {len(model.items_):,} items) in {elapsed:.2f} s on {device}; "
        f"training RMSE {rmse:.4f}",
        file=out,
    )
    print(f"Saved the model to {output}", file=out)
    return 0


def _evaluate(args, out) -> int:
    from sklearn.model_selection import KFold

    if args.cv < 2:
        raise CLIError(f"--cv must be at least 2; got {args.cv}", status=2)
    model = _make_model(args)
    ratings = _load_ratings(args)
    if args.cv > len(ratings):
        raise CLIError(
            f"--cv={args.cv} is more folds than the {len(ratings)} ratings", status=2
        )
    device = _device_name(model.device)
    print(
        f"{args.cv}-fold cross-validation of MFRegressor on {len(ratings):,} "
        f"ratings ({device})",
        file=out,
    )
    header = f"{'fold':>4} {'train':>10} {'test':>9} {'RMSE':>8} {'MAE':>8}"
    print(f"{header} {'fit (s)':>8}", file=out)
    rmses, maes = [], []
    folds = KFold(n_splits=args.cv, shuffle=True, random_state=0)
    for k, (train, test) in enumerate(folds.split(ratings), start=1):
        model = _make_model(args)
        start = time.perf_counter()
        model.fit(ratings.iloc[train])
        elapsed = time.perf_counter() - start
        truth = ratings["rating"].to_numpy()[test]
        pred = model.predict(ratings.iloc[test, :2])
        rmses.append(_rmse(truth, pred))
        maes.append(float(np.mean(np.abs(truth - pred))))
        row = f"{k:>4} {len(train):>10,} {len(test):>9,} {rmses[-1]:>8.4f}"
        print(f"{row} {maes[-1]:>8.4f} {elapsed:>8.2f}", file=out)
    print(
        f"mean ± std: RMSE {np.mean(rmses):.4f} ± {np.std(rmses):.4f}, "
        f"MAE {np.mean(maes):.4f} ± {np.std(maes):.4f}",
        file=out,
    )
    return 0


def _parse_user(text: str, known: np.ndarray):
    """The user id typed on the command line, as the model's ids hold it.

    Returns the id and whether the model knows it. Integer and float ids parse
    the text as a number. Other ids (object or string arrays, e.g. from an
    object column) take the text itself when the model knows it, else its
    int or float value when that equals an id of the model (``"1"`` is the
    id ``1``); else the text.
    """
    from skmf._data import encode_ids

    def index_of(value) -> int:
        return int(encode_ids(np.array([value], dtype=object), known)[0])

    if known.dtype.kind in "iu":
        try:
            user = int(text)
        except ValueError:
            raise CLIError(
                f"--user must be an integer id for this model; got {text!r}",
                status=2,
            ) from None
        return user, index_of(user) >= 0
    if known.dtype.kind == "f":
        try:
            user = float(text)
        except ValueError:
            raise CLIError(
                f"--user must be a number for this model; got {text!r}", status=2
            ) from None
        return user, index_of(user) >= 0
    for parse in (str, int, float):
        try:
            value = parse(text)
        except ValueError:
            continue
        k = index_of(value)
        if k >= 0:
            return known[k], True
    return text, False


def _recommend(args, out) -> int:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    from skmf._persist import load_model

    path = Path(args.model)
    if not path.is_file():
        raise CLIError(f"model file not found: {path}")
    if args.n < 1:
        raise CLIError(f"-n must be at least 1; got {args.n}", status=2)
    try:
        model = load_model(path)  # data only: never unpickles
    except ValueError as exc:
        hint = ""
        if "not an skmf model file" in str(exc):
            hint = "; 'skmf fit RATINGS -o MODEL.skmf' writes one"
        raise CLIError(f"{_one_line(exc)}{hint}") from None
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise CLIError(f"{path} holds an MFRegressor that is not fitted") from None
    user, is_known = _parse_user(args.user, model.users_)
    if not is_known:
        print(
            f"{PROG}: note: user {args.user!r} is not in the model; showing the "
            "items of highest mu + b_i",
            file=sys.stderr,
        )
    items, scores = model.recommend(user, n=args.n)
    print(f"Top {len(items)} items for user {user}:", file=out)
    print(f"{'rank':>4}  {'item':<12} {'score':>8}", file=out)
    for rank, (item, score) in enumerate(zip(items, scores), start=1):
        print(f"{rank:>4}  {item!s:<12} {float(score):>8.4f}", file=out)
    return 0


_COMMANDS = {
    "demo": _demo,
    "fit": _fit,
    "evaluate": _evaluate,
    "recommend": _recommend,
}


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Print a warning as one line (e.g. ConvergenceWarning at max_iter)."""
    print(f"{PROG}: warning: {_one_line(message)}", file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def main(argv=None):
    """Run the ``skmf`` command.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments after the program name. None uses ``sys.argv[1:]``.

    Returns
    -------
    status : int
        The exit status: 0 on success, 1 on errors of the data or the model,
        2 on usage errors.

    Examples
    --------
    >>> from skmf._cli import main
    >>> main(["demo", "--synthetic", "--n-ratings", "2000"])
    Data: synthetic ratings from make_ratings (133 users, 238 items): ...
    Fitting MFRegressor(verbose=1) on cpu...
    Test RMSE: ... (global-mean baseline: ...)
    Fit time: ... s on cpu
    0
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else 0
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return _COMMANDS[args.command](args, sys.stdout)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except CLIError as exc:
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return exc.status
    except Exception as exc:
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
