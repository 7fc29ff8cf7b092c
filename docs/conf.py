"""Sphinx configuration for django-signaltrace.

Build with ``sphinx-build -n -W --keep-going -b html docs docs/_build/html``
(``tox run -e docs``). The build needs no network: there is no intersphinx,
and references to Django, blinker and the standard library that docstrings in
``src/`` make are shown as code without a link (see ``nitpick_ignore_regex``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

# Autodoc imports signaltrace, which imports Django: configure it with the
# test settings (tests/settings.py).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

import signaltrace  # noqa: E402

# -- Project -------------------------------------------------------------------

project = "django-signaltrace"
author = "django-signaltrace maintainers"
copyright = "django-signaltrace maintainers"
release = signaltrace.__version__
version = ".".join(release.split(".")[:2])

# -- General -------------------------------------------------------------------

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx_copybutton",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

nitpicky = True
# Objects documented elsewhere (Django, blinker, Python): no intersphinx, since
# inventories cannot be fetched offline, so they render as code, unlinked.
nitpick_ignore_regex = [
    (r"py:.*", r"(django|blinker|asyncio|collections|contextvars|re|datetime|pathlib)\..*"),
    (r"py:class", r"Path"),  # pathlib.Path in a signature
    (r"py:class", r"MeterProvider"),  # OpenTelemetry's, in signaltrace.sinks.otel_metrics
]

# -- Autodoc -------------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

# -- HTML ----------------------------------------------------------------------

html_theme = "furo"
html_title = f"django-signaltrace {release}"

copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True


#: Classes users read but never construct: show them without a signature (their
#: constructors take internal objects, and the fields are documented one by one).
_NO_SIGNATURE = {
    "signaltrace.Trace",
    "signaltrace.Dispatch",
    "signaltrace.ReceiverCall",
    "signaltrace.ErrorInfo",
    "signaltrace.Origin",
}


def _hide_signature(app, what, name, obj, options, signature, return_annotation):  # type: ignore[no-untyped-def]
    if what == "class" and name in _NO_SIGNATURE:
        return "", None
    return None


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("autodoc-process-signature", _hide_signature)
    # The ``:setting:`` role used in docstrings; each key of SIGNALTRACE is
    # declared in reference/settings.md with the matching ``setting`` directive.
    app.add_object_type(
        "setting",
        "setting",
        indextemplate="pair: %s; setting",
        objname="SIGNALTRACE setting",
    )
