"""assistant-stream's import paths name this package's classes."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from trio_stream import asgi, formats
from trio_stream.formats import assistant_transport, data_stream, object_stream, openai_stream

PATHS: dict[str, dict[str, Any]] = {
    "serialization": {
        "DataStreamEncoder": data_stream.DataStreamEncoder,
        "DataStreamResponse": asgi.DataStreamResponse,
        "OpenAIStreamEncoder": openai_stream.OpenAIStreamEncoder,
        "OpenAIStreamResponse": asgi.OpenAIStreamResponse,
        "AssistantTransportEncoder": assistant_transport.AssistantTransportEncoder,
        "AssistantTransportResponse": asgi.AssistantTransportResponse,
        "GorpStreamEncoder": object_stream.ObjectStreamEncoder,
        "GorpStreamResponse": asgi.ObjectStreamResponse,
    },
    "serialization.data_stream": {
        "DataStreamEncoder": data_stream.DataStreamEncoder,
        "DataStreamResponse": asgi.DataStreamResponse,
    },
    "serialization.assistant_transport": {
        "AssistantTransportEncoder": assistant_transport.AssistantTransportEncoder,
        "AssistantTransportResponse": asgi.AssistantTransportResponse,
    },
    "serialization.openai_stream": {
        "OpenAIStreamEncoder": openai_stream.OpenAIStreamEncoder,
        "OpenAIStreamResponse": asgi.OpenAIStreamResponse,
    },
    "serialization.gorp_stream": {
        "GorpStreamEncoder": object_stream.ObjectStreamEncoder,
        "GorpStreamResponse": asgi.ObjectStreamResponse,
        "GORP_STREAM_FORMAT": "object-stream/v0",
        "ASSISTANT_STREAM_FORMAT_HEADER": "assistant-stream-format",
    },
    "serialization.heartbeat": {
        "DEFAULT_HEARTBEAT_INTERVAL": 15.0,
        "add_sse_heartbeat": asgi.add_sse_heartbeat,
    },
    "serialization.stream_encoder": {"StreamEncoder": formats.StreamEncoder},
    "serialization.assistant_stream_response": {"AssistantStreamResponse": asgi.RunResponse},
}
"""assistant-stream's module paths (under ``trio_stream``), and what each name there is."""


@pytest.mark.parametrize("path", sorted(PATHS))
def test_each_of_assistant_streams_names_is_found_at_its_path(path: str) -> None:
    module = importlib.import_module(f"trio_stream.{path}")
    for name, expected in PATHS[path].items():
        assert getattr(module, name) == expected, f"{path}.{name}"
        assert name in module.__all__
