"""A command for signaltrace_run's tests: it skips receivers and one of its receivers fails."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tests.diagapp.models import Article, Author
from tests.diagapp.signals import article_published


class Command(BaseCommand):
    help = "Touch every article (update(), skipping receivers) and publish one."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--fail", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        author = Author.objects.create(name="touch")
        Article.objects.create(title="touched", author=author)
        Article.objects.update(views=1)
        article_published.send_robust(sender=Article, fail=True)
        self.stdout.write("touched")
        if options["fail"]:
            raise RuntimeError("diag_touch failed")
