"""``manage.py signaltrace_receivers``: what is connected to which signal.

.. code-block:: console

    $ python manage.py signaltrace_receivers --sender auth.User
    $ python manage.py signaltrace_receivers --signal post_save --format mermaid
"""

from __future__ import annotations

import difflib
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser

from signaltrace.diagnostics.discovery import discover_signals
from signaltrace.diagnostics.receivers import FORMATS, receiver_map, render_map

__all__ = ["Command"]


class Command(BaseCommand):
    """List every signal and its receivers.

    .. versionadded:: 0.1.0
    """

    help = (
        "List every signal (Django's, installed apps', blinker's named signals) with its "
        "receivers: dotted name, file:line, sender filter, weak or strong reference, "
        "dispatch_uid, sync or async. Reading the map changes no signal."
    )
    requires_system_checks = ()

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--signal",
            metavar="NAME",
            help="Only this signal: its name (post_save) or dotted path.",
        )
        parser.add_argument(
            "--sender",
            metavar="APP_LABEL.MODEL",
            help="Only receivers that run when this model sends (its own and any-sender ones).",
        )
        parser.add_argument(
            "--format",
            choices=FORMATS,
            default="text",
            help="Output format (default: text).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        sender = None
        if options["sender"]:
            try:
                sender = apps.get_model(options["sender"])
            except (LookupError, ValueError) as err:
                raise CommandError(f"--sender {options['sender']!r}: {err}") from None
        signals = discover_signals()
        wanted = options["signal"]
        if wanted and not any(wanted in (info.name, info.path) for info in signals):
            names = sorted({info.name for info in signals} | {info.path for info in signals})
            close = difflib.get_close_matches(wanted, names, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise CommandError(f"No signal named {wanted!r}.{hint}")
        entries = receiver_map(signal=wanted, sender=sender, signals=signals)
        self.stdout.write(render_map(entries, options["format"]))
