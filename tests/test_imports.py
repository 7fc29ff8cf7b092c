"""Every module of the package imports on its own, in a fresh interpreter.

An import that only works after some other module has been imported (a
circular import, a missing ``django.setup()``) is invisible to the rest of the
suite, where everything is already imported. Here each module is imported
first thing in a new interpreter with the test settings configured; only a
module that needs the app registry (``AppRegistryNotReady``) is imported after
``django.setup()``, which imports the app and with it much of the package.
Separately, ``signaltrace`` and its pytest plugin must import without Django:
pytest loads the plugin before pytest-django configures anything.
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import signaltrace

ROOT = Path(__file__).resolve().parent.parent

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(signaltrace.__path__, prefix="signaltrace.")
)


def run_python(code: str, *, settings: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``python -c`` in a fresh interpreter at the repository root."""
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if settings:
        env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_modules_were_found():
    """The walk over the package found its modules (so the parametrization is not empty)."""
    assert "signaltrace.hook" in MODULES
    assert "signaltrace.pytest_plugin" in MODULES


#: Exit status of the plain import when the module needs the app registry.
NEEDS_REGISTRY = 3

PLAIN_IMPORT = """\
import importlib, sys, traceback
from django.core.exceptions import AppRegistryNotReady
try:
    importlib.import_module("{module}")  # migrations' names start with a digit
except AppRegistryNotReady:
    traceback.print_exc()
    sys.exit({status})
"""


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_in_a_fresh_interpreter(module):
    """``import <module>`` succeeds as the first import of the package.

    With the settings module set but Django not set up, the import must work,
    unless it fails with ``AppRegistryNotReady`` (models, things that need the
    app registry): then it must work right after ``django.setup()``. Any other
    failure (a circular import, say) fails the test.
    """
    plain = run_python(PLAIN_IMPORT.format(module=module, status=NEEDS_REGISTRY))
    if plain.returncode == NEEDS_REGISTRY:
        after_setup = run_python(
            f"import django, importlib; django.setup(); importlib.import_module({module!r})"
        )
        status, stderr = after_setup.returncode, after_setup.stderr
        assert status == 0, f"import {module} after django.setup() failed:\n{stderr}"
    else:
        status, stderr = plain.returncode, plain.stderr
        assert status == 0, f"import {module} failed:\n{stderr}"


@pytest.mark.parametrize("module", ["signaltrace", "signaltrace.pytest_plugin"])
def test_imports_without_django(module):
    """``import <module>`` works with no settings configured and imports no Django."""
    code = (
        f"import sys; import {module}; "
        "leaked = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')); "
        "assert not leaked, leaked"
    )
    result = run_python(code, settings=False)
    status, stderr = result.returncode, result.stderr
    assert status == 0, f"import {module} without Django failed:\n{stderr}"
