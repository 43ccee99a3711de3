"""numpydoc validation of the public API's docstrings (as scikit-learn does)."""

import inspect

import pytest

numpydoc_validation = pytest.importorskip("numpydoc.validate")

import skmf  # noqa: E402
import skmf.datasets  # noqa: E402

# Codes scikit-learn also leaves out: the docstring starts on the first line
# (GL01), See Also/extended summary/Examples are not required everywhere
# (SA01, ES01, EX01), a "Returns" of self (RT02), sections order (GL02).
IGNORED = {"GL01", "GL02", "SA01", "ES01", "EX01", "RT02", "PR09", "RT05"}


def _public_objects():
    for name in skmf.__all__:
        obj = getattr(skmf, name)
        if inspect.isclass(obj):
            yield f"skmf.{name}"
            for meth, _ in inspect.getmembers(obj, inspect.isfunction):
                if not meth.startswith("_") and meth in obj.__dict__:
                    yield f"skmf.{name}.{meth}"
    for name in skmf.datasets.__all__:
        yield f"skmf.datasets.{name}"


@pytest.mark.parametrize("name", sorted(set(_public_objects())))
def test_public_docstrings_are_valid_numpydoc(name):
    result = numpydoc_validation.validate(name)
    errors = [(c, m) for c, m in result["errors"] if c not in IGNORED]
    assert not errors, "\n".join(f"{name}: {c} {m}" for c, m in errors)
