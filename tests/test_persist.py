"""Tests of the model files of skmf._persist: round trips, and refusals."""

import json
import pickle
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import skmf
from skmf import MFRegressor
from skmf._persist import FORMAT_VERSION, load_model, save_model
from skmf.datasets import make_ratings

pytestmark = pytest.mark.usefixtures("quiet_short_fits", "one_torch_thread")


@pytest.fixture(scope="module")
def frame():
    return make_ratings(n_users=30, n_items=20, n_ratings=300, random_state=0).frame


def assert_same(a, b, where="value"):
    """``a`` and ``b`` are equal, of the same types and dtypes, all the way down."""
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, np.ndarray | np.generic):
        assert a.dtype == b.dtype, (where, a.dtype, b.dtype)
        assert a.shape == b.shape, where
        if a.dtype == object:
            for k, (x, y) in enumerate(zip(a.ravel(), b.ravel())):
                assert_same(x, y, f"{where}[{k}]")
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    elif sp.issparse(a):
        assert a.shape == b.shape and a.format == b.format, where
        for part in ("data", "indices", "indptr"):
            assert_same(getattr(a, part), getattr(b, part), f"{where}.{part}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{k}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def round_trip(model, tmp_path, name="model.skmf"):
    path = tmp_path / name
    save_model(model, path)
    assert path.is_file()  # the name is kept: no '.npz' added
    loaded = load_model(path)
    assert type(loaded) is MFRegressor
    assert loaded.get_params() == model.get_params()
    assert set(vars(loaded)) == set(vars(model))
    for name, value in vars(model).items():
        assert_same(value, getattr(loaded, name), name)
    return loaded


def with_ids(frame, kind):
    data = frame.copy()
    if kind == "str":  # string ids, some with leading zeros
        data["user"] = [f"{u:03d}" for u in data["user"]]
        data["item"] = [f"isbn-{i:010d}" for i in data["item"]]
    elif kind == "mixed":  # ints and strings in one object column
        data = data.astype({"user": object, "item": object})
        data.loc[data["user"] == 0, "user"] = "alice"
        data.loc[data["item"] % 3 == 0, "item"] = "x" + data["item"].astype(str)
        data.loc[data["item"] == 1, "item"] = 1.5
    elif kind == "numpy_str":
        return (
            np.column_stack(
                [data["user"].astype(str).to_numpy(), data["item"].to_numpy()]
            ).astype(str),
            data["rating"].to_numpy(),
        )
    return data, None


@pytest.mark.parametrize("ids", ["int", "str", "mixed", "numpy_str"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_fitted(tmp_path, frame, ids, dtype):
    X, y = with_ids(frame, ids)
    model = MFRegressor(n_components=3, max_iter=3, dtype=dtype, random_state=0)
    model.fit(X, y)
    if ids == "mixed":
        assert model.users_.dtype == object and model.items_.dtype == object
        kinds = {type(v) for v in model.items_}
        assert {str, int, float} <= kinds or {str, float} <= kinds
    loaded = round_trip(model, tmp_path)
    pairs = X[:, :2] if isinstance(X, np.ndarray) else X[["user", "item"]]
    np.testing.assert_array_equal(loaded.predict(pairs), model.predict(pairs))
    unknown = 10**6 if ids == "int" else "nobody"
    users = [*model.users_[:3], unknown]
    got, expected = loaded.recommend(users, n=4), model.recommend(users, n=4)
    for a, b in zip(got, expected):
        assert_same(a, b)


@pytest.mark.parametrize("solver", ["als", "sgd"])
def test_round_trip_after_partial_fit(tmp_path, frame, solver):
    model = MFRegressor(n_components=3, max_iter=3, solver=solver, random_state=0)
    if solver == "sgd":
        model.set_params(early_stopping=True, n_iter_no_change=2)
    model.fit(frame)
    model.set_params(early_stopping=False)  # partial_fit refuses early stopping
    new = frame.iloc[:40].assign(user=frame["user"].iloc[:40] + 1000)
    model.partial_fit(new)
    loaded = round_trip(model, tmp_path)
    X = pd.concat(
        [frame[["user", "item"]], pd.DataFrame({"user": [1000, 5000], "item": [0, 5]})]
    )
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    for a, b in zip(loaded.recommend([1000, 0], n=5), model.recommend([1000, 0], n=5)):
        assert_same(a, b)
    # The loaded model keeps learning as the original does.
    more = frame.iloc[40:80]
    np.testing.assert_array_equal(
        loaded.partial_fit(more).predict(X), model.partial_fit(more).predict(X)
    )


def test_round_trip_unfitted(tmp_path):
    model = MFRegressor(n_components=7, alpha=0.5, solver="sgd", tol=np.inf)
    loaded = round_trip(model, tmp_path)
    assert not hasattr(loaded, "user_factors_")


def test_round_trip_every_supported_value(tmp_path, frame):
    # Generic over vars(model): values under new attribute names round-trip.
    model = MFRegressor(n_components=2, max_iter=2, random_state=0).fit(frame)
    mixed = [1, "a", 2.5, np.int64(3), np.float32(1.5), 2**70, True, None]
    mixed += [np.uint8(7), np.str_("s"), float("nan"), -np.inf, np.bool_(False)]
    values = {
        "none_": None,
        "flag_": True,
        "count_": -(2**80),
        "real_": 0.1,
        "specials_": (float("inf"), float("-inf"), float("nan")),
        "text_": "ünïcode ☃",
        "np_scalars_": [np.float32(0.1), np.int16(-3), np.bool_(True), np.str_("é")],
        "curve_": [0.5, 0.25, 1e-300],
        "nested_": ([1, 2], (3.0, "x"), {"a": np.arange(3)}, []),
        "dict_": {"k": 1, "nested": {"z": None}},
        "bytes_": np.array([b"ab", b"c"]),
        "ustr_": np.array([["a", "bc"], ["d", ""]]),
        "bool_": np.array([True, False]),
        "uint_": np.arange(5, dtype=np.uint32).reshape(5, 1),
        "complex_": np.array([1 + 2j]),
        "dates_": np.array(["2024-01-02"], dtype="datetime64[D]"),
        "empty_": np.empty((0, 3), dtype=np.float16),
        "obj_str_": np.array(["a", "b"], dtype=object),
        "obj_int_": np.array([1, 2**64, -5], dtype=object),
        "obj_float_": np.array([0.5, np.nan], dtype=object),
        "obj_mixed_": np.array(mixed, dtype=object),
        "obj_2d_": np.array([["a", 1], [2.0, "b"]], dtype=object),
        "obj_empty_": np.empty((0,), dtype=object),
        "csr_": sp.random(4, 5, density=0.4, format="csr", random_state=0),
        "csc_": sp.csc_matrix(np.eye(3, dtype=bool)),
        "csr_array_": sp.csr_array(np.arange(6.0).reshape(2, 3)),
    }
    for name, value in values.items():
        setattr(model, name, value)
    loaded = round_trip(model, tmp_path)
    for name in values:
        assert_same(getattr(model, name), getattr(loaded, name), name)


def test_torch_params_saved_as_strings(tmp_path):
    model = MFRegressor(device=torch.device("cpu"), dtype=torch.float64)
    save_model(model, tmp_path / "m.skmf")
    loaded = load_model(tmp_path / "m.skmf")
    assert loaded.device == "cpu" and loaded.dtype == "float64"
    model = MFRegressor(dtype=np.float64)
    save_model(model, tmp_path / "m.skmf")
    assert load_model(tmp_path / "m.skmf").dtype == "float64"


def test_header_is_plain_json(tmp_path, frame):
    model = MFRegressor(n_components=2, max_iter=2, random_state=0).fit(frame)
    save_model(model, tmp_path / "m.skmf")
    with np.load(tmp_path / "m.skmf", allow_pickle=False) as archive:
        header = json.loads(archive["header"].tobytes().decode("utf-8"))
        assert all(archive[name].dtype != object for name in archive.files)
    assert header["format"] == "skmf-model"
    assert header["format_version"] == FORMAT_VERSION
    assert header["skmf_version"] == skmf.__version__
    assert header["class"] == "MFRegressor"
    assert header["params"] == model.get_params()
    assert set(header["attributes"]) == set(vars(model)) - set(model.get_params())


# ------------------------------------------------------------- save errors
class Opaque:
    pass


@pytest.mark.parametrize(
    "value, type_name",
    [
        ({1, 2}, "set"),
        (lambda: 0, "function"),
        (Opaque(), "Opaque"),
        (torch.zeros(2), "Tensor"),
        (np.array([[1, 2], "a"], dtype=object), "list"),
        (np.array([Opaque()], dtype=object), "Opaque"),
        ({1: "a"}, "keys"),
        (sp.coo_matrix(np.eye(2)), "coo_matrix"),
        (np.zeros(2, dtype=[("a", "i4")]), "ndarray of dtype"),
    ],
)
def test_save_refuses_unsupported_attribute(tmp_path, frame, value, type_name):
    model = MFRegressor(n_components=2, max_iter=2).fit(frame)
    model._state_ = value
    path = tmp_path / "m.skmf"
    with pytest.raises(
        TypeError, match=rf"'_state_'.*{type_name}|{type_name}.*_state_"
    ):
        save_model(model, path)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_save_refuses_bad_params_and_other_objects(tmp_path):
    model = MFRegressor(random_state=np.random.RandomState(0))
    with pytest.raises(TypeError, match="random_state.*RandomState"):
        save_model(model, tmp_path / "m.skmf")
    with pytest.raises(TypeError, match="MFRegressor.*got an object of type dict"):
        save_model({}, tmp_path / "m.skmf")


def test_failed_save_keeps_the_previous_file(tmp_path, frame):
    model = MFRegressor(n_components=2, max_iter=2).fit(frame)
    path = tmp_path / "m.skmf"
    save_model(model, path)
    before = path.read_bytes()
    model._state_ = {1, 2}
    with pytest.raises(TypeError):
        save_model(model, path)
    assert path.read_bytes() == before


# ------------------------------------------------------------- load errors
def _touch(path):
    """Create ``path``: what a malicious pickle below would run on load."""
    open(path, "w").close()
    return 0


class Payload:
    """Unpickling this object creates a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (_touch, (self.marker,))


@pytest.mark.parametrize("writer", ["pickle", "joblib"])
def test_load_refuses_pickles_without_running_them(tmp_path, writer):
    def craft(name):
        path, marker = tmp_path / f"{name}.skmf", tmp_path / f"{name}.ran"
        if writer == "pickle":
            path.write_bytes(pickle.dumps(Payload(marker)))
        else:
            joblib.dump(Payload(marker), path)
        return path, marker

    # The payload works: an ordinary unpickling creates its marker.
    control, control_marker = craft("control")
    joblib.load(control)
    assert control_marker.exists()

    path, marker = craft("model")
    with pytest.raises(ValueError, match="is not an skmf model file.*pickle"):
        load_model(path)
    assert not marker.exists()


def _npz_with(tmp_path, name, header, **arrays):
    path = tmp_path / name
    if header is not None:
        text = header if isinstance(header, str) else json.dumps(header)
        arrays["header"] = np.frombuffer(text.encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)  # allow_pickle=True here: object arrays pickled
    return path


def _header(**changes):
    header = {
        "format": "skmf-model",
        "format_version": FORMAT_VERSION,
        "skmf_version": skmf.__version__,
        "class": "MFRegressor",
        "params": {},
        "attributes": {"a_": {"kind": "ndarray", "member": "a0"}},
    }
    header.update(changes)
    return header


def test_load_refuses_object_arrays_without_running_them(tmp_path):
    def craft(name):
        marker = tmp_path / f"{name}.ran"
        payload = np.array([Payload(marker), 1], dtype=object)
        return _npz_with(tmp_path, f"{name}.skmf", _header(), a0=payload), marker

    control, control_marker = craft("control")
    with np.load(control, allow_pickle=True) as archive:
        archive["a0"]
    assert control_marker.exists()

    path, marker = craft("model")
    with pytest.raises(ValueError, match="'a0' is an object array.*refused"):
        load_model(path)
    assert not marker.exists()
    # Also when the header does not mention the member.
    path = _npz_with(
        tmp_path, "extra.skmf", _header(attributes={}), a9=np.array([None, 1])
    )
    with pytest.raises(ValueError, match="'a9' is an object array"):
        load_model(path)


def _not_npz_files(tmp_path):
    csv = tmp_path / "ratings.csv"
    csv.write_text("user,item,rating\n1,2,3\n")
    npy = tmp_path / "array.npy"
    np.save(npy, np.arange(3))
    empty = tmp_path / "empty.skmf"
    empty.write_bytes(b"")
    zipped = tmp_path / "other.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return {"csv": csv, "npy": npy, "empty": empty, "zip": zipped}


@pytest.mark.parametrize("kind", ["csv", "npy", "empty", "zip"])
def test_load_refuses_other_files(tmp_path, kind):
    path = _not_npz_files(tmp_path)[kind]
    with pytest.raises(ValueError, match=f"{path.name} is not an skmf model file"):
        load_model(path)


@pytest.mark.parametrize(
    "header, arrays, match",
    [
        (None, {"a0": np.arange(2)}, "without an skmf header"),
        ("{not json", {}, "not valid JSON"),
        ('["a list"]', {}, "does not name the skmf format"),
        (_header(format="other"), {}, "does not name the skmf format"),
        (_header(format_version=99), {}, "format version 99.*reads version 1"),
        (_header(format_version="1"), {}, "format version '1'"),
        (_header(**{"class": "Pipeline"}), {}, "class 'Pipeline'"),
        (_header(params=[]), {}, "lacks the parameters"),
        (_header(params={"frobnicate": 1}), {}, "does not have: 'frobnicate'"),
        (_header(params={"alpha": [1]}), {}, "parameter 'alpha' is malformed"),
        (_header(), {}, "missing array member 'a0'"),
        (
            _header(attributes={"x_": {"kind": "pickle", "value": "gASV"}}),
            {},
            "unknown kind 'pickle'",
        ),
        (_header(attributes={"x_": "text"}), {}, "'x_' is malformed"),
        (_header(attributes={"x_": {"kind": "int", "value": "1"}}), {}, "int value"),
        (
            _header(attributes={"x_": {"kind": "float", "value": "1e3"}}),
            {},
            "float value",
        ),
        (
            _header(
                attributes={
                    "x_": {"kind": "object_array", "shape": [1], "items": [["os", 1]]}
                }
            ),
            {},
            "unknown type tag 'os'",
        ),
        (
            _header(
                attributes={
                    "x_": {"kind": "object_array", "shape": [2], "items": [["int", 1]]}
                }
            ),
            {},
            "object array 'x_' is malformed|attribute 'x_' is malformed",
        ),
        (
            _header(attributes={"predict": {"kind": "none"}}),
            {},
            "attribute 'predict', which is not data",
        ),
        (
            _header(attributes={"__class__": {"kind": "str", "value": "x"}}),
            {},
            "attribute '__class__', which is not data",
        ),
        (
            _header(attributes={"x_": {"kind": "ndarray", "member": "header"}}),
            {},
            "missing array member 'header'",
        ),
    ],
)
def test_load_refuses_malformed_files(tmp_path, header, arrays, match):
    path = _npz_with(tmp_path, "bad.skmf", header, **arrays)
    with pytest.raises(ValueError, match=match):
        load_model(path)


def test_load_refuses_a_header_that_is_not_bytes(tmp_path):
    path = tmp_path / "bad.skmf"
    with open(path, "wb") as f:
        np.savez(f, header=np.array(["{}"]))
    with pytest.raises(ValueError, match="header is not a uint8 array"):
        load_model(path)


def test_load_warns_on_another_skmf_version(tmp_path):
    path = _npz_with(
        tmp_path, "old.skmf", _header(skmf_version="0.0.1"), a0=np.arange(3)
    )
    with pytest.warns(UserWarning, match="written by skmf 0.0.1"):
        model = load_model(path)
    assert_same(model.a_, np.arange(3))


def test_loaded_file_is_closed(tmp_path, frame):
    # The archive is read completely, then closed (the file can be replaced).
    model = MFRegressor(n_components=2, max_iter=2).fit(frame)
    path = tmp_path / "m.skmf"
    save_model(model, path)
    loaded = load_model(path)
    path.unlink()
    assert loaded.predict(frame[["user", "item"]][:1]).shape == (1,)
