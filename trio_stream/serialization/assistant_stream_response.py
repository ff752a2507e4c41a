"""A run streamed in any format, at assistant-stream's path: ``AssistantStreamResponse``.

It is ``trio_stream.asgi.RunResponse``, which takes the encoder by keyword:
``AssistantStreamResponse(create_run(callback), encoder=DataStreamEncoder())``.
"""

from ..asgi import RunResponse as AssistantStreamResponse

__all__ = ["AssistantStreamResponse"]
