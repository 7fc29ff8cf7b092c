"""The package: lazy public names, no submodule shadowing one."""

from __future__ import annotations

import pytest

import signaltrace


class TestPackage:
    def test_dir_lists_lazy_names(self):
        assert {"capture", "Trace", "install"} <= set(dir(signaltrace))

    def test_unknown_attribute(self):
        with pytest.raises(AttributeError, match="has no attribute 'nope'"):
            signaltrace.nope  # noqa: B018

    def test_no_submodule_shadows_a_public_name(self):
        """Importing every submodule leaves ``signaltrace.capture`` the class, and so on."""
        import pkgutil

        for info in pkgutil.walk_packages(signaltrace.__path__, "signaltrace."):
            assert info.name.rpartition(".")[2] not in signaltrace.__all__
        assert isinstance(signaltrace.capture, type)
