"""``manage.py signaltrace_diff A.json B.json``: what changed between two traces.

.. code-block:: console

    $ python manage.py signaltrace_diff before.json after.json

Both files are trace JSON (``Trace.to_dict()``, ``signaltrace_run --json``, the
viewer's JSON link), ``signaltrace.trace/1`` or ``/2``. They are normalised as
snapshots are (:mod:`signaltrace.normalize`) and aligned; the merged tree is
printed with ``-`` (only in A) and ``+`` (only in B) markers. The exit status is
0 when the signal flows are the same, 1 when they differ, 2 when a file cannot
be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from signaltrace.normalize import NormalTrace, diff_traces, normalize_trace

__all__ = ["Command"]

#: The exit status when the traces differ (as diff(1)); a file that cannot be read is 2.
DIFFERENT = 1
TROUBLE = 2


def _load(name: str, *, queries: bool) -> NormalTrace:
    try:
        text = Path(name).read_text(encoding="utf-8")
    except OSError as err:
        raise CommandError(
            f"cannot read {name}: {err.strerror or err}", returncode=TROUBLE
        ) from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise CommandError(f"{name} is not JSON: {err}", returncode=TROUBLE) from None
    if not isinstance(data, dict):
        raise CommandError(f"{name} is not a trace: a JSON object was expected", returncode=TROUBLE)
    try:
        return normalize_trace(data, queries=queries)
    except ValueError as err:
        raise CommandError(f"{name}: {err}", returncode=TROUBLE) from None


class Command(BaseCommand):
    """Compare the signal flows of two trace JSON files.

    .. versionadded:: 0.1.0
    """

    help = (
        "Compare two trace JSON files (Trace.to_dict(), signaltrace_run --json, the viewer's "
        "JSON link): receiver calls and dispatches added or removed, outcomes and flags "
        "changed, as a tree with -/+ markers. Times, line numbers and primary keys are "
        "ignored. Exit status: 0 same, 1 different, 2 a file cannot be read."
    )
    requires_system_checks = ()

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("old", metavar="A.json", help="The trace to compare from.")
        parser.add_argument("new", metavar="B.json", help="The trace to compare with.")
        parser.add_argument(
            "--queries",
            action="store_true",
            help="Also compare each receiver call's query and on_commit counts.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        old_name, new_name = options["old"], options["new"]
        old = _load(old_name, queries=options["queries"])
        new = _load(new_name, queries=options["queries"])
        diff = diff_traces(old, new)
        if not diff.changed:
            self.stdout.write(f"No differences in the signal flow ({old.summary()}).")
            return
        self.stdout.write(f"--- {old_name}  ({old.summary()})")
        self.stdout.write(f"+++ {new_name}  ({new.summary()})")
        for line in diff.lines():
            if line.startswith("-"):
                line = self.style.ERROR(line)
            elif line.startswith("+"):
                line = self.style.SUCCESS(line)
            self.stdout.write(line)
        self.stdout.write(f"Changes: {diff.summary()}.")
        sys.exit(DIFFERENT)
