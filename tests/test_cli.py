"""Tests of the ``skmf`` command (skmf._cli), run in-process through ``main``."""

import gzip
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

from skmf import MFRegressor
from skmf._cli import main
from skmf.datasets import _movielens, make_ratings

REPO = Path(__file__).resolve().parents[1]
FAST = ["--n-components", "4", "--max-iter", "3", "--random-state", "0"]


def shared_data_dir() -> Path:
    """$SKMF_TEST_DATA, else the shared folder next to the repository."""
    env = os.environ.get("SKMF_TEST_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def no_download(monkeypatch, tmp_path):
    def download(url, path):
        pytest.fail(f"a test tried to download {url}")

    monkeypatch.setattr(_movielens, "_download", download)
    monkeypatch.setenv("SKMF_DATA", str(tmp_path / "empty_home"))


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Fit the tiny test models on one thread.

    With several threads, torch's OpenMP workers wait for each other at every
    small operation; when other jobs load the cores this turns a 0.1 s fit into
    seconds.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def frame():
    return make_ratings(n_users=40, n_items=30, n_ratings=600, random_state=0).frame


@pytest.fixture
def csv_path(tmp_path, frame):
    path = tmp_path / "ratings.csv"
    frame.to_csv(path, index=False)
    return path


def one_line_error(capsys, status) -> str:
    """Check a failed run printed exactly one 'skmf: error:' line."""
    out, err = capsys.readouterr()
    assert status != 0
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("skmf: error: ")
    return lines[0]


# -------------------------------------------------------------------- demo
def test_demo_synthetic(capsys):
    assert main(["demo", "--synthetic", "--n-ratings", "3000"]) == 0
    out = capsys.readouterr().out
    assert "Data: synthetic ratings from make_ratings" in out
    rmse, baseline = map(
        float,
        re.search(r"Test RMSE: (\S+) \(global-mean baseline: (\S+)\)", out).groups(),
    )
    assert 0 < rmse < baseline
    assert re.search(r"Fit time: \d+\.\d+ s on cpu", out)


def test_demo_without_data_falls_back_to_synthetic(capsys, tmp_path):
    status = main(["demo", "--data-home", str(tmp_path), "--n-ratings", "2000"])
    assert status == 0
    out = capsys.readouterr().out
    assert f"MovieLens 100K not found in {tmp_path}" in out
    assert "Data: synthetic" in out


@pytest.mark.movielens
def test_demo_movielens(capsys):
    home = shared_data_dir()
    if not (home / "ml-100k" / "u1.base").is_file():
        pytest.skip(f"MovieLens data not found at {home}; set SKMF_TEST_DATA")
    assert main(["demo", "--data-home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "MovieLens 100K, official split u1" in out
    assert "80,000 training and 20,000 test ratings" in out
    rmse, baseline = map(
        float,
        re.search(r"Test RMSE: (\S+) \(global-mean baseline: (\S+)\)", out).groups(),
    )
    assert rmse < 0.96 and abs(baseline - 1.1537) < 1e-3


@pytest.mark.parametrize("n", [10, 14])
def test_demo_tiny_synthetic_has_a_test_split(capsys, n):
    # The random 20 % split of 10 to 14 ratings used to leave the test empty.
    assert main(["demo", "--synthetic", "--n-ratings", str(n)]) == 0
    out = capsys.readouterr().out
    n_train, n_test = map(
        int, re.search(r"(\d+) training and (\d+) test ratings", out).groups()
    )
    assert n_train >= 1 and n_test >= 1 and n_train + n_test == n
    assert "Test RMSE" in out


def test_python_m_skmf_demo(tmp_path):
    env = {**os.environ, "SKMF_DATA": str(tmp_path), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "skmf", "demo", "--synthetic", "--n-ratings", "2000"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Test RMSE" in result.stdout


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("skmf ")


# --------------------------------------------------------- fit and evaluate
def test_fit_then_evaluate(capsys, tmp_path, csv_path):
    output = tmp_path / "model.skmf"
    assert main(["fit", str(csv_path), *FAST, "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert "Fitted MFRegressor on 600 ratings (40 users, 30 items)" in out
    assert f"Saved the model to {output}" in out
    model = joblib.load(output)
    assert isinstance(model, MFRegressor)
    assert model.n_components == 4 and model.n_iter_ <= 3
    assert model.predict([[0, 0]]).shape == (1,)

    assert main(["evaluate", str(csv_path), *FAST, "--cv", "3"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+\d ", line)]
    assert [row[0] for row in rows] == ["1", "2", "3"]
    assert sum(int(row[2].replace(",", "")) for row in rows) == 600
    rmses = [float(row[3]) for row in rows]
    summary = re.search(r"RMSE (\S+) ± (\S+), MAE (\S+) ± (\S+)", out).groups()
    assert float(summary[0]) == pytest.approx(np.mean(rmses), abs=1e-3)
    assert float(summary[1]) == pytest.approx(np.std(rmses), abs=1e-3)
    assert 0 < float(summary[2]) < float(summary[0])


def test_evaluate_default_folds_and_solver(capsys, csv_path):
    argv = ["evaluate", str(csv_path), "--solver", "sgd", "--max-iter", "2"]
    assert main(argv) == 0
    assert "5-fold cross-validation" in capsys.readouterr().out


def test_named_columns(capsys, tmp_path, frame):
    path = tmp_path / "ratings.tsv"
    renamed = frame.rename(columns={"user": "uid", "item": "iid", "rating": "stars"})
    renamed.assign(extra="x").to_csv(path, sep="\t", index=False)
    output = tmp_path / "m.skmf"
    argv = ["fit", str(path), "--user-col", "uid", "--item-col", "iid"]
    argv += ["--rating-col", "stars", *FAST, "-o", str(output)]
    assert main(argv) == 0
    assert joblib.load(output).users_.shape == (40,)


def test_movielens_dat_and_positions(capsys, tmp_path, frame):
    triples = frame[["user", "item", "rating"]].itertuples(index=False)
    lines = [
        f"{u}::{i}::{r:.0f}::97830076{k % 10}" for k, (u, i, r) in enumerate(triples)
    ]
    dat = tmp_path / "ratings.dat.gz"
    with gzip.open(dat, "wt") as f:
        f.write("\n".join(lines) + "\n")
    assert main(["fit", str(dat), *FAST, "-o", str(tmp_path / "a.skmf")]) == 0
    assert "on 600 ratings" in capsys.readouterr().out
    # Headerless text with --sep and columns by position.
    txt = tmp_path / "u.data"
    frame[["rating", "user", "item"]].to_csv(txt, sep="\t", header=False, index=False)
    argv = ["fit", str(txt), "--sep", r"\t", "--no-header", "--user-col", "1"]
    argv += ["--item-col", "2", "--rating-col", "0", *FAST, "-o", str(tmp_path / "b")]
    assert main(argv) == 0
    model = joblib.load(tmp_path / "b")
    assert model.rating_range_ == (frame["rating"].min(), frame["rating"].max())


def test_sep_non_ascii_and_escapes(capsys, tmp_path, frame):
    path = tmp_path / "ratings.txt"
    frame.to_csv(path, sep="§", index=False)
    for sep in ["§", r"\u00a7", r"\xa7"]:
        argv = ["fit", str(path), "--sep", sep, *FAST, "-o", str(tmp_path / "m")]
        assert main(argv) == 0, sep
        assert "on 600 ratings" in capsys.readouterr().out
    tsv = tmp_path / "ratings.data"
    frame.to_csv(tsv, sep="\t", index=False)
    for sep in [r"\t", "\t"]:  # typed as backslash-t, or a real tab
        argv = ["fit", str(tsv), "--sep", sep, *FAST, "-o", str(tmp_path / "m")]
        assert main(argv) == 0, sep
        assert "on 600 ratings" in capsys.readouterr().out


@pytest.mark.parametrize("sep", [r"\x", "", "\\"])
def test_bad_sep_is_one_line_naming_sep(capsys, tmp_path, csv_path, sep):
    status = main(["evaluate", str(csv_path), "--sep", sep])
    line = one_line_error(capsys, status)
    assert status == 2
    assert "--sep" in line
    assert "codec" not in line and "Py_UCS4" not in line


@pytest.mark.parametrize("sep, name", [("\t", "ratings.csv"), (";", "ratings.csv")])
def test_wrong_separator_suggests_sep(capsys, tmp_path, frame, sep, name):
    path = tmp_path / name
    frame.to_csv(path, sep=sep, index=False)
    line = one_line_error(capsys, main(["evaluate", str(path)]))
    assert "single column" in line and "','" in line and "--sep" in line
    assert "--user-col" not in line
    # Also with an explicit, wrong --sep.
    line = one_line_error(capsys, main(["evaluate", str(path), "--sep", "|"]))
    assert "'|'" in line and "--sep" in line


def test_rating_error_quotes_a_non_numeric_value(capsys, tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("user,item,rating\n1,1,5\n2,2,\n3,3,abc\n")
    line = one_line_error(capsys, main(["fit", str(path), "-o", str(tmp_path / "m")]))
    assert "'abc'" in line
    assert "nan" not in line


def test_fit_output_folder_rejected_before_reading(capsys, monkeypatch, tmp_path):
    import skmf._cli

    def load(args):
        pytest.fail("the ratings were read before checking --output")

    monkeypatch.setattr(skmf._cli, "_load_ratings", load)
    csv = tmp_path / "ratings.csv"
    csv.write_text("user,item,rating\n1,1,5\n")
    folder = tmp_path / "models"
    folder.mkdir()
    for option in ["-o", "--output"]:
        status = main(["fit", str(csv), option, str(folder)])
        line = one_line_error(capsys, status)
        assert "-o/--output" in line and "folder" in line and str(folder) in line


# ------------------------------------------------------------------ errors
def test_missing_file(capsys, tmp_path):
    status = main(["fit", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "m")])
    line = one_line_error(capsys, status)
    assert "not found" in line and "nope.csv" in line


def test_bad_column_lists_available_columns(capsys, tmp_path, csv_path):
    argv = ["evaluate", str(csv_path), "--user-col", "userId"]
    line = one_line_error(capsys, main(argv))
    assert "'userId' not found" in line
    assert "available columns: user, item, rating" in line


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--alpha", "-1"], "'alpha' parameter of MFRegressor"),
        (["--alpha", "abc"], "invalid float value"),
        (["--solver", "lbfgs"], "invalid choice"),
        (["--cv", "1"], "--cv must be at least 2"),
        (["--device", "cuda:7"], "cuda:7"),
        (["--rating-col", "0", "--user-col", "0"], "must differ"),
    ],
)
def test_bad_parameter_values(capsys, csv_path, extra, expected):
    line = one_line_error(capsys, main(["evaluate", str(csv_path), *extra]))
    assert expected in line


def test_unreadable_files(capsys, tmp_path, frame):
    unknown = tmp_path / "ratings.xyz"
    unknown.write_text("1,2,3\n")
    line = one_line_error(capsys, main(["evaluate", str(unknown)]))
    assert "--sep" in line
    binary = tmp_path / "bad.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01garbage\n\x00\x00")
    one_line_error(capsys, main(["evaluate", str(binary)]))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "cannot read" in one_line_error(capsys, main(["evaluate", str(empty)]))
    text = tmp_path / "text.csv"
    frame.assign(rating="good").to_csv(text, index=False)
    line = one_line_error(capsys, main(["fit", str(text), "-o", str(tmp_path / "m")]))
    assert "'good'" in line
    out = ["fit", str(text), "-o", str(tmp_path / "no" / "dir" / "m.skmf")]
    assert "folder" in one_line_error(capsys, main(out))


@pytest.mark.skipif(
    any(importlib.util.find_spec(name) for name in ("pyarrow", "fastparquet")),
    reason="a parquet engine is installed",
)
def test_parquet_without_engine(capsys, tmp_path):
    path = tmp_path / "ratings.parquet"
    path.write_bytes(b"PAR1")
    assert "pip install pyarrow" in one_line_error(
        capsys, main(["evaluate", str(path)])
    )


def test_usage_errors_are_one_line(capsys):
    line = one_line_error(capsys, main([]))
    assert "required" in line
    assert one_line_error(capsys, main(["fit"])).startswith("skmf: error:")
    assert main(["frobnicate"]) == 2
    one_line_error(capsys, 2)


def test_debug_shows_the_exception(tmp_path):
    with pytest.raises(Exception, match="not found"):
        main(["--debug", "evaluate", str(tmp_path / "nope.csv")])


# --------------------------------------------------------------- recommend
@pytest.fixture
def model_path(tmp_path, csv_path):
    path = tmp_path / "model.skmf"
    assert main(["fit", str(csv_path), *FAST, "-o", str(path)]) == 0
    return path


def test_recommend_unavailable(capsys, monkeypatch, model_path):
    monkeypatch.delattr(MFRegressor, "recommend", raising=False)
    capsys.readouterr()
    status = main(["recommend", str(model_path), "--user", "3"])
    assert status == 2
    assert "not available in this version" in one_line_error(capsys, status)


def test_recommend_with_method(capsys, monkeypatch, model_path):
    calls = []

    def recommend(self, users, n=10):
        calls.append((list(users), n))
        items = np.asarray(self.items_[:n])[None, :]
        return items, np.linspace(5, 4, items.shape[1])[None, :]

    monkeypatch.setattr(MFRegressor, "recommend", recommend, raising=False)
    capsys.readouterr()
    assert main(["recommend", str(model_path), "--user", "3", "-n", "4"]) == 0
    out = capsys.readouterr().out
    assert calls == [([3], 4)]
    assert "Top 4 items for user 3" in out
    assert len([line for line in out.splitlines() if re.match(r"\s+\d+  ", line)]) == 4
    line = one_line_error(capsys, main(["recommend", str(model_path), "--user", "x"]))
    assert "integer" in line
    missing = str(model_path) + ".missing"
    assert "not found" in one_line_error(
        capsys, main(["recommend", missing, "--user", "1"])
    )
    model_path.write_bytes(b"garbage")
    line = one_line_error(capsys, main(["recommend", str(model_path), "--user", "1"]))
    assert "cannot read the model file" in line


@pytest.mark.skipif(
    not hasattr(MFRegressor, "recommend"), reason="MFRegressor has no recommend yet"
)
def test_recommend_real_method(capsys, model_path):
    capsys.readouterr()
    assert main(["recommend", str(model_path), "--user", "0", "-n", "3"]) == 0
    assert capsys.readouterr().out.strip()


@pytest.mark.skipif(
    not hasattr(MFRegressor, "recommend"), reason="MFRegressor has no recommend yet"
)
def test_recommend_object_user_ids(capsys, tmp_path, frame):
    # users_ of object dtype: ints mixed with a string id.
    data = frame.astype({"user": object})
    data.loc[data["user"] == 0, "user"] = "alice"
    model = MFRegressor(n_components=4, max_iter=3, random_state=0).fit(data)
    assert model.users_.dtype == object and 1 in list(model.users_)
    path = tmp_path / "model.skmf"
    joblib.dump(model, path)

    def served(user, text):
        capsys.readouterr()
        assert main(["recommend", str(path), "--user", text, "-n", "5"]) == 0
        out, err = capsys.readouterr()
        items = [line.split()[1] for line in out.splitlines()[2:]]
        expected = [str(i) for i in np.ravel(model.recommend([user], n=5)[0])]
        assert items == expected, text
        return err

    for user, text in [(1, "1"), (1, "1.0"), (7, "7"), ("alice", "alice")]:
        assert served(user, text) == "", text
    err = served("bob", "bob")
    assert err.count("\n") == 1
    assert "note: user 'bob' is not in the model" in err
    assert "mu + b_i" in err
    # An unknown id of an integer model is noted as well.
    int_model = tmp_path / "int.skmf"
    joblib.dump(MFRegressor(n_components=4, max_iter=3).fit(frame), int_model)
    capsys.readouterr()
    assert main(["recommend", str(int_model), "--user", "999", "-n", "2"]) == 0
    assert "user '999' is not in the model" in capsys.readouterr().err
    assert main(["recommend", str(int_model), "--user", "3", "-n", "2"]) == 0
    assert capsys.readouterr().err == ""
