"""The OpenAI chat completions stream: encoder, decoder, response, at assistant-stream's paths."""

from ..asgi import OpenAIStreamResponse
from ..formats.openai_stream import OpenAIStreamDecoder, OpenAIStreamEncoder

__all__ = ["OpenAIStreamDecoder", "OpenAIStreamEncoder", "OpenAIStreamResponse"]
