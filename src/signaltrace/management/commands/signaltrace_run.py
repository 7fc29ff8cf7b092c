"""``manage.py signaltrace_run``: run another command and show the signals it set off.

.. code-block:: console

    $ python manage.py signaltrace_run loaddata initial.json
    $ python manage.py signaltrace_run --json trace.json migrate --noinput

The command's own output is unchanged; the tree and the summary go to stderr
after it finishes (or fails), so ``signaltrace_run dumpdata > data.json``
still writes clean data. The trace (kind ``"command"``) is also kept in the
store, so the trace viewer lists it.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from typing import Any

from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError, CommandParser

from signaltrace import command_traces, sinks
from signaltrace._format import format_ms, location
from signaltrace.capturing import capture
from signaltrace.records import ReceiverCall
from signaltrace.render import skipped_line
from signaltrace.traces import Trace

__all__ = ["Command", "summary"]


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be a positive int")
    return number


def _plain(text: str) -> str:
    return text


def summary(trace: Trace, *, top: int = 10, tree: bool = True) -> str:
    """Per signal and sender: dispatches and calls; per receiver: calls and time.

    :param top: how many receivers to list by total time, and errors or skipped
        operations to name when ``tree`` is false.
    :param tree: whether the tree is printed with the summary. Without it, the
        summary names the receivers that raised and the skipped operations
        itself; with it, it points at the tree's ``⚠`` lines.

    .. versionadded:: 0.1.0
    """
    label = trace.meta.get("command_line") or trace.label
    lines = [
        f"Summary of `{label}`: {trace.meta.get('outcome', 'ok')} in {format_ms(trace.duration_ns)}"
    ]
    dispatches = trace.dispatches
    if dispatches:
        by_signal: Counter[tuple[str, str]] = Counter()
        calls_by_signal: Counter[tuple[str, str]] = Counter()
        for dispatch in dispatches:
            key = (dispatch.signal_name, dispatch.sender)
            by_signal[key] += 1
            calls_by_signal[key] += len(dispatch.calls)
        lines.append("  signals:")
        width = max(len(f"{name}  sender={sender}") for name, sender in by_signal)
        for (name, sender), count in by_signal.most_common():
            made = calls_by_signal[(name, sender)]
            lines.append(
                f"    {f'{name}  sender={sender}':<{width}}  "
                f"{count} dispatch{'es' if count != 1 else ''}, "
                f"{made} receiver call{'s' if made != 1 else ''}"
            )
    calls = trace.calls
    if calls:
        time_by: defaultdict[str, int] = defaultdict(int)
        count_by: Counter[str] = Counter()
        for call in calls:
            time_by[call.receiver_name] += call.duration_ns or 0
            count_by[call.receiver_name] += 1
        ranked = sorted(time_by, key=lambda name: (-time_by[name], name))
        lines.append("  receivers by total time:")
        width = max(len(name) for name in ranked[:top])
        for name in ranked[:top]:
            n = count_by[name]
            lines.append(
                f"    {name:<{width}}  {n} call{'s' if n != 1 else ''}  {format_ms(time_by[name])}"
            )
        if len(ranked) > top:
            lines.append(f"    … {len(ranked) - top} more")
    errors = trace.errors
    if errors:
        lines.append(
            f"  errors: {len(errors)} receiver call{'s' if len(errors) != 1 else ''} raised"
            + ("" if tree else ":")
        )
        if not tree:
            lines.extend(f"    {_error_line(call)}" for call in errors[:top])
            if len(errors) > top:
                lines.append(f"    … {len(errors) - top} more")
    if trace.skipped:
        count = len(trace.skipped)
        text = (
            f"  skipped: {count} operation{'s' if count != 1 else ''} skipped connected receivers"
        )
        if tree:
            lines.append(f"{text} (⚠ in the tree above)")
        else:
            lines.append(f"{text}:")
            lines.extend(f"    {skipped_line(item)}" for item in trace.skipped[:top])
            if count > top:
                lines.append(f"    … {count - top} more")
    if trace.dropped:
        lines.append(f"  dropped: {trace.dropped} events past MAX_EVENTS={trace.max_events}")
    return "\n".join(lines)


def _error_line(call: ReceiverCall) -> str:
    """``receiver raised Type: message (swallowed by send_robust)``, for the summary."""
    error = call.error
    assert error is not None
    line = f"{call.receiver_name} raised {error}"
    if call.swallowed:
        line += f" (swallowed by {call.dispatch.method})"
    where = location(error.filename, error.lineno)
    return f"{line}  ({where})" if where else line


class Command(BaseCommand):
    """Run a management command under :class:`signaltrace.capture` and print its tree.

    .. versionadded:: 0.1.0
    """

    help = (
        "Run another management command under signaltrace.capture() and print the "
        "signals it sent, the receivers that ran and a summary (to stderr). Options "
        "for signaltrace_run go before the command name; everything after it is "
        "passed to the command."
    )
    requires_system_checks = ()

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json",
            metavar="PATH",
            help="Also write the trace as JSON (trace.to_dict()) to PATH; '-' for stdout.",
        )
        parser.add_argument(
            "--no-tree", action="store_true", help="Print the summary only, not the tree."
        )
        parser.add_argument(
            "--max-events",
            type=_positive_int,
            metavar="N",
            help="Record at most N events (default: the MAX_EVENTS setting).",
        )
        parser.add_argument("subcommand", metavar="command", help="The command to run.")
        parser.add_argument(
            "args", nargs=argparse.REMAINDER, metavar="...", help="Its arguments and options."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["subcommand"]
        try:
            app_name = get_commands()[name]
        except KeyError:
            raise CommandError(f"Unknown command: {name!r}.") from None
        command = load_command_class(app_name, name)
        command_line = " ".join([name, *args])
        failure: BaseException | None = None
        block = capture(label=command_line, max_events=options["max_events"], kind="command")
        with block as trace, command_traces.untraced():  # one trace, even with TRACE_COMMANDS
            trace.meta.update(command=name, args=list(args), command_line=command_line)
            try:
                call_command(command, *args, stdout=self.stdout, stderr=self.stderr)
            except BaseException as exc:
                failure = exc
        trace.meta["outcome"] = "ok" if failure is None else f"raised {type(failure).__name__}"
        sinks.keep(trace)  # the viewer lists it (a shared store: written on the sink worker)
        self._report(trace, options)
        if failure is not None:
            raise failure

    def _report(self, trace: Trace, options: dict[str, Any]) -> None:
        if not options["no_tree"]:
            self.stderr.write(trace.render(), style_func=_plain)
        self.stderr.write(summary(trace, tree=not options["no_tree"]), style_func=_plain)
        path = options["json"]
        if path:
            data = json.dumps(trace.to_dict(), indent=2)
            if path == "-":
                self.stdout.write(data)
            else:
                with open(path, "w", encoding="utf-8") as out:
                    out.write(data + "\n")
                self.stderr.write(f"Trace written to {path}", style_func=_plain)
