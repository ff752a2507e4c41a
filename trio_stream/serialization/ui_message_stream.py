"""The AI SDK's UI message stream: encoder, decoder and response, at assistant-stream's paths."""

from ..asgi import UIMessageStreamResponse
from ..formats.ui_message_stream import UIMessageStreamDecoder, UIMessageStreamEncoder

__all__ = ["UIMessageStreamDecoder", "UIMessageStreamEncoder", "UIMessageStreamResponse"]
