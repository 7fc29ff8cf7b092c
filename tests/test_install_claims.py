"""What the README claims about installing and support matches pyproject.toml and tox.ini."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def _project() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["project"]


def _claimed_djangos() -> list[str]:
    """``Django 5.2, 6.0 and 6.1`` in the README's opening, as ``["5.2", "6.0", "6.1"]``."""
    match = re.search(r"Django ((?:\d+\.\d+, )*\d+\.\d+ and \d+\.\d+)", _readme())
    assert match is not None, "the README names the supported Django versions"
    return re.findall(r"\d+\.\d+", match.group(1))


class TestClassifiers:
    def test_every_claimed_django_has_its_classifier(self):
        classifiers = _project()["classifiers"]
        claimed = _claimed_djangos()
        assert claimed == ["5.2", "6.0", "6.1"]
        for version in claimed:
            assert f"Framework :: Django :: {version}" in classifiers

    def test_every_claimed_django_is_tested(self):
        tox = (ROOT / "tox.ini").read_text(encoding="utf-8")
        for version in _claimed_djangos():
            assert f"django{version.replace('.', '')}" in tox


class TestInstallSection:
    def section(self) -> str:
        return _readme().split("## Install", 1)[1].split("\n## ", 1)[0]

    def test_no_bare_pypi_install_before_a_release(self):
        """``pip install django-signaltrace`` fails until a release is published."""
        commands = re.findall(r"```console\n(.*?)```", self.section(), re.S)
        lines = [line.split("#")[0].strip() for block in commands for line in block.splitlines()]
        assert "pip install django-signaltrace" not in lines
        assert "not on PyPI yet" in self.section()

    def test_from_a_checkout_and_from_git(self):
        section = self.section()
        assert "pip install -e ./django-signaltrace" in section
        assert "pip install /path/to/django-signaltrace" in section
        assert 'pip install "django-signaltrace @ git+<URL of this repository>"' in section
