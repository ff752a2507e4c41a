"""The assistant transport: encoder, decoder and response, at their assistant-stream paths."""

from ..asgi import AssistantTransportResponse
from ..formats.assistant_transport import AssistantTransportDecoder, AssistantTransportEncoder

__all__ = ["AssistantTransportDecoder", "AssistantTransportEncoder", "AssistantTransportResponse"]
