"""pytest plugin: the ``signal_trace`` fixture.

Importing this module imports nothing from Django: the fixture imports lazily,
so projects that do not use Django (or have not configured it yet) can keep
the plugin installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .capture import Trace

__all__ = ["signal_trace"]


@pytest.fixture
def signal_trace() -> Iterator[Trace]:
    """Capture every signal dispatch during the test and yield the ``Trace``.

    .. versionadded:: 0.1.0
    """
    from django.conf import settings

    if not settings.configured:
        pytest.skip("signal_trace needs Django settings to be configured")
    from .capture import capture

    with capture(label="test") as trace:
        yield trace
