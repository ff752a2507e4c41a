"""The AI SDK's UI message stream: encoder and response, at their assistant-stream paths."""

from ..asgi import UIMessageStreamResponse
from ..formats.ui_message_stream import UIMessageStreamEncoder

__all__ = ["UIMessageStreamEncoder", "UIMessageStreamResponse"]
