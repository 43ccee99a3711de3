"""Tests of the ``skmf`` command (skmf._cli), run in-process through ``main``."""

import gzip
import importlib.util
import os
import pickle
import re
import subprocess
import sys
import tempfile

import joblib
import numpy as np
import pandas as pd
import pytest

import skmf._cli
from skmf import MFRegressor
from skmf._cli import main
from skmf._persist import load_model, save_model
from skmf.datasets import make_ratings

FAST = ["--n-components", "4", "--max-iter", "3", "--random-state", "0"]

pytestmark = pytest.mark.usefixtures("no_download", "one_torch_thread")


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


def test_demo_without_data_falls_back_to_synthetic(capsys):
    # No --data-home: the default data home (SKMF_DATA, an empty folder here).
    assert main(["demo", "--n-ratings", "2000"]) == 0
    out = capsys.readouterr().out
    assert f"MovieLens 100K not found in {os.environ['SKMF_DATA']}" in out
    assert "Data: synthetic" in out


def test_demo_explicit_data_home_without_data_is_an_error(capsys, tmp_path):
    # It used to fall back to synthetic data without a word.
    missing = tmp_path / "nonexistent"
    status = main(["demo", "--data-home", str(missing), "--n-ratings", "100"])
    line = one_line_error(capsys, status)
    assert status == 2
    assert str(missing) in line and "folder not found" in line
    assert "--synthetic" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    status = main(["demo", "--data-home", str(empty), "--n-ratings", "100"])
    line = one_line_error(capsys, status)
    assert status == 1
    assert f"MovieLens 100K (with its split u1) not found in --data-home {empty}" in (
        line
    )
    # --synthetic does not look for the data.
    argv = ["demo", "--data-home", str(missing), "--synthetic", "--n-ratings", "100"]
    assert main(argv) == 0


@pytest.mark.movielens
def test_demo_movielens(capsys, movielens_dir):
    assert main(["demo", "--data-home", str(movielens_dir)]) == 0
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
    assert "looks like" not in capsys.readouterr().err
    model = load_model(output)
    assert isinstance(model, MFRegressor)
    assert model.n_components == 4 and model.n_iter_ <= 3
    assert model.predict(pd.DataFrame({"user": [0], "item": [0]})).shape == (1,)

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
    assert load_model(output).users_.shape == (40,)


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
    model = load_model(tmp_path / "b")
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


def test_recommend_with_method(capsys, monkeypatch, model_path):
    calls = []

    def recommend(self, users, n=10):
        calls.append((users, n))
        items = np.asarray(self.items_[:n])
        return items, np.linspace(5, 4, len(items))

    monkeypatch.setattr(MFRegressor, "recommend", recommend)
    capsys.readouterr()
    assert main(["recommend", str(model_path), "--user", "3", "-n", "4"]) == 0
    out = capsys.readouterr().out
    assert calls == [(3, 4)]
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
    assert f"{model_path} is not an skmf model file" in line


def test_recommend_real_method(capsys, model_path):
    capsys.readouterr()
    assert main(["recommend", str(model_path), "--user", "0", "-n", "3"]) == 0
    assert capsys.readouterr().out.strip()


def test_recommend_object_user_ids(capsys, tmp_path, frame):
    # users_ of object dtype: ints mixed with a string id.
    data = frame.astype({"user": object})
    data.loc[data["user"] == 0, "user"] = "alice"
    model = MFRegressor(n_components=4, max_iter=3, random_state=0).fit(data)
    assert model.users_.dtype == object and 1 in list(model.users_)
    path = tmp_path / "model.skmf"
    save_model(model, path)

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
    save_model(MFRegressor(n_components=4, max_iter=3).fit(frame), int_model)
    capsys.readouterr()
    assert main(["recommend", str(int_model), "--user", "999", "-n", "2"]) == 0
    assert "user '999' is not in the model" in capsys.readouterr().err
    assert main(["recommend", str(int_model), "--user", "3", "-n", "2"]) == 0
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------- model files
def test_fit_writes_a_file_that_loads_without_pickle(capsys, tmp_path, csv_path):
    output = tmp_path / "model.skmf"
    assert main(["fit", str(csv_path), *FAST, "-o", str(output)]) == 0
    with np.load(output, allow_pickle=False) as archive:  # no pickled member
        assert "header" in archive.files
    with pytest.raises(pickle.UnpicklingError):
        joblib.load(output)  # not a pickle any more
    model = load_model(output)
    assert model.n_components == 4 and len(model.users_) == 40


class Payload:
    """Unpickling this object creates a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", ["fitted", "payload"])
def test_recommend_refuses_pickles(capsys, tmp_path, frame, kind):
    path, marker = tmp_path / "model.joblib", tmp_path / "ran"
    if kind == "fitted":  # what 'skmf fit' used to write
        joblib.dump(MFRegressor(n_components=2, max_iter=2).fit(frame), path)
    else:
        path.write_bytes(pickle.dumps(Payload(marker)))
    status = main(["recommend", str(path), "--user", "1"])
    line = one_line_error(capsys, status)
    assert status == 1
    assert f"{path} is not an skmf model file" in line
    assert "skmf fit" in line
    assert not marker.exists()


def test_recommend_refuses_a_csv_as_model(capsys, csv_path):
    # It used to print 'IndexError: pop from empty list'.
    line = one_line_error(capsys, main(["recommend", str(csv_path), "--user", "1"]))
    assert f"{csv_path} is not an skmf model file" in line
    assert "IndexError" not in line


def test_recommend_refuses_an_unfitted_model(capsys, tmp_path):
    path = tmp_path / "m.skmf"
    save_model(MFRegressor(), path)
    line = one_line_error(capsys, main(["recommend", str(path), "--user", "1"]))
    assert "not fitted" in line


# -------------------------------------------------------------------- ids
def test_ids_keep_leading_zeros(capsys, tmp_path):
    # '001' and '1' were one user; ISBN 0195153448 printed as 195153448.
    path = tmp_path / "books.csv"
    path.write_text(
        "user,item,rating\n"
        "001,0195153448,5\n1,0195153448,3\n001,0002005018,4\n"
        "1,0060973129,2\n2,0002005018,1\n"
    )
    output = tmp_path / "m.skmf"
    assert main(["fit", str(path), *FAST, "-o", str(output)]) == 0
    assert "5 ratings (3 users, 3 items)" in capsys.readouterr().out
    model = load_model(output)
    assert sorted(model.users_) == ["001", "1", "2"]
    assert sorted(model.items_) == ["0002005018", "0060973129", "0195153448"]
    assert main(["recommend", str(output), "--user", "2", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert "0195153448" in out and " 195153448" not in out
    assert main(["recommend", str(output), "--user", "001"]) == 0
    assert "Top 1 items for user 001" in capsys.readouterr().out


def test_plain_integer_ids_stay_integers(capsys, tmp_path, csv_path):
    output = tmp_path / "m.skmf"
    assert main(["fit", str(csv_path), *FAST, "-o", str(output)]) == 0
    model = load_model(output)
    assert model.users_.dtype == np.int64 and model.items_.dtype == np.int64
    argv = ["fit", str(csv_path), "--string-ids", *FAST, "-o", str(output)]
    assert main(argv) == 0
    model = load_model(output)
    assert model.users_.dtype == object and "10" in set(model.users_)
    # Spaces around ids are dropped; '+1' and '-0' are not plainly written.
    path = tmp_path / "spaced.csv"
    path.write_text("user,item,rating\n 1 ,7,5\n2, 8 ,3\n3,+1,4\n")
    assert main(["fit", str(path), *FAST, "-o", str(output)]) == 0
    model = load_model(output)
    assert model.users_.tolist() == [1, 2, 3]
    assert model.items_.dtype == object and set(model.items_) == {"7", "8", "+1"}


# ---------------------------------------------------------------- headers
def test_file_without_header_suggests_no_header(capsys, tmp_path, frame):
    path = tmp_path / "ratings.csv"
    frame.to_csv(path, index=False, header=False)
    line = one_line_error(capsys, main(["fit", str(path), "-o", str(tmp_path / "m")]))
    assert "looks like data, not a header" in line and "--no-header" in line
    argv = ["fit", str(path), "--no-header", *FAST, "-o", str(tmp_path / "m")]
    assert main(argv) == 0
    assert "600 ratings" in capsys.readouterr().out
    # Columns by position, without --no-header: the first rating was lost.
    argv = ["fit", str(path), "--user-col", "0", "--item-col", "1"]
    argv += ["--rating-col", "2", *FAST, "-o", str(tmp_path / "m")]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "599 ratings" in out
    assert err.startswith("skmf: warning: the first line of")
    assert "looks like data; if the file has no header, add --no-header" in err


def test_no_header_on_a_file_with_a_header_says_so(capsys, tmp_path, csv_path):
    argv = ["fit", str(csv_path), "--no-header", "-o", str(tmp_path / "m")]
    line = one_line_error(capsys, main(argv))
    assert "first line" in line and "(user, item, rating)" in line
    assert "looks like a header" in line and "drop --no-header" in line
    # Columns given by name with --no-header.
    line = one_line_error(capsys, main([*argv, "--user-col", "user"]))
    assert "looks like a header" in line and "drop --no-header" in line


def test_header_names_with_spaces(capsys, tmp_path, frame):
    # A column named ' item' (after ', ') was not found.
    path = tmp_path / "ratings.csv"
    lines = ["user, item , rating"]
    lines += [f"{u}, {i}, {r}" for u, i, r in frame.itertuples(index=False)]
    path.write_text("\n".join(lines) + "\n")
    output = tmp_path / "m.skmf"
    assert main(["fit", str(path), *FAST, "-o", str(output)]) == 0
    assert "600 ratings (40 users, 30 items)" in capsys.readouterr().out
    argv = ["fit", str(path), "--item-col", " item", *FAST, "-o", str(output)]
    assert main(argv) == 0
    assert load_model(output).items_.dtype == np.int64


# ----------------------------------------------------- usage error status
@pytest.mark.parametrize("command", ["fit", "evaluate"])
@pytest.mark.parametrize(
    "extra", [["--alpha", "-1"], ["--n-components", "0"], ["--max-iter", "-1"]]
)
def test_invalid_parameter_values_exit_2(
    capsys, monkeypatch, tmp_path, csv_path, command, extra
):
    def load(args):
        pytest.fail("the ratings were read before checking the parameters")

    monkeypatch.setattr(skmf._cli, "_load_ratings", load)
    argv = [command, str(csv_path), *extra]
    if command == "fit":
        argv += ["-o", str(tmp_path / "m.skmf")]
    status = main(argv)
    line = one_line_error(capsys, status)
    assert status == 2
    assert f"'{extra[0][2:].replace('-', '_')}' parameter of MFRegressor" in line


def test_value_error_of_fit_is_one_line_status_1(capsys, monkeypatch, tmp_path):
    # e.g. the memory guard of fit for --n-components 100000000.
    def fit(self, X, y=None, sample_weight=None):
        raise ValueError(
            "n_components=100000000 needs 2.9 TiB for the factors;\nreduce n_components"
        )

    monkeypatch.setattr(MFRegressor, "fit", fit)
    path = tmp_path / "ratings.csv"
    path.write_text("user,item,rating\n1,1,5\n2,2,3\n")
    output = tmp_path / "m.skmf"
    argv = ["fit", str(path), "--n-components", "100000000", "-o", str(output)]
    status = main(argv)
    line = one_line_error(capsys, status)
    assert status == 1
    assert "n_components=100000000 needs 2.9 TiB" in line
    assert not output.exists()
    assert one_line_error(capsys, main(["evaluate", str(path), "--cv", "2"]))


# ---------------------------------------------------- suspicious ratings
def test_warns_on_a_rating_column_of_times_or_ids(capsys, tmp_path, frame):
    data = frame.assign(timestamp=978300760 + np.arange(len(frame)) * 7)
    path = tmp_path / "ratings.csv"
    data.to_csv(path, index=False)
    output = str(tmp_path / "m.skmf")

    def warning(*extra):
        assert main(["fit", str(path), *extra, *FAST, "-o", output]) == 0
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if "looks like" in line]
        assert len(lines) <= 1
        return lines[0] if lines else None

    line = warning("--rating-col", "timestamp")
    assert warning("--rating-col", "3") == line
    assert line.startswith("skmf: warning: the rating column 'timestamp'")
    assert "--rating-col" in line
    assert warning() is None
    # By values, whatever the name: times, and a different integer per row.
    data.rename(columns={"timestamp": "t"}).to_csv(path, index=False)
    assert "values such as 9783" in warning("--rating-col", "t")
    data.assign(t=np.arange(len(data)) * 3 + 5000).to_csv(path, index=False)
    assert "a different one on every row" in warning("--rating-col", "t")


# --------------------------------------------------------- output checks
def test_output_under_a_file_refused_before_reading(
    capsys, monkeypatch, tmp_path, csv_path
):
    def load(args):
        pytest.fail("the ratings were read before checking --output")

    monkeypatch.setattr(skmf._cli, "_load_ratings", load)
    line = one_line_error(
        capsys, main(["fit", str(csv_path), "-o", str(csv_path / "m.skmf")])
    )
    assert f"{csv_path} is not a folder" in line


def test_unwritable_folder_refused_before_reading(
    capsys, monkeypatch, tmp_path, csv_path
):
    def load(args):
        pytest.fail("the ratings were read before checking --output")

    monkeypatch.setattr(skmf._cli, "_load_ratings", load)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    output = tmp_path / "m.skmf"
    line = one_line_error(capsys, main(["fit", str(csv_path), "-o", str(output)]))
    assert f"cannot write {output}" in line and "Permission denied" in line
    assert "-o/--output" in line


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="needs a user whom folder permissions apply to (not root)",
)
def test_output_in_a_read_only_folder(capsys, tmp_path, csv_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        argv = ["fit", str(csv_path), "-o", str(folder / "m.skmf")]
        line = one_line_error(capsys, main(argv))
    finally:
        folder.chmod(0o755)
    assert "cannot write" in line and "no permission" in line
    assert list(folder.iterdir()) == []
