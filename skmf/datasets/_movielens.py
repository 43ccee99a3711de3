"""MovieLens rating data sets (GroupLens Research), read from a local copy.

The data is looked for in an extracted folder, then in the official zip archive,
and downloaded only when neither is there (and ``download_if_missing=True``).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import StrOptions, validate_params

__all__ = ["get_data_home", "load_movielens", "load_movielens_split"]

logger = logging.getLogger(__name__)

#: Where the official archives are downloaded from.
BASE_URL = "https://files.grouplens.org/datasets/movielens/"

#: Environment variable naming the data folder.
DATA_HOME_ENV = "SKMF_DATA"

#: The official splits of MovieLens 100K.
SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")

_TIMEOUT = 60  # seconds without data before a download gives up

_ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


@dataclass(frozen=True)
class _Variant:
    title: str  # for messages
    archive: str  # official zip archive
    folder: str  # the folder the archive extracts to
    ratings: tuple[str, ...]  # rating files, in order of preference
    items: str  # movie file
    items_encoding: tuple[str, ...]  # encodings to try, in order
    md5: str | None  # None: the archive changes, no fixed checksum


_VARIANTS = {
    "100k": _Variant(
        "MovieLens 100K", "ml-100k.zip", "ml-100k", ("u.data",), "u.item",
        ("latin-1",), "0e33842e24a9c977be4e0107933c0723",
    ),
    "1m": _Variant(
        "MovieLens 1M", "ml-1m.zip", "ml-1m",
        ("ratings.dat", "ratings_no_timestamp.dat.gz"), "movies.dat",
        ("latin-1",), "c4d9eecfca2ab87c1945afe126590906",
    ),
    "10m": _Variant(
        "MovieLens 10M", "ml-10m.zip", "ml-10M100K", ("ratings.dat",), "movies.dat",
        ("utf-8", "latin-1"), "ce571fd55effeba0271552578f2648bd",
    ),
    "20m": _Variant(
        "MovieLens 20M", "ml-20m.zip", "ml-20m", ("ratings.csv",), "movies.csv",
        ("utf-8", "latin-1"), "cd245b17a1ae2cc31bb14903e1204af3",
    ),
    "25m": _Variant(
        "MovieLens 25M", "ml-25m.zip", "ml-25m", ("ratings.csv",), "movies.csv",
        ("utf-8", "latin-1"), "6b51fb2759a8657d3bfcbfc42b592ada",
    ),
    "latest-small": _Variant(
        "MovieLens latest-small", "ml-latest-small.zip", "ml-latest-small",
        ("ratings.csv",), "movies.csv", ("utf-8", "latin-1"), None,
    ),
}  # fmt: skip

_COLUMNS = ["user", "item", "rating", "timestamp"]


# --------------------------------------------------------------------- data home
@validate_params(
    {"data_home": [str, os.PathLike, None]},
    prefer_skip_nested_validation=True,
)
def get_data_home(data_home=None):
    """Return the folder where skmf looks for (and downloads) data sets.

    In order: ``data_home`` if given, else the ``SKMF_DATA`` environment
    variable if set and not empty, else ``~/skmf_data``. A leading ``~`` is
    expanded.

    Unlike scikit-learn's ``get_data_home``, the folder is not created here:
    :func:`load_movielens` creates it only when it downloads an archive, so
    that reading local data never writes anything.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder to use. None picks ``SKMF_DATA`` or ``~/skmf_data``.

    Returns
    -------
    data_home : str
        The path of the data folder.

    See Also
    --------
    load_movielens : Load a MovieLens data set from this folder.

    Examples
    --------
    >>> from skmf.datasets import get_data_home
    >>> get_data_home("/tmp/skmf_data")
    '/tmp/skmf_data'
    """
    if data_home is None:
        data_home = os.environ.get(DATA_HOME_ENV) or os.path.join("~", "skmf_data")
    return os.path.expanduser(os.fspath(data_home))


# ----------------------------------------------------------------- data sources
class _Folder:
    """The files of an extracted archive."""

    def __init__(self, path: Path):
        self.path = path

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def open(self, name: str):
        return open(self.path / name, "rb")

    def close(self) -> None:
        pass


class _Archive:
    """The files of an official zip archive, read without extracting it."""

    def __init__(self, path: Path, folder: str):
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise OSError(
                f"{path} is not a readable zip archive ({exc}). Delete it, or "
                f"replace it with the official archive from {BASE_URL}{path.name}."
            ) from None
        # Members are "<folder>/<name>" in the official archives; accept "<name>".
        self._members = {}
        for member in self._zip.namelist():
            head, _, name = member.rpartition("/")
            if name and head in (folder, ""):
                self._members.setdefault(name, member)

    def has(self, name: str) -> bool:
        return name in self._members

    def open(self, name: str):
        return self._zip.open(self._members[name])

    def close(self) -> None:
        self._zip.close()


@contextlib.contextmanager
def _open(source, name: str):
    """Open ``name`` of a source as a binary file, decompressing ``.gz``.

    A context manager: on exit it closes the gzip reader and the file under
    it (closing a ``GzipFile`` leaves the file it was given open).
    """
    with source.open(name) as raw:
        if name.endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                yield f
        else:
            yield raw


def _pick(source, groups) -> tuple[list[str], list[str]]:
    """For each group of alternative file names, the first one the source has."""
    chosen, missing = [], []
    for group in groups:
        found = [name for name in group if source.has(name)]
        if found:
            chosen.append(found[0])
        else:
            missing.append(" or ".join(group))
    return chosen, missing


def _find_source(
    spec: _Variant, data_home, groups, download_if_missing: bool, what: str
):
    """Locate the files ``groups`` of a variant: folder, archive, then download.

    Returns the source (close it after use) and the chosen file of each group.
    ``what`` names the data in error messages.
    """
    home = Path(get_data_home(data_home))
    folder, archive = home / spec.folder, home / spec.archive
    url = BASE_URL + spec.archive
    looked = []
    if folder.is_dir():
        source = _Folder(folder)
        chosen, missing = _pick(source, groups)
        if not missing:
            return source, chosen
        looked.append(f"the folder {folder} (it lacks {', '.join(missing)})")
    else:
        looked.append(f"the folder {folder} (absent)")
    archive_incomplete = False
    if archive.is_file():
        source = _Archive(archive, spec.folder)
        chosen, missing = _pick(source, groups)
        if not missing:
            return source, chosen
        source.close()
        archive_incomplete = True
        looked.append(f"the archive {archive} (it lacks {', '.join(missing)})")
    else:
        looked.append(f"the archive {archive} (absent)")

    message = (
        f"{what} not found: looked for {looked[0]} and {looked[1]}. "
        f"Put the official archive {spec.archive} (from {url}) or its extracted "
        f"folder {spec.folder}/ in {home}, or pass data_home or set the "
        f"{DATA_HOME_ENV} environment variable to the folder that holds it"
    )
    if not download_if_missing:
        raise FileNotFoundError(
            f"{message}; download_if_missing=False, so nothing was downloaded."
        )
    if archive_incomplete:
        raise FileNotFoundError(
            f"{message}; {archive} is not the official archive, replace it."
        )
    try:
        path = _fetch_archive(spec, home)
    except _ChecksumError:
        raise
    except OSError as exc:
        raise OSError(f"{message}; downloading {url} failed: {exc}") from exc
    source = _Archive(path, spec.folder)
    chosen, missing = _pick(source, groups)
    if missing:
        source.close()
        raise FileNotFoundError(
            f"The archive {path} downloaded from {url} lacks {', '.join(missing)}."
        )
    return source, chosen


# --------------------------------------------------------------------- download
class _ChecksumError(OSError):
    """A downloaded archive does not have the expected checksum."""


def _download(url: str, path: Path) -> None:
    """Write the content at ``url`` to ``path`` (standard library only)."""
    with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:
        with open(path, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch_archive(spec: _Variant, data_home: Path) -> Path:
    """Download the official archive of ``spec`` into ``data_home``.

    The archive is written to a temporary file in ``data_home``, its MD5 checked
    (when the variant has a fixed one), then renamed, so that an interrupted or
    corrupt download never leaves a file that looks complete.
    """
    url = BASE_URL + spec.archive
    target = data_home / spec.archive
    created = not data_home.exists()
    data_home.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{spec.archive}.", suffix=".part", dir=data_home
    )
    os.close(fd)
    tmp = Path(name)
    try:
        logger.info("Downloading %s to %s", url, target)
        _download(url, tmp)
        if spec.md5 is not None:
            md5 = _md5(tmp)
            if md5 != spec.md5:
                raise _ChecksumError(
                    f"The archive downloaded from {url} has the MD5 checksum {md5}, "
                    f"not the expected {spec.md5}: the download is corrupt or the "
                    f"file changed on the server. Nothing was saved. Try again, or "
                    f"download it yourself and put it at {target}."
                )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if created:  # a failed download leaves no new folder behind
            with contextlib.suppress(OSError):
                data_home.rmdir()
        raise
    return target


# ---------------------------------------------------------------------- parsing
def _read_ratings(source, name: str) -> pd.DataFrame:
    """Read a rating file as columns user, item, rating, timestamp."""
    with _open(source, name) as f:
        if name.endswith(".csv"):  # userId,movieId,rating,timestamp with header
            dtype = {"userId": np.int64, "movieId": np.int64, "rating": np.float64}
            frame = pd.read_csv(f, dtype=dtype)
            frame = frame.iloc[:, :4]
        elif name.endswith(
            (".dat", ".dat.gz")
        ):  # "::" separated: split on ":", keep fields 0, 2, ...
            n_fields = 3 if "no_timestamp" in name else 4
            usecols = list(range(0, 2 * n_fields, 2))
            dtype = {0: np.int64, 2: np.int64, 4: np.float64}
            frame = pd.read_csv(f, sep=":", header=None, usecols=usecols, dtype=dtype)
        else:  # ML-100K: tab separated, no header
            dtype = {0: np.int64, 1: np.int64, 2: np.float64}
            frame = pd.read_csv(f, sep="\t", header=None, dtype=dtype)
    frame.columns = _COLUMNS[: frame.shape[1]]
    if "timestamp" in frame:
        frame["timestamp"] = frame["timestamp"].astype("Int64")
    else:
        frame["timestamp"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    return frame.reset_index(drop=True)


def _decode(data: bytes, encodings) -> str:
    for encoding in encodings[:-1]:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    return data.decode(encodings[-1])


def _read_items(source, name: str, encodings) -> pd.DataFrame:
    """Read a movie file as a DataFrame indexed by item id: title, genres."""
    with _open(source, name) as f:
        text = _decode(f.read(), encodings)
    if name == "u.item":  # id|title|release|video release|IMDb URL|19 genre flags
        frame = pd.read_csv(io.StringIO(text), sep="|", header=None)
        flags = frame.iloc[:, 5 : 5 + len(_ML100K_GENRES)].to_numpy() == 1
        genres = [
            "|".join(g for g, on in zip(_ML100K_GENRES, row) if on) for row in flags
        ]
        ids, titles = frame[0], frame[1]
    elif name.endswith(".csv"):  # movieId,title,genres with header
        frame = pd.read_csv(io.StringIO(text))
        ids, titles, genres = frame["movieId"], frame["title"], frame["genres"]
    else:  # MovieID::Title::Genres (titles may hold ":")
        rows = [line.split("::", 2) for line in text.splitlines() if line]
        ids = [int(row[0]) for row in rows]
        titles = [row[1] for row in rows]
        genres = [row[2] if len(row) > 2 else "" for row in rows]
    items = pd.DataFrame(
        {
            "title": np.asarray(titles, dtype=object),
            "genres": np.asarray(genres, dtype=object),
        },
        index=pd.Index(np.asarray(ids, dtype=np.int64), name="item"),
    )
    return items


# --------------------------------------------------------------------- loaders
@validate_params(
    {
        "variant": [StrOptions(set(_VARIANTS))],
        "data_home": [str, os.PathLike, None],
        "download_if_missing": ["boolean"],
        "return_items": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_movielens(
    variant="100k", *, data_home=None, download_if_missing=True, return_items=False
):
    """Load a MovieLens rating data set (GroupLens Research).

    The data is read from a local copy in ``data_home``: first the folder the
    official archive extracts to (``ml-100k/``, ``ml-1m/``, ``ml-10M100K/``,
    ``ml-20m/``, ``ml-25m/``, ``ml-latest-small/``), then the official zip
    archive itself (``ml-100k.zip``, ..., read without extracting it). When
    neither is there and ``download_if_missing`` is True, the archive is
    downloaded from ``https://files.grouplens.org/datasets/movielens/`` into
    ``data_home`` and its MD5 checksum verified.

    Parameters
    ----------
    variant : {"100k", "1m", "10m", "20m", "25m", "latest-small"}, default="100k"
        Which data set (see Notes for their sizes).

    data_home : str or path-like, default=None
        The folder holding the data. None uses the ``SKMF_DATA`` environment
        variable, else ``~/skmf_data`` (see :func:`get_data_home`).

    download_if_missing : bool, default=True
        Whether to download the archive when no local copy is found. If False,
        a missing data set raises :class:`FileNotFoundError`.

    return_items : bool, default=False
        Whether to also return the movies (titles and genres).

    Returns
    -------
    ratings : DataFrame of shape (n_ratings, 4)
        One row per rating, in the order of the file, with columns ``user``
        and ``item`` (int64 ids, as in the files), ``rating`` (float64) and
        ``timestamp`` (Unix seconds, nullable ``Int64``). The timestamps are
        missing (``pd.NA``) when the MovieLens 1M ratings come from a
        ``ml-1m/ratings_no_timestamp.dat.gz`` file instead of the official
        ``ratings.dat``.

    items : DataFrame
        Only when ``return_items=True``: the movies, indexed by item id (index
        name ``item``), with columns ``title`` and ``genres`` (genre names
        joined by ``"|"``). It lists every movie of the data set, including
        movies nobody rated.

    Raises
    ------
    FileNotFoundError
        If the data is not found and ``download_if_missing=False``. The message
        names the paths looked at and where to put the data.
    OSError
        If the download fails or the downloaded archive has the wrong checksum.

    See Also
    --------
    load_movielens_split : The official train/test splits of MovieLens 100K.
    make_ratings : Synthetic ratings from a known model.

    Notes
    -----
    ============== =========== ======== ======== ======= ============
    variant        ratings     users    items    scale   archive
    ============== =========== ======== ======== ======= ============
    "100k"         100,000     943      1,682    1-5     5 MB
    "1m"           1,000,209   6,040    3,706    1-5     6 MB
    "10m"          10,000,054  69,878   10,677   0.5-5   63 MB
    "20m"          20,000,263  138,493  26,744   0.5-5   190 MB
    "25m"          25,000,095  162,541  59,047   0.5-5   250 MB
    "latest-small" ~100,000    ~600     ~9,000   0.5-5   1 MB
    ============== =========== ======== ======== ======= ============

    Items are the rated movies. "latest-small" changes over time, so its
    archive has no fixed checksum and is not verified.

    Besides the official ``ml-1m/ratings.dat``, a folder ``ml-1m/`` holding
    ``ratings_no_timestamp.dat.gz`` (gzip of ``UserID::MovieID::Rating`` lines)
    is accepted; the timestamps are then missing.

    The MovieLens data may be used for research under the GroupLens terms (see
    the README of each archive): no redistribution without permission, no
    endorsement implied, no commercial use, and cite [1]_ in publications.

    References
    ----------
    .. [1] F. M. Harper and J. A. Konstan, "The MovieLens Datasets: History and
       Context", ACM Transactions on Interactive Intelligent Systems 5(4),
       article 19, 2015. https://doi.org/10.1145/2827872

    Examples
    --------
    >>> from skmf.datasets import load_movielens
    >>> ratings = load_movielens("100k")  # doctest: +SKIP
    >>> ratings.shape  # doctest: +SKIP
    (100000, 4)
    >>> ratings.columns.tolist()  # doctest: +SKIP
    ['user', 'item', 'rating', 'timestamp']
    >>> ratings, items = load_movielens("1m", return_items=True)  # doctest: +SKIP
    >>> items.loc[1, "title"]  # doctest: +SKIP
    'Toy Story (1995)'

    Without a local copy and without downloading, the error says where to put
    the data:

    >>> load_movielens("100k", data_home="/nonexistent", download_if_missing=False)
    Traceback (most recent call last):
    ...
    FileNotFoundError: MovieLens 100K data not found: looked for the folder ...
    """
    spec = _VARIANTS[variant]
    groups = [spec.ratings] + ([(spec.items,)] if return_items else [])
    source, chosen = _find_source(
        spec, data_home, groups, download_if_missing, f"{spec.title} data"
    )
    try:
        ratings = _read_ratings(source, chosen[0])
        if not return_items:
            return ratings
        items = _read_items(source, chosen[1], spec.items_encoding)
    finally:
        source.close()
    return ratings, items


@validate_params(
    {
        "split": [StrOptions(set(SPLITS))],
        "data_home": [str, os.PathLike, None],
        "download_if_missing": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_movielens_split(split="u1", *, data_home=None, download_if_missing=True):
    """Load an official train/test split of MovieLens 100K.

    MovieLens 100K comes with seven splits of its 100,000 ratings: ``u1`` to
    ``u5`` (80,000 training and 20,000 test ratings each; the five test sets
    are disjoint and partition the data, for 5-fold cross-validation) and
    ``ua``, ``ub`` (exactly 10 test ratings per user, 90,570 / 9,430). They
    are read from the files ``<split>.base`` and ``<split>.test``, looked for
    as :func:`load_movielens` does.

    Parameters
    ----------
    split : {"u1", "u2", "u3", "u4", "u5", "ua", "ub"}, default="u1"
        Which split.

    data_home : str or path-like, default=None
        The folder holding the data. None uses the ``SKMF_DATA`` environment
        variable, else ``~/skmf_data`` (see :func:`get_data_home`).

    download_if_missing : bool, default=True
        Whether to download ``ml-100k.zip`` when no local copy holds the split.
        If False, a missing split raises :class:`FileNotFoundError` naming the
        missing files.

    Returns
    -------
    train : DataFrame of shape (n_train, 4)
        Ratings of ``<split>.base``, columns ``user``, ``item``, ``rating``,
        ``timestamp`` as in :func:`load_movielens`.

    test : DataFrame of shape (n_test, 4)
        Ratings of ``<split>.test``, likewise.

    Raises
    ------
    FileNotFoundError
        If the split files are not found and ``download_if_missing=False``.
    OSError
        If the download fails or the downloaded archive has the wrong checksum.

    See Also
    --------
    load_movielens : All the ratings of a MovieLens data set.

    Examples
    --------
    >>> from skmf.datasets import load_movielens_split
    >>> train, test = load_movielens_split("u1")  # doctest: +SKIP
    >>> len(train), len(test)  # doctest: +SKIP
    (80000, 20000)
    """
    spec = _VARIANTS["100k"]
    groups = [(f"{split}.base",), (f"{split}.test",)]
    what = f"{spec.title} split {split} ({split}.base, {split}.test)"
    source, chosen = _find_source(spec, data_home, groups, download_if_missing, what)
    try:
        return _read_ratings(source, chosen[0]), _read_ratings(source, chosen[1])
    finally:
        source.close()
