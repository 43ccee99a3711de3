"""Tests of the MovieLens loaders (skmf.datasets._movielens).

The expected totals are those of the full data sets; the tests that read the data
from the data home (``SKMF_DATA``) skip when it is absent. Nothing is ever
downloaded: the ``no_download`` fixture replaces ``_download`` in every test.
"""

import dataclasses
import gc
import gzip
import hashlib
import io
import sys
import urllib.error
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skmf.datasets import (
    _movielens,
    get_data_home,
    load_movielens,
    load_movielens_split,
    make_ratings,
)

ML100K_COUNTS = {1.0: 6_110, 2.0: 11_370, 3.0: 27_145, 4.0: 34_174, 5.0: 21_201}
ML1M_COUNTS = {1.0: 56_174, 2.0: 107_557, 3.0: 261_197, 4.0: 348_971, 5.0: 226_310}
COLUMNS = ["user", "item", "rating", "timestamp"]

pytestmark = pytest.mark.usefixtures("no_download")


def _build_zip(path: Path, files: dict, folder: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            archive.writestr(f"{folder}/{name}", data)
    return path


ML100K_FILES = {
    "u.data": "1\t10\t4\t881250949\n2\t10\t3\t891717742\n2\t20\t5\t878887116\n",
    "u1.base": "1\t10\t4\t881250949\n2\t10\t3\t891717742\n",
    "u1.test": "2\t20\t5\t878887116\n",
    "u.item": (
        "10|Mis\xe9rables, Les (1995)|01-Jan-1995||http://x|0|0|0|0|0|0|0|0|1|0|0|0|1"
        "|0|0|0|0|0|0\n"
        "20|Toy Story (1995)|01-Jan-1995||http://y|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0"
        "|0|0\n"
    ).encode("latin-1"),
}


# ------------------------------------------------------------ shared data
@pytest.mark.movielens
def test_load_100k_totals(movielens_dir):
    ratings = load_movielens("100k", data_home=movielens_dir, download_if_missing=False)
    assert ratings.columns.tolist() == COLUMNS
    assert ratings.shape == (100_000, 4)
    assert ratings["user"].nunique() == 943
    assert ratings["item"].nunique() == 1_682
    assert ratings["user"].between(1, 943).all()
    assert ratings["rating"].value_counts().to_dict() == ML100K_COUNTS
    assert ratings["user"].dtype == np.int64 and ratings["item"].dtype == np.int64
    assert ratings["rating"].dtype == np.float64
    assert ratings["timestamp"].dtype == "Int64"
    assert ratings["timestamp"].notna().all()
    assert not ratings.duplicated(["user", "item"]).any()
    # First line of u.data.
    assert ratings.iloc[0].tolist() == [196, 242, 3.0, 881250949]


@pytest.mark.movielens
def test_load_100k_items(movielens_dir):
    ratings, items = load_movielens(
        "100k",
        data_home=str(movielens_dir),
        download_if_missing=False,
        return_items=True,
    )
    assert len(ratings) == 100_000
    assert items.shape[0] == 1_682
    assert items.index.name == "item"
    assert {"title", "genres"} <= set(items.columns)
    assert items.loc[1, "title"] == "Toy Story (1995)"
    assert items.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert items.loc[543, "title"] == "Misérables, Les (1995)"  # ISO-8859-1
    assert set(ratings["item"]) <= set(items.index)


@pytest.mark.movielens
def test_load_1m_without_timestamps(movielens_1m_dir):
    ratings, items = load_movielens(
        "1m", data_home=movielens_1m_dir, download_if_missing=False, return_items=True
    )
    assert ratings.columns.tolist() == COLUMNS
    assert ratings.shape == (1_000_209, 4)
    assert ratings["user"].nunique() == 6_040
    assert ratings["item"].nunique() == 3_706
    assert ratings["rating"].value_counts().to_dict() == ML1M_COUNTS
    assert ratings["timestamp"].dtype == "Int64"
    if not (movielens_1m_dir / "ml-1m" / "ratings.dat").is_file():
        assert ratings["timestamp"].isna().all()
    assert items.shape[0] == 3_883
    assert items.loc[1, "title"] == "Toy Story (1995)"
    assert items.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert items.loc[73, "title"] == "Misérables, Les (1995)"  # ISO-8859-1
    assert set(ratings["item"]) <= set(items.index)


@pytest.mark.movielens
def test_official_splits(movielens_dir):
    def key(frame):
        return frame.sort_values(COLUMNS).reset_index(drop=True)

    full = key(load_movielens("100k", data_home=movielens_dir))
    tests = []
    for split in ["u1", "u2", "u3", "u4", "u5"]:
        train, test = load_movielens_split(
            split, data_home=movielens_dir, download_if_missing=False
        )
        assert train.columns.tolist() == test.columns.tolist() == COLUMNS
        assert (len(train), len(test)) == (80_000, 20_000)
        pd.testing.assert_frame_equal(key(pd.concat([train, test])), full)
        assert train["user"].nunique() == 943
        tests.append(test)
    # The five test sets partition the data.
    pd.testing.assert_frame_equal(key(pd.concat(tests)), full)


@pytest.mark.movielens
def test_missing_split_names_the_files(movielens_dir):
    if (movielens_dir / "ml-100k" / "ua.base").is_file():
        pytest.skip("this copy of ML-100K has the ua split")
    with pytest.raises(FileNotFoundError, match=r"lacks ua\.base, ua\.test"):
        load_movielens_split("ua", data_home=movielens_dir, download_if_missing=False)


# ------------------------------------------------------------- local copies
def test_read_from_zip_archive(tmp_path):
    _build_zip(tmp_path / "ml-100k.zip", ML100K_FILES, "ml-100k")
    ratings, items = load_movielens(
        data_home=tmp_path, download_if_missing=False, return_items=True
    )
    assert ratings.columns.tolist() == COLUMNS
    assert ratings["user"].tolist() == [1, 2, 2]
    assert ratings["rating"].tolist() == [4.0, 3.0, 5.0]
    assert ratings["timestamp"].tolist() == [881250949, 891717742, 878887116]
    assert items.loc[10, "title"] == "Misérables, Les (1995)"
    assert items.loc[10, "genres"] == "Drama|Musical"
    assert items.loc[20, "genres"] == "Animation|Children's|Comedy"
    train, test = load_movielens_split(data_home=tmp_path, download_if_missing=False)
    assert (len(train), len(test)) == (2, 1)
    assert test.iloc[0].tolist() == [2, 20, 5.0, 878887116]


@pytest.mark.parametrize(
    "variant, folder, files",
    [
        (
            "1m",
            "ml-1m",
            {
                "ratings.dat": "1::1193::5::978300760\n2::661::3::978302109\n",
                "movies.dat": "1193::One Flew: Over (1975)::Drama\n661::"
                "Caf\xe9 (1996)::Animation|Children's\n".encode("latin-1"),
            },
        ),
        (
            "10m",
            "ml-10M100K",
            {
                "ratings.dat": "1::1193::4.5::978300760\n2::661::3::978302109\n",
                "movies.dat": "1193::One Flew: Over (1975)::Drama\n661::Café (1996)"
                "::Animation|Children\n",
            },
        ),
        (
            "latest-small",
            "ml-latest-small",
            {
                "ratings.csv": "userId,movieId,rating,timestamp\n1,1193,4.5,978300760"
                "\n2,661,3.0,978302109\n",
                "movies.csv": 'movieId,title,genres\n1193,"One Flew: Over, The '
                '(1975)",Drama\n661,Café (1996),Animation|Children\n',
            },
        ),
    ],
)
def test_other_variants_from_zip(tmp_path, variant, folder, files):
    spec = _movielens._VARIANTS[variant]
    _build_zip(tmp_path / spec.archive, files, folder)
    ratings, items = load_movielens(
        variant, data_home=tmp_path, download_if_missing=False, return_items=True
    )
    assert ratings.columns.tolist() == COLUMNS
    assert ratings["user"].tolist() == [1, 2]
    assert ratings["item"].tolist() == [1193, 661]
    assert ratings["rating"].iloc[1] == 3.0
    assert ratings["timestamp"].tolist() == [978300760, 978302109]
    assert items.loc[1193, "title"].startswith("One Flew: Over")
    assert items.loc[661, "title"] == "Café (1996)"
    assert items.loc[661, "genres"].startswith("Animation|Children")


def test_ml1m_folder_without_timestamps(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    with gzip.open(folder / "ratings_no_timestamp.dat.gz", "wt") as f:
        f.write("1::1193::5\n1::661::3\n2::914::4\n")
    ratings = load_movielens("1m", data_home=tmp_path, download_if_missing=False)
    assert ratings.columns.tolist() == COLUMNS
    assert ratings["item"].tolist() == [1193, 661, 914]
    assert ratings["rating"].tolist() == [5.0, 3.0, 4.0]
    assert ratings["timestamp"].isna().all()
    assert ratings["timestamp"].dtype == "Int64"
    # The official ratings.dat wins when both are there.
    (folder / "ratings.dat").write_text("7::1::2::978300760\n")
    ratings = load_movielens("1m", data_home=tmp_path, download_if_missing=False)
    assert ratings.iloc[0].tolist() == [7, 1, 2.0, 978300760]


def test_gzip_ratings_file_is_closed(tmp_path, monkeypatch):
    # Closing a GzipFile does not close the file under it; left open, that file
    # raises ResourceWarning when it is garbage collected. Warnings raised
    # there reach sys.unraisablehook, not the caller, so collect them there.
    (tmp_path / "ml-1m").mkdir()
    with gzip.open(tmp_path / "ml-1m" / "ratings_no_timestamp.dat.gz", "wt") as f:
        f.write("1::1193::5\n1::661::3\n")
    gc.collect()
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        ratings = load_movielens("1m", data_home=tmp_path, download_if_missing=False)
        gc.collect()
    leaks = [str(u.exc_value) for u in unraisable]
    assert not leaks, leaks
    assert ratings["item"].tolist() == [1193, 661]


def test_folder_is_preferred_to_archive(tmp_path):
    _build_zip(tmp_path / "ml-100k.zip", ML100K_FILES, "ml-100k")
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("9\t9\t1\t1\n")
    ratings = load_movielens(data_home=tmp_path, download_if_missing=False)
    assert ratings.iloc[0].tolist() == [9, 9, 1.0, 1]
    # A file the folder lacks is read from the archive.
    _, items = load_movielens(
        data_home=tmp_path, download_if_missing=False, return_items=True
    )
    assert items.loc[20, "title"] == "Toy Story (1995)"


def test_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SKMF_DATA", str(tmp_path))
    assert get_data_home() == str(tmp_path)
    assert get_data_home(tmp_path / "other") == str(tmp_path / "other")
    _build_zip(tmp_path / "ml-100k.zip", ML100K_FILES, "ml-100k")
    assert len(load_movielens(download_if_missing=False)) == 3
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for value in (None, ""):
        if value is None:
            monkeypatch.delenv("SKMF_DATA")
        else:
            monkeypatch.setenv("SKMF_DATA", value)
        assert get_data_home() == str(tmp_path / "home" / "skmf_data")
    assert get_data_home("~/x") == str(tmp_path / "home" / "x")
    assert not (tmp_path / "home").exists()  # nothing is created


# ------------------------------------------------------------------ errors
def test_not_found_message(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_movielens("1m", data_home=tmp_path, download_if_missing=False)
    message = str(info.value)
    assert str(tmp_path / "ml-1m") in message
    assert str(tmp_path / "ml-1m.zip") in message
    assert "SKMF_DATA" in message
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in message
    assert "download_if_missing=False" in message
    assert list(tmp_path.iterdir()) == []


def test_missing_split_file_in_folder(tmp_path):
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("1\t1\t1\t1\n")
    with pytest.raises(FileNotFoundError, match=r"lacks ub\.base, ub\.test"):
        load_movielens_split("ub", data_home=tmp_path, download_if_missing=False)
    with pytest.raises(FileNotFoundError, match=r"lacks u\.item"):
        load_movielens(data_home=tmp_path, download_if_missing=False, return_items=True)


def test_download_failure_message(monkeypatch, tmp_path):
    calls = []

    def download(url, path):
        calls.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(_movielens, "_download", download)
    with pytest.raises(OSError) as info:
        load_movielens("100k", data_home=tmp_path)
    message = str(info.value)
    assert calls == ["https://files.grouplens.org/datasets/movielens/ml-100k.zip"]
    assert str(tmp_path / "ml-100k") in message and "SKMF_DATA" in message
    assert "no network" in message
    assert list(tmp_path.iterdir()) == []  # no partial file left
    # A data home that did not exist is not left behind, empty.
    home = tmp_path / "new-home"
    with pytest.raises(OSError):
        load_movielens("100k", data_home=home)
    assert not home.exists()


@pytest.mark.parametrize(
    "call",
    [
        lambda: load_movielens("2m"),
        lambda: load_movielens("100K"),
        lambda: load_movielens_split("u6"),
        lambda: load_movielens(data_home=3),
        lambda: load_movielens(return_items="yes"),
    ],
)
def test_parameter_validation_comes_first(monkeypatch, call):
    def find_source(*args, **kwargs):
        pytest.fail("validation must happen before any I/O")

    monkeypatch.setattr(_movielens, "_find_source", find_source)
    with pytest.raises(ValueError, match="parameter of load_movielens"):
        call()


def test_variant_error_lists_the_variants():
    with pytest.raises(ValueError, match=r"'variant' .* among .*'latest-small'"):
        load_movielens("2m")


def _zip_bytes(files: dict, folder: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(f"{folder}/{name}", content)
    return buffer.getvalue()


def test_checksum_mismatch(monkeypatch, tmp_path):
    def download(url, path):
        Path(path).write_bytes(_zip_bytes(ML100K_FILES, "ml-100k"))  # not official

    monkeypatch.setattr(_movielens, "_download", download)
    with pytest.raises(OSError, match=r"MD5 checksum .* expected 0e33842e"):
        load_movielens("100k", data_home=tmp_path / "home")
    assert not (tmp_path / "home").exists()  # nothing saved, no folder left


def test_download_verifies_and_saves(monkeypatch, tmp_path):
    content = _zip_bytes(ML100K_FILES, "ml-100k")
    spec = dataclasses.replace(
        _movielens._VARIANTS["100k"],
        md5=hashlib.md5(content, usedforsecurity=False).hexdigest(),
    )
    monkeypatch.setitem(_movielens._VARIANTS, "100k", spec)
    calls = []

    def download(url, path):
        calls.append(url)
        Path(path).write_bytes(content)

    monkeypatch.setattr(_movielens, "_download", download)
    home = tmp_path / "new" / "home"
    ratings = load_movielens("100k", data_home=home)
    assert len(ratings) == 3
    assert [p.name for p in home.iterdir()] == ["ml-100k.zip"]
    train, _ = load_movielens_split("u1", data_home=home)  # from the saved archive
    assert len(train) == 2
    assert calls == ["https://files.grouplens.org/datasets/movielens/ml-100k.zip"]


def test_latest_small_is_not_verified(monkeypatch, tmp_path):
    files = {"ratings.csv": "userId,movieId,rating,timestamp\n1,2,3.5,4\n"}

    def download(url, path):
        assert url.endswith("/ml-latest-small.zip")
        Path(path).write_bytes(_zip_bytes(files, "ml-latest-small"))

    monkeypatch.setattr(_movielens, "_download", download)
    ratings = load_movielens("latest-small", data_home=tmp_path)
    assert ratings.iloc[0].tolist() == [1, 2, 3.5, 4]


def test_corrupt_archive(tmp_path):
    (tmp_path / "ml-100k.zip").write_bytes(b"not a zip")
    with pytest.raises(OSError, match="not a readable zip archive"):
        load_movielens(data_home=tmp_path, download_if_missing=False)


def test_make_ratings_rejects_a_rating_scale_that_is_not_a_pair():
    with pytest.raises(ValueError, match="rating_scale must be a pair"):
        make_ratings(rating_scale=(1, 3, 5))


def test_make_ratings_sizes_do_not_overflow_in_numpy_ints():
    # np.int32(50_000) ** 2 overflows int32; the check must use Python ints.
    data = make_ratings(
        n_users=np.int32(50_000), n_items=np.int32(50_000), n_ratings=100,
        random_state=0,
    )  # fmt: skip
    assert len(data.y) == 100


def test_make_ratings_too_large_for_memory_is_a_clear_error():
    """n_users=10**12 used to die in NumPy (a 73 TiB allocation)."""
    with pytest.raises(ValueError, match="needs about .* GiB of memory"):
        make_ratings(n_users=10**12)
