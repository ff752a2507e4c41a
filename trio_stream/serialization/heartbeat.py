"""Keep-alives, at assistant-stream's path (``serialization.heartbeat``).

``heartbeat_interval(encoder, option)`` is this package's reading of a
``heartbeat=`` option, per format: ``None`` keeps the format's default (on
for the SSE formats), where assistant-stream's ``resolve_heartbeat_interval``
reads ``None`` as off.
"""

from ..asgi import (
    DEFAULT_HEARTBEAT_INTERVAL,
    HeartbeatOption,
    add_keepalive,
    add_sse_heartbeat,
    heartbeat_interval,
)

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "HeartbeatOption",
    "add_keepalive",
    "add_sse_heartbeat",
    "heartbeat_interval",
]
