"""Post to a chat webhook when a signal receiver fails.

The example of ``docs/how-to/custom-sinks.md`` (included there verbatim);
``tests/test_blinker_hooks.py`` runs it against a local stub server.
"""

from __future__ import annotations

import json
import threading
import urllib.request

from django.conf import settings


def post_to_chat(trace, call, **kwargs):
    """Receiver of ``signaltrace.signals.receiver_failed``: one message per failure."""
    swallowed = f" (swallowed by {call.dispatch.method})" if call.swallowed else ""
    text = (
        f"{call.receiver_name} raised {call.error}{swallowed}\n"
        f"signal {call.dispatch.signal_name} from {call.dispatch.sender}, "
        f"during {trace.meta.get('method')} {trace.meta.get('path')} "
        f"(trace {trace.meta.get('id')})"
    )
    # Sinks run before the response is sent: post from a thread, not inline.
    threading.Thread(target=_post, args=(text,), name="chat-alert", daemon=True).start()


def _post(text):
    request = urllib.request.Request(
        settings.CHAT_WEBHOOK_URL,
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5):
        pass
