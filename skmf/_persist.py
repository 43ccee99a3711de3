"""Model files that cannot run code: a fitted MFRegressor as one ``.npz`` file.

A pickle (and joblib's files, which are pickles) can run any code when it is
loaded. The files written here hold only data:

- every NumPy array of the estimator, as an ``.npy`` member of an ``.npz``
  archive written with :func:`numpy.savez`, read back with
  ``np.load(..., allow_pickle=False)``;
- a JSON header, member ``header.npy`` (a uint8 array of its UTF-8 bytes),
  with the format name and version, the skmf version, the class name, the
  estimator's ``get_params()`` and, for every other entry of ``vars(model)``,
  a typed description of its value (which names the array members).

The conversion is generic over ``vars(model)``: no attribute name is written
here. Supported values are None, bool, int, float, str, numpy scalars and
arrays of any non-object dtype, object arrays whose elements are str, int,
float or None (stored in the JSON with a type tag per element so that loading
gives back the same values, types and dtype), SciPy CSR/CSC sparse matrices and
arrays, and lists, tuples and str-keyed dicts of these. Anything else is
refused with a TypeError when saving.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load_model", "save_model"]

#: The ``format`` field of the header.
FORMAT_NAME = "skmf-model"
#: The ``format_version`` of the files written; ``load_model`` reads this one.
FORMAT_VERSION = 1
#: Name of the member holding the JSON header (the archive adds ``.npy``).
_HEADER = "header"
#: Array kinds stored as ``.npy`` members: everything but objects and records.
_ARRAY_KINDS = "biufcUSMm"
_SPARSE_FORMATS = ("csr", "csc")


# ------------------------------------------------------------------ saving
class _Writer:
    """Turns values into JSON nodes, collecting the arrays they refer to."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, value: np.ndarray) -> str:
        name = f"a{len(self.arrays)}"
        self.arrays[name] = value
        return name

    def encode(self, value, where: str) -> dict:
        # numpy scalars first: np.float64 is also a Python float.
        if value is None:
            return {"kind": "none"}
        if isinstance(value, np.generic):
            if value.dtype.kind not in _ARRAY_KINDS:
                raise _unsupported(where, value)
            return {"kind": "numpy_scalar", "member": self.array(np.asarray(value))}
        if isinstance(value, bool):
            return {"kind": "bool", "value": value}
        if isinstance(value, int):
            return {"kind": "int", "value": int(value)}
        if isinstance(value, float):
            return {"kind": "float", "value": _float_to_json(value)}
        if isinstance(value, str):
            return {"kind": "str", "value": str(value)}
        if type(value) in (list, tuple):
            return {
                "kind": type(value).__name__,
                "items": [self.encode(v, f"{where}[{k}]") for k, v in enumerate(value)],
            }
        if type(value) is dict:
            if not all(isinstance(key, str) for key in value):
                raise TypeError(
                    f"Cannot save {where}: a dict with keys that are not all str "
                    "is not supported in skmf model files."
                )
            return {
                "kind": "dict",
                "items": {
                    key: self.encode(v, f"{where}[{key!r}]") for key, v in value.items()
                },
            }
        if type(value) is np.ndarray:
            if value.dtype.kind in _ARRAY_KINDS and value.dtype.fields is None:
                return {"kind": "ndarray", "member": self.array(value)}
            if value.dtype.kind == "O":
                return {
                    "kind": "object_array",
                    "shape": list(value.shape),
                    "items": [_tag(v, where) for v in value.ravel(order="C")],
                }
            raise _unsupported(where, value)
        if sp.issparse(value) and value.format in _SPARSE_FORMATS:
            if value.dtype.kind not in _ARRAY_KINDS:
                raise _unsupported(where, value)
            return {
                "kind": "sparse",
                "format": value.format,
                "container": _container(value),
                "shape": [int(n) for n in value.shape],
                "data": self.array(np.asarray(value.data)),
                "indices": self.array(np.asarray(value.indices)),
                "indptr": self.array(np.asarray(value.indptr)),
            }
        raise _unsupported(where, value)


def _unsupported(where: str, value) -> TypeError:
    kind = type(value).__name__
    if isinstance(value, np.ndarray | np.generic) or sp.issparse(value):
        kind += f" of dtype {value.dtype}"
        if sp.issparse(value):
            kind += f" in {value.format.upper()} format"
    return TypeError(
        f"Cannot save {where} of type {kind} in an skmf model file: it holds "
        "only None, bool, int, float, str, NumPy arrays and scalars (object "
        "arrays of str, int or float only), SciPy CSR/CSC matrices, and lists, "
        "tuples and str-keyed dicts of these. Use pickle or joblib for other "
        "state (only load pickles you trust: loading one runs code)."
    )


def _container(value) -> str:
    """'array' for csr_array/csc_array, 'matrix' for csr_matrix/csc_matrix."""
    return "array" if type(value).__name__.endswith("_array") else "matrix"


def _float_to_json(value: float):
    """A float as JSON: a number, or 'nan'/'inf'/'-inf' (strict JSON has none)."""
    value = float(value)
    return value if math.isfinite(value) else repr(value)


def _tag(value, where: str) -> list:
    """One element of an object array as ``[type tag, JSON value]``.

    Tags: ``"none"``, ``"str"``, ``"bool"``, ``"int"``, ``"float"`` for the
    Python types, and a NumPy dtype name (``"int64"``, ``"float32"``,
    ``"str"`` ...) prefixed by ``"np."`` for NumPy scalars.
    """
    if value is None:
        return ["none", None]
    if isinstance(value, np.generic):
        kind = value.dtype.kind
        if kind in "iu":
            return [f"np.{value.dtype.name}", int(value)]
        if kind == "f":
            return [f"np.{value.dtype.name}", _float_to_json(value)]
        if kind == "b":
            return ["np.bool", bool(value)]
        if kind == "U":
            return ["np.str", str(value)]
    elif isinstance(value, bool):
        return ["bool", value]
    elif isinstance(value, int):
        return ["int", int(value)]
    elif isinstance(value, float):
        return ["float", _float_to_json(value)]
    elif isinstance(value, str):
        return ["str", str(value)]
    raise TypeError(
        f"Cannot save {where}: an object array holding a value of type "
        f"{type(value).__name__} ({value!r:.40}); skmf model files store object "
        "arrays of str, int, float, bool or None only."
    )


def _param_to_json(name: str, value):
    """A ``get_params()`` value as plain JSON."""
    import torch

    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    if isinstance(value, np.dtype) or (
        isinstance(value, type) and issubclass(value, np.generic)
    ):
        return np.dtype(value).name
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    raise TypeError(
        f"Cannot save the parameter {name}={value!r:.60} of type "
        f"{type(value).__name__} in an skmf model file: parameters must be None, "
        "bool, int, float, str, or a torch device or dtype. Set it to such a "
        f"value (e.g. model.set_params({name}=...)) before saving."
    )


def save_model(model, path) -> None:
    """Save a fitted (or unfitted) MFRegressor to a file that cannot run code.

    Parameters
    ----------
    model : MFRegressor
        The estimator to save.

    path : str or path-like
        The file to write (replaced if it exists). The suffix is not changed;
        ``.skmf`` is recommended.

    Raises
    ------
    TypeError
        If ``model`` is not an MFRegressor, or a parameter or attribute holds
        a value of a type the format does not store (the message names it).
    """
    from skmf import __version__
    from skmf._estimator import MFRegressor

    if type(model) is not MFRegressor:
        raise TypeError(
            "save_model saves MFRegressor estimators; got an object of type "
            f"{type(model).__name__}. Use pickle or joblib for other objects."
        )
    params = model.get_params(deep=False)
    writer = _Writer()
    attributes = {}
    for name, value in vars(model).items():
        if name in params:
            continue
        attributes[name] = writer.encode(value, f"attribute {name!r}")
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "skmf_version": __version__,
        "class": type(model).__name__,
        "params": {name: _param_to_json(name, v) for name, v in params.items()},
        "attributes": attributes,
    }
    text = json.dumps(header, allow_nan=False, ensure_ascii=False)
    arrays = {_HEADER: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    arrays.update(writer.arrays)
    path = Path(os.fspath(path))
    # Write next to the target, then rename: a failed save leaves any previous
    # file in place.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------- loading
class _Reader:
    """Turns JSON nodes back into values, taking arrays from the archive."""

    def __init__(self, arrays: dict[str, np.ndarray], path):
        self.arrays = arrays
        self.path = path

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{self.path} is not a valid skmf model file: {what}.")

    def member(self, node: dict, key: str = "member") -> np.ndarray:
        name = node.get(key)
        if not isinstance(name, str) or name == _HEADER or name not in self.arrays:
            raise self.fail(f"it refers to a missing array member {name!r}")
        return self.arrays[name]

    def decode(self, node, where: str):
        if not isinstance(node, dict) or not isinstance(node.get("kind"), str):
            raise self.fail(f"the value of {where} is malformed")
        kind = node["kind"]
        if kind == "none":
            return None
        if kind in ("bool", "int", "float", "str"):
            return self.scalar(kind, node.get("value"), where)
        if kind == "numpy_scalar":
            value = self.member(node)
            if value.ndim != 0:
                raise self.fail(f"the scalar {where} is not 0-dimensional")
            return value[()]
        if kind in ("list", "tuple"):
            items = node.get("items")
            if not isinstance(items, list):
                raise self.fail(f"the {kind} {where} has no list of items")
            values = [self.decode(v, f"{where}[{k}]") for k, v in enumerate(items)]
            return values if kind == "list" else tuple(values)
        if kind == "dict":
            items = node.get("items")
            if not isinstance(items, dict):
                raise self.fail(f"the dict {where} has no items")
            return {k: self.decode(v, f"{where}[{k!r}]") for k, v in items.items()}
        if kind == "ndarray":
            return self.member(node)
        if kind == "object_array":
            return self.object_array(node, where)
        if kind == "sparse":
            return self.sparse(node, where)
        raise self.fail(
            f"{where} has a value of unknown kind {kind!r} (written by a newer "
            "skmf? upgrade skmf to read it)"
        )

    def scalar(self, kind: str, value, where: str):
        types = {"bool": bool, "int": int, "float": (int, float, str), "str": str}
        if not isinstance(value, types[kind]) or (
            kind != "bool" and isinstance(value, bool)
        ):
            raise self.fail(f"the {kind} value of {where} is {value!r}")
        if kind == "float":
            return self.to_float(value, where)
        return value

    def to_float(self, value, where: str) -> float:
        if isinstance(value, str) and value not in ("nan", "inf", "-inf"):
            raise self.fail(f"the float value of {where} is {value!r}")
        return float(value)

    def object_array(self, node: dict, where: str) -> np.ndarray:
        shape, items = node.get("shape"), node.get("items")
        if not (
            isinstance(shape, list)
            and all(isinstance(n, int) and n >= 0 for n in shape)
            and isinstance(items, list)
            and len(items) == math.prod(shape)
        ):
            raise self.fail(f"the object array {where} is malformed")
        out = np.empty(len(items), dtype=object)
        for k, item in enumerate(items):
            out[k] = self.untag(item, f"{where}[{k}]")
        return out.reshape(shape)

    def untag(self, item, where: str):
        if not (isinstance(item, list) and len(item) == 2):
            raise self.fail(f"the element {where} is malformed")
        tag, value = item
        if tag == "none" and value is None:
            return None
        if tag in ("bool", "int", "float", "str"):
            return self.scalar(tag, value, where)
        if tag == "np.bool" and isinstance(value, bool):
            return np.bool_(value)
        if tag == "np.str" and isinstance(value, str):
            return np.str_(value)
        if isinstance(tag, str) and tag.startswith("np."):
            try:
                dtype = np.dtype(tag[3:])
            except TypeError:
                dtype = None
            if dtype is not None and dtype.kind in "iu":
                if isinstance(value, int) and not isinstance(value, bool):
                    try:
                        return dtype.type(value)
                    except OverflowError:
                        pass
            elif dtype is not None and dtype.kind == "f":
                if isinstance(value, int | float | str) and not isinstance(value, bool):
                    return dtype.type(self.to_float(value, where))
        raise self.fail(f"the element {where} has an unknown type tag {tag!r}")

    def sparse(self, node: dict, where: str):
        fmt, container, shape = (node.get(k) for k in ("format", "container", "shape"))
        if (
            fmt not in _SPARSE_FORMATS
            or container not in ("matrix", "array")
            or not (
                isinstance(shape, list)
                and len(shape) == 2
                and all(isinstance(n, int) and n >= 0 for n in shape)
            )
        ):
            raise self.fail(f"the sparse matrix {where} is malformed")
        parts = tuple(self.member(node, key) for key in ("data", "indices", "indptr"))
        cls = getattr(sp, f"{fmt}_{container}")
        try:
            return cls(parts, shape=tuple(shape))
        except (ValueError, TypeError) as exc:
            raise self.fail(f"the sparse matrix {where} is invalid ({exc})") from None


def _param_from_json(name: str, value, reader: _Reader):
    if isinstance(value, dict) and set(value) == {"float"}:
        return reader.to_float(value["float"], f"parameter {name!r}")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise reader.fail(f"the parameter {name!r} is malformed")


def _read_archive(path: Path) -> dict[str, np.ndarray]:
    """Every member of the archive, read without unpickling anything."""
    not_model = f"{path} is not an skmf model file"
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    # np.load reads a file that starts so as an .npz archive, never as a pickle.
    if magic != b"PK\x03\x04" or not zipfile.is_zipfile(path):
        raise ValueError(
            f"{not_model} (it is not an .npz/zip archive; pickle and joblib files "
            "are not read, as loading them can run code)"
        )
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for name in archive.files:
                try:
                    value = archive[name]
                except ValueError as exc:
                    if "allow_pickle" not in str(exc):
                        raise
                    raise ValueError(
                        f"{not_model}: its member {name!r} is an object array, "
                        "which only pickle can read; it is refused because "
                        "unpickling can run code"
                    ) from None
                if not isinstance(value, np.ndarray):  # a member that is not .npy
                    raise ValueError(
                        f"{not_model}: its member {name!r} is not a NumPy array"
                    )
                arrays[name] = value
    except ValueError as exc:
        if str(exc).startswith(not_model):
            raise
        raise ValueError(f"{not_model}: {exc}") from None
    except Exception as exc:  # zipfile raises many types on damaged archives
        raise ValueError(
            f"{not_model}: cannot read it ({type(exc).__name__}: {exc})"
        ) from None
    return arrays


def _read_header(arrays: dict[str, np.ndarray], path: Path) -> dict:
    not_model = f"{path} is not an skmf model file"
    raw = arrays.get(_HEADER)
    if raw is None:
        raise ValueError(f"{not_model} (an .npz archive without an skmf header)")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"{not_model}: its header is not a uint8 array")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{not_model}: its header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ValueError(f"{not_model}: its header does not name the skmf format")
    return header


def load_model(path):
    """Load an MFRegressor saved by :func:`save_model`, without running code.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_model`.

    Returns
    -------
    model : MFRegressor
        The estimator, with its parameters and fitted attributes.

    Raises
    ------
    ValueError
        If the file is not an skmf model file (e.g. a pickle or joblib file,
        which is never unpickled), holds object arrays, has a missing or
        malformed header, an unknown format version, a class other than
        MFRegressor, or values of unknown kinds.
    """
    from skmf import __version__
    from skmf._estimator import MFRegressor

    path = Path(os.fspath(path))
    arrays = _read_archive(path)
    header = _read_header(arrays, path)
    reader = _Reader(arrays, path)
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path} is an skmf model file of format version {version!r}; this "
            f"skmf ({__version__}) reads version {FORMAT_VERSION} only. Load it "
            "with the skmf version that wrote it "
            f"({header.get('skmf_version', 'unknown')!s:.40})."
        )
    if header.get("class") != "MFRegressor":
        raise ValueError(
            f"{path} holds a model of class {header.get('class')!r:.60}; skmf "
            "model files hold MFRegressor estimators only."
        )
    params, attributes = header.get("params"), header.get("attributes")
    if not isinstance(params, dict) or not isinstance(attributes, dict):
        raise reader.fail("its header lacks the parameters or the attributes")
    known = MFRegressor().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(
            f"{path} sets parameters this skmf ({__version__}) does not have: "
            f"{', '.join(map(repr, unknown))}; it was written by skmf "
            f"{header.get('skmf_version')!s:.40}."
        )
    model = MFRegressor(
        **{name: _param_from_json(name, v, reader) for name, v in params.items()}
    )
    for name, node in attributes.items():
        if (
            not name.isidentifier()
            or name.startswith("__")
            or name in known
            or callable(getattr(MFRegressor, name, None))
            or isinstance(getattr(MFRegressor, name, None), property)
        ):
            raise reader.fail(f"it sets the attribute {name!r}, which is not data")
        try:
            value = reader.decode(node, f"attribute {name!r}")
        except RecursionError:
            raise reader.fail(f"the attribute {name!r} is nested too deeply") from None
        setattr(model, name, value)
    saved = header.get("skmf_version")
    if saved != __version__:
        warnings.warn(
            f"{path} was written by skmf {saved!s:.40}; this is skmf "
            f"{__version__}. The model may not work or may predict differently; "
            "refit it with this version if in doubt.",
            UserWarning,
            stacklevel=2,
        )
    return model
