"""The assistant-ui data stream: encoder, decoder and response, at their assistant-stream paths."""

from ..asgi import DataStreamResponse
from ..formats.data_stream import DataStreamDecoder, DataStreamEncoder

__all__ = ["DataStreamDecoder", "DataStreamEncoder", "DataStreamResponse"]
