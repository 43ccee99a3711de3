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
