"""The documentation builds, examples included, with warnings as errors."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

DOCS_DIR = Path(__file__).resolve().parents[1] / "docs"
DOCS_TOOLS = (
    "sphinx",
    "sphinx_gallery",
    "pydata_sphinx_theme",
    "numpydoc",
    "matplotlib",
)
MISSING = [name for name in DOCS_TOOLS if importlib.util.find_spec(name) is None]


@pytest.mark.skipif(
    bool(MISSING),
    reason=f"the docs tools are not installed ({', '.join(MISSING)} missing): "
    "pip install -e '.[docs]'",
)
@pytest.mark.skipif(
    not (DOCS_DIR / "conf.py").is_file(), reason="no docs/conf.py in this checkout"
)
def test_docs_build(tmp_path):
    """sphinx-build -W --keep-going -b html docs OUT succeeds.

    This runs every gallery example (on MovieLens 100K when the data is found,
    else on synthetic ratings); sphinx-gallery skips the examples unchanged
    since their last run in this checkout.
    """
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "-d",
        str(tmp_path / "doctrees"),
        str(DOCS_DIR),
        str(tmp_path / "html"),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=1200, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"the docs build failed (exit status {result.returncode}); the last "
        f"lines of its output:\n{output[-6000:]}"
    )
    html = tmp_path / "html"
    for page in ("index", "user_guide", "api", "cli", "datasets", "benchmarks"):
        assert (html / f"{page}.html").is_file(), page
    assert (html / "auto_examples" / "index.html").is_file()
    assert (html / "generated" / "skmf.MFRegressor.html").is_file()
