"""The assistant-ui data stream: encoder and response, at their assistant-stream paths."""

from ..asgi import DataStreamResponse
from ..formats.data_stream import DataStreamEncoder

__all__ = ["DataStreamEncoder", "DataStreamResponse"]
