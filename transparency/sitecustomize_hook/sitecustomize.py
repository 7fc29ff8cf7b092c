"""Run by :mod:`site` at interpreter start-up when this folder is on PYTHONPATH.

It does nothing unless ``SIGNALTRACE_TRANSPARENCY=1`` is set, so a PYTHONPATH
left pointing here is harmless. With the variable set it arms
:mod:`signaltrace_transparency` (see that module), which installs signaltrace
and opens a capture as soon as Django's ``django.setup()`` has run.

``site`` swallows an exception raised here ("Error in sitecustomize"), so any
failure is reported and turned into exit status 2 by hand.
"""

from __future__ import annotations

import os
import sys


def _chain_next_sitecustomize() -> None:
    """Run the ``sitecustomize`` this file shadows, if the interpreter has one."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


try:
    _chain_next_sitecustomize()
except Exception:  # the shadowed one failing is not ours to judge
    import traceback

    print("signaltrace transparency: the shadowed sitecustomize failed:", file=sys.stderr)
    traceback.print_exc()

if os.environ.get("SIGNALTRACE_TRANSPARENCY") == "1":
    try:
        import signaltrace_transparency

        signaltrace_transparency.arm()
    except BaseException:
        import traceback

        print(
            "signaltrace transparency: ERROR: could not arm the hook; aborting.",
            file=sys.stderr,
        )
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(2)
