"""SignalTraceTestMixin written the way people write it: a bare assertion after captureSignals()."""

from __future__ import annotations

import re
import unittest

import pytest
from django.contrib.auth.models import User
from django.db.models.signals import post_save
from django.test import TestCase

from signaltrace.testing import DeferredAssertion, SignalTraceAssertionError, SignalTraceTestMixin
from tests.testapp.signals import backup_user_data, create_user_profile, save_user_profile

CREATE = "tests.testapp.signals.create_user_profile"


def run_case(case_class, name="test_it"):
    result = unittest.TestResult()
    case_class(name).run(result)
    return result


class BareCalls(SignalTraceTestMixin, TestCase):
    """After `with self.captureSignals() as trace:`, assertions without trace= check it."""

    def test_each_assertion(self):
        with self.captureSignals() as trace:
            User.objects.create(username="ann")
        self.assertReceiverCalled(create_user_profile, sender=User, created=True)
        self.assertReceiverNotCalled(backup_user_data)
        self.assertSignalSent(post_save, sender=User, times=1)
        self.assertNoReceiverErrors()
        assert len(trace.calls) == 2

    def test_fails_at_the_line(self):
        """A failing bare assertion raises where it is written, with the usual message."""
        with self.captureSignals():
            User.objects.create(username="ann")
        with pytest.raises(SignalTraceAssertionError) as info:
            self.assertReceiverCalled(create_user_profile, created=False, msg="signup")
        assert str(info.value).startswith(
            f"signup: Expected {CREATE} to be called with created=False, "
            "but its call did not match."
        )
        with pytest.raises(SignalTraceAssertionError, match="save_user_profile not to be called"):
            self.assertReceiverNotCalled(save_user_profile)

    def test_the_last_block_counts(self):
        with self.captureSignals():
            User.objects.create(username="ann")
        with self.captureSignals():
            pass
        with pytest.raises(SignalTraceAssertionError):
            self.assertReceiverCalled(create_user_profile)
        self.assertReceiverNotCalled(create_user_profile)

    def test_without_as(self):
        with self.captureSignals():
            User.objects.create(username="ann")
        self.assertReceiverCalled(save_user_profile)

    def test_inside_the_block(self):
        """Inside the block, a bare assertion checks what the block recorded so far."""
        with self.captureSignals():
            User.objects.create(username="ann")
            self.assertReceiverCalled(create_user_profile)
            self.assertReceiverNotCalled(backup_user_data)

    def test_context_manager_form_still_captures_its_block(self):
        """`with self.assertReceiverCalled(...)` checks its own block, not the last trace."""
        with self.captureSignals():
            pass
        with self.assertReceiverCalled(create_user_profile, created=True) as trace:
            User.objects.create(username="ann")
        assert len(trace.calls) == 2
        assertion = self.assertReceiverCalled(create_user_profile, created=False)
        assert isinstance(assertion, DeferredAssertion)
        with pytest.raises(SignalTraceAssertionError), assertion:
            User.objects.create(username="bob")

    def test_trace_keyword_wins(self):
        with self.captureSignals() as first:
            User.objects.create(username="ann")
        with self.captureSignals():
            pass
        self.assertReceiverCalled(create_user_profile, trace=first)

    async def test_async_with(self):
        async with self.captureSignals():
            await User.objects.acreate(username="ann")
        self.assertReceiverCalled(create_user_profile, created=True)


@pytest.mark.django_db
class TestOutcomes:
    def test_passes_without_cleanup_errors(self):
        """The case from the issue: it used to fail at cleanup with 'called without trace='."""

        class Case(SignalTraceTestMixin, unittest.TestCase):
            def test_it(self):
                with self.captureSignals() as trace:
                    User.objects.create(username="ann")
                self.assertReceiverCalled(create_user_profile)
                assert trace.calls

        result = run_case(Case)
        assert result.failures == []
        assert result.errors == []
        assert result.testsRun == 1

    def test_a_failure_is_the_tests_failure(self):
        class Case(SignalTraceTestMixin, unittest.TestCase):
            def test_it(self):
                with self.captureSignals():
                    User.objects.create(username="ann")
                self.assertReceiverCalled(backup_user_data)

        result = run_case(Case)
        assert result.errors == []
        ((_, traceback),) = result.failures
        assert f"Expected {backup_user_data.__module__}.backup_user_data to be called" in traceback

    def test_bare_without_any_block_still_fails_at_cleanup(self):
        """No captureSignals() before it: nothing to check, so the cleanup check fails."""

        class Case(SignalTraceTestMixin, unittest.TestCase):
            def test_it(self):
                self.assertReceiverCalled(create_user_profile)

        result = run_case(Case)
        ((_, traceback),) = result.failures
        assert re.search(
            r"assertReceiverCalled\(\) at tests/test_mixin_statements\.py:\d+ was called "
            r"without trace= and not used as a context manager",
            traceback,
        )

    def test_kept_in_a_variable_is_still_a_forgotten_with(self):
        """Only a statement of its own checks the last block; a kept one must be entered."""

        class Case(SignalTraceTestMixin, unittest.TestCase):
            def test_it(self):
                with self.captureSignals():
                    pass
                assertion = self.assertReceiverNotCalled(create_user_profile)
                assert isinstance(assertion, DeferredAssertion)

        result = run_case(Case)
        ((_, traceback),) = result.failures
        assert "assertReceiverNotCalled() at tests/test_mixin_statements.py:" in traceback

    def test_each_test_has_its_own_last_block(self):
        class Case(SignalTraceTestMixin, unittest.TestCase):
            def test_a(self):
                with self.captureSignals():
                    pass

            def test_b(self):
                self.assertNoReceiverErrors()

        assert run_case(Case, "test_a").failures == []
        ((_, traceback),) = run_case(Case, "test_b").failures
        assert "was called without trace=" in traceback
