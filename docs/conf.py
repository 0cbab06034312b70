"""Sphinx configuration for the causalspy documentation.

Build (offline, from the repository root)::

    .venv/bin/python -m sphinx -b html docs docs/_build/html

Cross-links to the Python, NumPy, SciPy, pandas, matplotlib and HyperSpy
documentation (intersphinx) need the network, so they are off by default:
set ``CAUSALSPY_DOCS_INTERSPHINX=1`` to turn them on.
"""

from __future__ import annotations

import os
from datetime import date

import matplotlib

matplotlib.use("Agg")  # the gallery examples run headless

import causalspy  # noqa: E402  (installed editable from src/)

# -- Project information -----------------------------------------------------

project = "causalspy"
author = "causalspy developers"
copyright = f"{date.today().year}, {author}"
release = causalspy.__version__
version = ".".join(release.split(".")[:2])

# -- General configuration ---------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    # gallery sources: sphinx-gallery turns them into auto_examples/
    "examples",
    "README.md",
    # Markdown page written separately; docs/benchmarks.rst points to it
    "benchmarks.md",
    # sphinx-gallery's own bookkeeping files (generated at build time)
    "**.ipynb",
    "**.py.md5",
    "**.codeobj.json",
    "auto_examples/*.zip",
]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
default_role = "autolink"
pygments_style = "sphinx"

# -- autodoc / autosummary / numpydoc -----------------------------------------

autosummary_generate = True  # pages go to docs/api/generated/ (git-ignored)
autosummary_imported_members = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # types are in the numpydoc "Parameters" sections
autoclass_content = "class"

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- intersphinx ---------------------------------------------------------------
# Off unless asked for: an offline build must neither fail nor wait on the
# network. CAUSALSPY_DOCS_INTERSPHINX=1 turns the mapping on (with a short
# timeout, so a flaky connection costs seconds, not minutes).

_INTERSPHINX = os.environ.get("CAUSALSPY_DOCS_INTERSPHINX", "0").lower() in ("1", "true", "yes")
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "pandas": ("https://pandas.pydata.org/docs", None),
        "matplotlib": ("https://matplotlib.org/stable", None),
        "hyperspy": ("https://hyperspy.org/hyperspy-doc/current", None),
        "dask": ("https://docs.dask.org/en/stable", None),
    }
    if _INTERSPHINX
    else {}
)
intersphinx_timeout = 10
# Never resolve prose references like :doc: against other projects.
intersphinx_disabled_reftypes = ["std:doc"]

# -- sphinx-gallery --------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "examples",  # docs/examples
    "gallery_dirs": "auto_examples",  # docs/auto_examples (git-ignored)
    "filename_pattern": r"/plot_",
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "doc_module": ("causalspy",),
    "backreferences_dir": os.path.join("api", "generated", "backreferences"),
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
}

# -- HTML output ---------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"causalspy {release}"
html_theme_options = {
    "navbar_end": ["theme-switcher"],
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_context = {"default_mode": "light"}
html_show_sourcelink = True
