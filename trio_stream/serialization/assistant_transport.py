"""The assistant transport: encoder and response, at their assistant-stream paths."""

from ..asgi import AssistantTransportResponse
from ..formats.assistant_transport import AssistantTransportEncoder

__all__ = ["AssistantTransportEncoder", "AssistantTransportResponse"]
