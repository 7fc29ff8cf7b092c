"""The normaliser behind snapshots and signaltrace_diff: one deterministic tree per trace."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest
from django.contrib.auth.models import Group, User
from django.db.models.signals import m2m_changed
from django.dispatch import Signal

import signaltrace
from signaltrace.normalize import SCHEMAS, diff_traces, normalize_trace

order_paid = Signal()
order_shipped = Signal()


def charge(sender, **kwargs):
    if kwargs.get("fail"):
        raise ValueError("card declined for order 42")


async def a_notify(sender, **kwargs):
    await asyncio.sleep(kwargs.get("a_pause", 0))


async def b_audit(sender, **kwargs):
    await asyncio.sleep(kwargs.get("b_pause", 0))


def on_groups(sender, **kwargs):
    pass


@pytest.fixture
def receivers():
    order_paid.connect(charge)
    order_shipped.connect(a_notify)
    order_shipped.connect(charge)
    order_shipped.connect(b_audit)
    m2m_changed.connect(on_groups, sender=User.groups.through)
    yield
    order_paid.disconnect(charge)
    order_shipped.disconnect(a_notify)
    order_shipped.disconnect(charge)
    order_shipped.disconnect(b_audit)
    m2m_changed.disconnect(on_groups, sender=User.groups.through)


def both_schemas(data):
    """The same trace as ``signaltrace.trace/1`` and as ``/2`` (trace_id, kind, parent)."""
    v1 = {k: v for k, v in data.items() if k not in ("trace_id", "kind", "parent")}
    v1["schema"] = "signaltrace.trace/1"
    v2 = {**v1, "schema": "signaltrace.trace/2", "trace_id": "f" * 32, "kind": "capture"}
    return v1, {**v2, "parent": {"trace_id": "e" * 32, "receiver": "shop.signals.x"}}


def call(receiver, *, is_async=False, outcome="returned", error=None, dispatches=(), **extra):
    return {
        "receiver": receiver,
        "location": f"/srv/{receiver}.py:{len(receiver)}",
        "async": is_async,
        "start_ns": 5,
        "duration_ns": 17,
        "outcome": outcome,
        "queries": 2,
        "in_atomic": True,
        "on_commit": 1,
        "error": error,
        "dispatches": list(dispatches),
        **extra,
    }


def dispatch(signal, calls=(), *, sender="shop", method="send", start_ns=10, **kwargs):
    return {
        "signal": signal,
        "signal_path": f"shop.signals.{signal}",
        "sender": sender,
        "method": method,
        "kwargs": kwargs,
        "start_ns": start_ns,
        "duration_ns": 99,
        "origin": {"filename": "/srv/shop/views.py", "lineno": 8, "function": "checkout"},
        "receiver_count": len(calls),
        "calls": list(calls),
    }


def trace_dict(*dispatches, skipped=(), truncated=None, schema="signaltrace.trace/1"):
    return {
        "schema": schema,
        "label": "x",
        "dispatches": list(dispatches),
        "skipped": list(skipped),
        "truncated": truncated,
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("receivers")
class TestRealTraces:
    def test_tree_without_times_lines_or_messages(self):
        """Signal, sender, flags, receivers and outcomes stay; times, files, messages go."""
        with signaltrace.capture() as trace:
            user = User.objects.create(username="ann")
            order_paid.send_robust(sender="shop", order=user, fail=True)
            user.delete()
        assert normalize_trace(trace).text() == (
            "3 dispatches, 4 receiver calls, 1 error\n"
            "├─ post_save  sender=auth.User pk=#1 created=True\n"
            "│  ├─ tests.testapp.signals.create_user_profile\n"
            "│  └─ tests.testapp.signals.save_user_profile\n"
            "├─ order_paid  sender=shop order=auth.User pk=#1 fail=True [send_robust]\n"
            "│  └─ tests.test_normalize.charge  ✗ raised ValueError (swallowed by send_robust)\n"
            "└─ pre_delete  sender=auth.User pk=#1\n"
            "   └─ tests.testapp.signals.backup_user_data\n"
        )
        rendered = trace.render()
        assert " ms" in rendered
        assert "test_normalize.py:" in rendered  # what the normaliser leaves out is there

    def test_primary_keys_are_numbered_per_model(self):
        """Whatever the database hands out, the first user is #1, the second #2."""
        User.objects.create(username="earlier")  # shifts the real primary keys
        with signaltrace.capture() as trace:
            ann = User.objects.create(username="ann")
            bob = User.objects.create(username="bob")
            ann.save()
        text = normalize_trace(trace).text()
        assert [
            line.split("  sender=")[1] for line in text.splitlines() if "post_save" in line
        ] == [
            "auth.User pk=#1 created=True",
            "auth.User pk=#2 created=True",
            "auth.User pk=#1 created=False",
        ]
        assert ann.pk > 1  # the real keys are not the numbers
        assert f"pk={bob.pk} created=True" in trace.render()

    def test_the_same_flow_with_other_keys_is_the_same_tree(self):
        with signaltrace.capture() as first:
            User.objects.create(username="ann")
        User.objects.create(username="filler")
        with signaltrace.capture() as second:
            User.objects.create(username="bob")
        assert first.render() != second.render()
        assert normalize_trace(first).text() == normalize_trace(second).text()

    def test_pk_set_is_numbered_by_its_model(self):
        groups = [Group.objects.create(name=name) for name in "xyz"]
        user = User.objects.create(username="ann")
        with signaltrace.capture() as trace:
            user.groups.add(groups[2], groups[0])
        assert normalize_trace(trace).lines()[1] == (
            "├─ m2m_changed  sender=auth.User_groups action=pre_add instance=auth.User pk=#1 "
            "reverse=False model=auth.Group pk_set={#1, #2}"
        )
        assert f"pk_set={{{groups[0].pk}, {groups[2].pk}}}" in trace.render()

    def test_query_counts_only_when_asked(self, settings):
        settings.SIGNALTRACE = {"ENABLED": True, "RECORD_DB": True}
        with signaltrace.capture() as trace:
            User.objects.create(username="ann")
        plain = normalize_trace(trace).text()
        counted = normalize_trace(trace, queries=True).text()
        assert "quer" not in plain
        assert "tests.testapp.signals.create_user_profile  1 query\n" in counted

    def test_an_unnamed_signals_address_is_replaced(self):
        local = Signal()  # no module attribute holds it: Signal@0x...
        local.connect(charge)
        with signaltrace.capture() as trace:
            local.send(sender="shop")
        assert "Signal@0x" in trace.render()
        text = normalize_trace(trace).text()
        assert "└─ Signal@0x#1  sender=shop\n" in text

    def test_async_receivers_after_sync_ones_sorted_by_name(self):
        """However the concurrent receivers interleave, the tree is the same."""
        texts = set()
        for a_pause, b_pause in ((0.02, 0), (0, 0.02)):
            with signaltrace.capture() as trace:
                asyncio.run(order_shipped.asend(sender="shop", a_pause=a_pause, b_pause=b_pause))
            texts.add(normalize_trace(trace).text())
        assert texts == {
            "1 dispatch, 3 receiver calls\n"
            "└─ order_shipped  sender=shop a_pause=0 b_pause=0.02 [asend]\n"
            "   ├─ tests.test_normalize.charge\n"
            "   ├─ tests.test_normalize.a_notify  async\n"
            "   └─ tests.test_normalize.b_audit  async\n",
            "1 dispatch, 3 receiver calls\n"
            "└─ order_shipped  sender=shop a_pause=0.02 b_pause=0 [asend]\n"
            "   ├─ tests.test_normalize.charge\n"
            "   ├─ tests.test_normalize.a_notify  async\n"
            "   └─ tests.test_normalize.b_audit  async\n",
        }

    def test_skipped_operations_where_they_happened(self):
        with signaltrace.capture() as trace:
            User.objects.bulk_create([User(username="a"), User(username="b")])
            order_paid.send(sender="shop")
        assert normalize_trace(trace).lines()[1:] == [
            "├─ ⚠ bulk_create on auth.User (2 rows) skipped post_save: "
            "tests.testapp.signals.create_user_profile, tests.testapp.signals.save_user_profile "
            "did not run",
            "└─ order_paid  sender=shop",
            "   └─ tests.test_normalize.charge",
        ]

    def test_truncation_is_kept(self):
        with signaltrace.capture(max_events=2) as trace:
            order_paid.send(sender="shop")
            order_paid.send(sender="shop")
        assert normalize_trace(trace).lines()[-1] == (
            "⚠ truncated: MAX_EVENTS reached, the rest was not recorded"
        )

    def test_trace_and_its_json_in_either_version_give_one_tree(self):
        """Trace object, to_dict(), a JSON round trip and the other schema agree."""
        with signaltrace.capture() as trace:
            User.objects.create(username="ann")
            order_paid.send_robust(sender="shop", fail=True)
        data = json.loads(json.dumps(trace.to_dict()))
        assert data["schema"] in SCHEMAS
        expected = normalize_trace(trace)
        assert normalize_trace(data) == expected
        v1, v2 = both_schemas(data)
        assert normalize_trace(v1) == normalize_trace(v2) == expected


class TestJsonDicts:
    def test_concurrent_order_does_not_matter(self):
        calls = [
            call("shop.signals.zeta", is_async=True),
            call("shop.signals.sync_first"),
            call("shop.signals.alpha", is_async=True, dispatches=[dispatch("nested")]),
        ]
        one = normalize_trace(trace_dict(dispatch("order_paid", calls, method="asend")))
        other = normalize_trace(trace_dict(dispatch("order_paid", calls[::-1], method="asend")))
        assert one == other
        assert one.lines()[1:] == [
            "└─ order_paid  sender=shop [asend]",
            "   ├─ shop.signals.sync_first",
            "   ├─ shop.signals.alpha  async",
            "   │  └─ nested  sender=shop  (no receivers)",
            "   └─ shop.signals.zeta  async",
        ]

    def test_primary_keys_follow_the_sorted_order(self):
        """Numbering happens after sorting, so concurrency cannot swap #1 and #2."""

        def flow(first, second):
            return trace_dict(
                dispatch(
                    "order_paid",
                    [
                        call(
                            "shop.signals.b",
                            is_async=True,
                            dispatches=[dispatch("saved", instance=second, sender="shop.Order")],
                        ),
                        call(
                            "shop.signals.a",
                            is_async=True,
                            dispatches=[dispatch("saved", instance=first, sender="shop.Order")],
                        ),
                    ],
                )
            )

        one = normalize_trace(flow("shop.Order pk=7", "shop.Order pk=9")).text()
        two = normalize_trace(flow("shop.Order pk=31", "shop.Order pk=30")).text()
        assert one == two
        assert "shop.signals.a  async\n   │  └─ saved  sender=shop.Order pk=#1" in one

    def test_enqueued_tasks_when_the_json_has_them(self):
        """Their names and how they were sent stay; Celery's random ids go."""

        def task(name, **how):
            flags = {"on_commit": False, "in_atomic": False, "eager": False, **how}
            return {"name": name, "id": "3f2a9c1e-5b7d-4e0f-9a8b-0c1d2e3f4a5b", **flags}

        data = trace_dict(
            dispatch(
                "order_paid",
                [
                    call(
                        "shop.signals.notify",
                        tasks=[
                            task("shop.tasks.send_receipt", on_commit=True),
                            task("shop.tasks.update_stats", in_atomic=True),
                        ],
                    ),
                    call("shop.signals.audit", tasks=[task("shop.tasks.log", eager=True)]),
                    call("shop.signals.plain", tasks=[]),
                    call("shop.signals.older"),  # a trace from before tasks were recorded
                ],
            )
        )
        lines = normalize_trace(data).lines()
        assert lines[2:] == [
            "   ├─ shop.signals.notify  ⇒ tasks shop.tasks.send_receipt (on commit), "
            "shop.tasks.update_stats (inside atomic)",
            "   ├─ shop.signals.audit  ⇒ task shop.tasks.log (eager)",
            "   ├─ shop.signals.plain",
            "   └─ shop.signals.older",
        ]
        assert "3f2a" not in "".join(lines)

    def test_outcomes(self):
        error = {"type": "shop.errors.Declined", "message": "id 8", "location": "x:1"}
        data = trace_dict(
            dispatch(
                "order_paid",
                [
                    call("shop.signals.a", outcome="raised", error={**error, "swallowed": False}),
                    call("shop.signals.b", outcome="running"),
                    call("shop.signals.c", outcome="<unrenderable>"),
                ],
            )
        )
        assert normalize_trace(data).lines() == [
            "1 dispatch, 3 receiver calls, 1 error",
            "└─ order_paid  sender=shop",
            "   ├─ shop.signals.a  ✗ raised shop.errors.Declined",
            "   ├─ shop.signals.b  running",
            "   └─ shop.signals.c  unknown",
        ]

    def test_quiet_kwargs_and_origin_equal_to_instance_are_left_out(self):
        data = trace_dict(
            dispatch(
                "post_delete",
                [call("shop.signals.a")],
                sender="shop.Order",
                instance="shop.Order pk=4",
                origin="shop.Order pk=4",
                using="default",
                raw=False,
                update_fields=["total", "state"],
            )
        )
        assert normalize_trace(data).lines()[1] == (
            "└─ post_delete  sender=shop.Order pk=#1 update_fields=[total, state]"
        )

    def test_query_and_on_commit_counts(self):
        data = trace_dict(dispatch("order_paid", [call("shop.signals.a", queries=1)]))
        assert normalize_trace(data, queries=True).lines()[2] == (
            "   └─ shop.signals.a  1 query  1 on_commit"
        )
        assert normalize_trace(data).lines()[2] == "   └─ shop.signals.a"

    def test_unsaved_instances_and_odd_values(self):
        """pk=None is not a key to number; a value that is not JSON is named by its type."""
        data = trace_dict(
            dispatch(
                "pre_save",
                [call("shop.signals.a", tasks=["shop.tasks.plain_name"])],
                sender="shop.Order",
                instance="shop.Order pk=None",
                token=object(),
            )
        )
        assert normalize_trace(data).lines()[1:] == [
            "└─ pre_save  sender=shop.Order pk=None token=<object>",
            "   └─ shop.signals.a  ⇒ task shop.tasks.plain_name",
        ]

    def test_empty_trace(self):
        assert normalize_trace(trace_dict()).text() == (
            "0 dispatches, 0 receiver calls\n(no signals dispatched)\n"
        )

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"schema": "signaltrace.receivers/1"}, "schema is 'signaltrace.receivers/1'"),
            ({"dispatches": []}, "schema is None"),
            ({"schema": "signaltrace.trace/1"}, "it has no 'dispatches' list"),
        ],
    )
    def test_not_a_trace(self, data, message):
        with pytest.raises(ValueError, match="not a signaltrace trace: ") as info:
            normalize_trace(data)
        assert message in str(info.value)


class TestDiff:
    OLD = trace_dict(
        dispatch(
            "post_save",
            [
                call("shop.signals.create_profile"),
                call("shop.signals.notify", dispatches=[dispatch("mail_sent", [call("x.log")])]),
            ],
            sender="auth.User",
            instance="auth.User pk=3",
            created=True,
        ),
        dispatch("pre_delete", [call("shop.signals.backup")], sender="auth.User", start_ns=50),
    )

    def test_same_flow(self):
        diff = diff_traces(normalize_trace(self.OLD), normalize_trace(copy.deepcopy(self.OLD)))
        assert not diff.changed
        assert diff.summary() == "no changes"
        assert all(line.startswith("  ") for line in diff.lines())

    def test_added_removed_and_changed(self):
        new = copy.deepcopy(self.OLD)
        post_save = new["dispatches"][0]
        post_save["kwargs"]["created"] = False  # a flag changed
        post_save["calls"][1]["outcome"] = "raised"  # an outcome changed
        post_save["calls"][1]["error"] = {"type": "SMTPError", "message": "", "swallowed": False}
        post_save["calls"].append(call("shop.signals.audit"))  # a call added
        del new["dispatches"][1]  # a dispatch removed
        new["dispatches"].append(dispatch("order_paid", [call("shop.signals.charge")]))
        diff = diff_traces(normalize_trace(self.OLD), normalize_trace(new))
        assert diff.changed
        assert str(diff).splitlines() == [
            "- ├─ post_save  sender=auth.User pk=#1 created=True",
            "+ ├─ post_save  sender=auth.User pk=#1 created=False",
            "  │  ├─ shop.signals.create_profile",
            "- │  ├─ shop.signals.notify",
            "+ │  ├─ shop.signals.notify  ✗ raised SMTPError",
            "  │  │  └─ mail_sent  sender=shop",
            "  │  │     └─ x.log",
            "+ │  └─ shop.signals.audit",
            "- ├─ pre_delete  sender=auth.User",
            "- │  └─ shop.signals.backup",
            "+ └─ order_paid  sender=shop",
            "+    └─ shop.signals.charge",
        ]
        assert diff.summary() == (
            "1 dispatch added, 1 dispatch removed, 1 dispatch changed, "
            "2 receiver calls added, 1 receiver call removed, 1 receiver call changed"
        )

    def test_truncation_changed(self):
        cut = {**copy.deepcopy(self.OLD), "truncated": {"events": 3, "dispatches": 1, "what": "x"}}
        diff = diff_traces(normalize_trace(self.OLD), normalize_trace(cut))
        assert diff.changed
        assert diff.summary() == "truncated"
        assert diff.lines()[-1] == "+ ⚠ truncated: MAX_EVENTS reached, the rest was not recorded"

    def test_skipped_operation_added(self):
        skipped = {
            "operation": "update",
            "model": "auth.User",
            "signals": ["pre_save", "post_save"],
            "receivers": ["shop.signals.create_profile"],
            "rows": 1,
            "start_ns": 20,
            "origin": None,
        }
        new = {**copy.deepcopy(self.OLD), "skipped": [skipped]}
        diff = diff_traces(normalize_trace(self.OLD), normalize_trace(new))
        assert diff.summary() == "1 skipped operation added"
        assert (
            "+ ├─ ⚠ update on auth.User (1 row) skipped pre_save, post_save: "
            "shop.signals.create_profile did not run"
        ) in diff.lines()
