"""The OpenAI chat completions stream: encoder and response, at their assistant-stream paths."""

from ..asgi import OpenAIStreamResponse
from ..formats.openai_stream import OpenAIStreamEncoder

__all__ = ["OpenAIStreamEncoder", "OpenAIStreamResponse"]
