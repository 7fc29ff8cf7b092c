"""System checks for the ``SIGNALTRACE`` setting.

- ``signaltrace.E001``: an unknown key (the hint names the closest valid key).
- ``signaltrace.E002``: a key whose value has the wrong type or range.
- ``signaltrace.E003``: ``SIGNALTRACE`` is not a dict.
- ``signaltrace.E004``: an ``IGNORE_SIGNALS`` entry does not import.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error
from django.utils.module_loading import import_string

from .conf import DEFAULTS, _user_settings, config_errors

__all__ = ["check_settings"]


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """One error per bad ``SIGNALTRACE`` key."""
    user = _user_settings()
    errors: list[CheckMessage] = []
    for key, message, hint in config_errors(user):
        if not key:
            check_id = "signaltrace.E003"
        elif key in DEFAULTS:
            check_id = "signaltrace.E002"
        else:
            check_id = "signaltrace.E001"
        errors.append(Error(message, hint=hint, id=check_id))
    if not errors and isinstance(user, dict):
        for path in user.get("IGNORE_SIGNALS", ()):
            try:
                import_string(path)
            except ImportError as err:
                errors.append(
                    Error(
                        f"SIGNALTRACE['IGNORE_SIGNALS'] entry {path!r} does not import: {err}",
                        hint="Give the dotted path of a signal, such as "
                        "'django.db.models.signals.pre_init'.",
                        id="signaltrace.E004",
                    )
                )
    return errors
