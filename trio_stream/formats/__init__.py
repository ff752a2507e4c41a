"""The wire formats, both ways: an encoder and a decoder per format.

Pure, synchronous, and free of I/O: an encoder turns a run's chunks into the
bytes of a response body, a decoder turns such a body back into chunks.
One module per format:

- ``data_stream``: assistant-ui's data stream (``code:json`` lines);
- ``assistant_transport``: assistant-ui's assistant transport (SSE);
- ``ui_message_stream``: the AI SDK's UI message stream (SSE);
- ``openai_stream``: OpenAI chat completion chunks (SSE);
- ``ag_ui``: AG-UI, the Agent-User Interaction protocol (SSE);
- ``object_stream``: assistant-ui's object stream, a run's state alone (SSE).

``FORMATS`` has them all by name, and ``decoder_for(headers)`` picks the
decoder for a response's body; ``merged_deltas`` joins consecutive deltas of
one part, as ``StreamDecoder.feed_merged`` gives them. The responses that stream a run in a format
over HTTP are in ``trio_stream.asgi``.
"""

from ._decoder import StreamDecoder, merged_deltas
from ._encoder import FORMAT_HEADER, StreamEncoder
from ._registry import FORMATS, Format, decoder_for, format_named

__all__ = [
    "FORMATS",
    "FORMAT_HEADER",
    "Format",
    "StreamDecoder",
    "StreamEncoder",
    "decoder_for",
    "format_named",
    "merged_deltas",
]
