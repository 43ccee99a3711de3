"""Sphinx configuration of the skmf documentation.

Build with ``pip install -e ".[docs]"``, then
``python -m sphinx -W --keep-going -b html docs docs/_build/html``. No
extension needs the network: intersphinx is off and the gallery examples read
MovieLens 100K only from a local copy in the data home of
:mod:`skmf.datasets` (``SKMF_DATA``, else ``~/skmf_data``), and fall back to
synthetic data without it.
"""

import os
import sys
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS_DIR / "sphinxext"))

import torch  # noqa: E402

import skmf  # noqa: E402

# The gallery examples run in this process. Their data is small (100,000
# ratings), where one torch thread is about as fast as several and, unlike
# several, does not slow down by orders of magnitude when the build shares the
# cores with other jobs (CI runners, parallel tests). SKMF_DOCS_THREADS=N
# overrides it.
torch.set_num_threads(int(os.environ.get("SKMF_DOCS_THREADS", "1")))

# docs/sphinxext/skmf_docs.py: the CLI help, the benchmark tables and the
# optional API sections, written into docs/_generated/ before any page is read.
import skmf_docs  # noqa: E402

skmf_docs.generate()


def _result_tables() -> None:
    """The tables of the accuracy and benchmarks pages, each page its subject.

    From the JSON files of ``docs/benchmarks_results/``: ``accuracy.rst`` gets
    the test RMSE (``rmse_tables.rst``: ``benchmarks/accuracy.py`` and the RMSE
    of the side-by-side runs of ``benchmarks/run.py``), ``benchmarks.rst`` the
    times and memory (``speed_tables.rst``: the side-by-side runs without their
    RMSE, prediction, serving and scaling runs).
    """
    rmse, speed = [], []
    no_rmse = {"rmse", "d_rmse", "rmse_per_fold"}
    speed_columns = [c for c in skmf_docs.TIMING_COLUMNS if c[0] not in no_rmse]
    rmse_columns = [c for c in skmf_docs.ACCURACY_COLUMNS if c[0] != "fit_s"]
    results = skmf_docs.RESULTS_DIR
    entries = skmf_docs.load_results(results) if results.is_dir() else []
    for name, data in entries:
        header = data.get("header", {}) if isinstance(data, dict) else {}
        where = f"{header.get('dataset', name)} on {header.get('device', '?')}"
        if name.startswith("accuracy-"):  # benchmarks/accuracy.py
            title = f"skmf's settings and recipes, {where}"
            rmse.append((name, data, title, skmf_docs.ACCURACY_COLUMNS))
        elif (
            isinstance(data, dict)
            and "dataset" in header
            and not name.startswith("recommend-")
        ):  # benchmarks/run.py: peers side by side
            rmse.append((name, data, f"skmf and its peers, {where}", rmse_columns))
            title = f"fit and predict time of skmf and its peers, {where}"
            speed.append((name, data, title, speed_columns))
        else:  # prediction, serving, scaling (or a file that cannot be read)
            speed.append((name, data, None, skmf_docs.TIMING_COLUMNS))

    def render(items) -> str:
        parts = []
        for name, data, title, columns in items:
            text = skmf_docs.render_results([(name, data)], columns)
            if title is not None and text:
                text = skmf_docs.section(title, "-") + text.split("\n", 2)[2].lstrip(
                    "\n"
                )
            parts.append(text)
        return "".join(parts) or (
            ".. note::\n\n   No result files in ``docs/benchmarks_results/`` when "
            "these pages were built:\n   the tables are pending.\n"
        )

    out = skmf_docs.GENERATED_DIR
    skmf_docs._write_if_changed(out / "rmse_tables.rst", render(rmse))
    skmf_docs._write_if_changed(out / "speed_tables.rst", render(speed))


_result_tables()

# -- Project -----------------------------------------------------------------
project = "skmf"
author = "skmf developers"
copyright = "skmf developers"
version = release = skmf.__version__

# -- General -----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store"]
default_role = "literal"
pygments_style = "sphinx"

autosummary_generate = True
autodoc_typehints = "none"

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- Gallery -----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "skmf_docs.example_order",
    "doc_module": ("skmf",),
    "reference_url": {"skmf": None},
    "backreferences_dir": "gen_modules/backreferences",
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "matplotlib_animations": False,
    "image_srcset": [],
    "default_thumb_file": None,
    "show_memory": False,
    "plot_gallery": "True",
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skmf {release}"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
