from __future__ import annotations

import pytest

import signaltrace


@pytest.fixture(autouse=True)
def _installed():
    """Every test starts with the hook installed (as the test settings do)."""
    signaltrace.install()
    yield
    signaltrace.install()
