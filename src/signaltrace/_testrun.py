"""What the test runner tells the snapshot assertions, and what they did.

The pytest plugin sets :data:`STATE` ``.update`` from ``--signaltrace-update-snapshots``
and ``.current`` to the running test; :mod:`signaltrace.assertions.snapshot`
reads them and records the snapshot files it used, wrote and rewrote, which the
plugin reports at the end of the session. Outside pytest, ``update`` stays
``None`` and the environment variable ``SIGNALTRACE_UPDATE_SNAPSHOTS=1`` decides.
This module imports nothing from Django, so the plugin can load it early.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Final

__all__ = ["ENV_UPDATE", "STATE", "SnapshotTest", "update_requested"]

#: ``SIGNALTRACE_UPDATE_SNAPSHOTS=1`` writes missing snapshots and rewrites changed ones.
ENV_UPDATE: Final = "SIGNALTRACE_UPDATE_SNAPSHOTS"


@dataclass(frozen=True, slots=True)
class SnapshotTest:
    """The test a snapshot belongs to: its module's file and its name in that module."""

    #: The test module's file: the snapshots live next to it.
    module_file: str
    #: ``test_name``, ``TestClass.test_name``, ``test_name[param]``; ``""`` outside a test.
    name: str
    #: The pytest node id or unittest id, for messages.
    test_id: str = ""


@dataclass(slots=True)
class _State:
    #: ``--signaltrace-update-snapshots`` (``None``: not under the plugin).
    update: bool | None = None
    #: The running test, set by the pytest plugin.
    current: SnapshotTest | None = None
    #: Snapshot files compared or written in this process (absolute paths).
    used: set[str] = field(default_factory=set)
    #: Files written because they were missing / rewritten because they differed.
    written: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    #: The snapshot files each test took (by test), to catch one file taken twice.
    taken: dict[SnapshotTest, set[str]] = field(default_factory=dict)


STATE: Final = _State()


def update_requested() -> bool:
    """Whether snapshots are to be written: the plugin's flag, else the environment."""
    if STATE.update:
        return True
    return os.environ.get(ENV_UPDATE, "").strip().lower() in ("1", "true", "yes", "on")
