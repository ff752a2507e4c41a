"""A plain Starlette app: one route, the body validated and bounded, no framework magic.

Run it with:  uv run python examples/starlette_app.py

It serves on http://127.0.0.1:8000 with hypercorn on Trio. ``parse_body``
does what FastAPI would and more: it refuses a body over the size bound
before reading it (413), one that is not JSON (400, 415), and one that does
not match the model (422, naming each field), all as ``{"detail": ...}``.

Try:  curl -N localhost:8000/chat -H 'content-type: application/json' \\
        -d '{"id": "c1", "messages": [{"id": "m1", "role": "user",
             "parts": [{"type": "text", "text": "Hello"}]}]}'
"""

from __future__ import annotations

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trio_stream import RunController, create_run, serve
from trio_stream.asgi import UIMessageStreamResponse
from trio_stream.requests import RequestBodyError, UIMessageStreamRequest, parse_body


async def chat(request: Request) -> Response:
    try:
        body = await parse_body(request, UIMessageStreamRequest, max_size=64 * 1024)
    except RequestBodyError as error:
        return error.response()
    question = body.messages[-1].text

    async def run(controller: RunController) -> None:
        for word in f"You said: {question}".split():
            controller.append_text(word + " ")
            await trio.sleep(0.05)

    return UIMessageStreamResponse(create_run(run))


app = Starlette(routes=[Route("/chat", chat, methods=["POST"])])

if __name__ == "__main__":
    trio.run(serve, app)
