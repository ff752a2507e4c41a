"""One hypercorn-on-Trio server for the wire-format tests.

It serves every scenario of ``scenarios.py`` in every format, at
``/<format>/<scenario>``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from trio_stream import create_run
from trio_stream.asgi import RunResponse

from ..scenarios import RESPONSES, SCENARIOS
from ..serving import running


async def scenario(request: Request) -> RunResponse:
    response = RESPONSES[request.path_params["format"]]
    return response(create_run(SCENARIOS[request.path_params["scenario"]]))


@pytest.fixture(scope="session")
def scenarios_url() -> Iterator[str]:
    with running(Starlette(routes=[Route("/{format}/{scenario}", scenario)])) as url:
        yield url
