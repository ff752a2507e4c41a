"""What a relay forwards: the remote run as it was said, not as it was cut.

A remote tool call reads the remote body in whatever pieces the network
gives, and merges the deltas of one part that a piece brings into one. The
tests serve a remote body cut at drawn points, piece by piece, over real
HTTP (hypercorn with Trio, in a thread), and check that what the relay
forwards is the remote run with its ids renamed: the same text, reasoning,
arguments, results and structure, in order. And a relayed body, served to
the official npm client, renders the same message as the same run would
unmerged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from trio_stream import RunController, create_run
from trio_stream.asgi import DataStreamResponse, RunResponse
from trio_stream.chunks import (
    AnnotationsChunk,
    Chunk,
    DataChunk,
    ErrorChunk,
    FileChunk,
    ReasoningDeltaChunk,
    ReasoningPartStartChunk,
    SourceChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)
from trio_stream.formats.data_stream import DataStreamDecoder, DataStreamEncoder

from .clients import decode as npm_decode
from .clients import summarize
from .conftest import collect
from .formats.runs import ArgumentEnds, joined, pieces, read_back, runs
from .serving import running

pytestmark = pytest.mark.anyio

CALL = "call"
"""The local tool call's id, under which the remote run is relayed."""

LEFT_OUT = (AnnotationsChunk, StepStartChunk, StepFinishChunk, ErrorChunk, UpdateStateChunk)
"""Chunks a drawn remote run leaves out: those of the remote message as a whole (summed
up in the outcome, not relayed), an error (which fails the call), and state operations
(drawn without a state they apply to; the state's relay is tested with the remote's)."""


async def served_pieces(request: Request) -> Response:
    """The body posted as pieces (bytes as Latin-1 text), sent one by one, a pause between."""
    body = await request.json()

    async def send() -> AsyncIterator[bytes]:
        for piece in body["pieces"]:
            yield piece.encode("latin-1")
            await anyio.sleep(0.001)

    return StreamingResponse(
        send(), media_type=DataStreamEncoder.media_type, headers=dict(DataStreamEncoder.headers)
    )


async def chatty(controller: RunController) -> None:
    """A remote run with every kind of delta, each many times over, in several parts."""
    controller.add_reasoning_part("Planning")
    for word in ("first ", "the ", "lookup"):
        controller.append_reasoning(word)
    call = await controller.add_tool_call("lookup", "call_a")
    for piece in ('{"q": ', '"tr', "io", '"}'):
        call.append_args_text(piece)
    async with call.open_substream() as sub:
        for i in range(300):
            sub.append_text(f"inside {i} ")
    call.set_response("found")
    for i in range(1000):
        controller.append_text(f"tok{i} ")


async def chatty_remote(request: Request) -> RunResponse:
    return DataStreamResponse(create_run(chatty))


def relaying(downstream: str) -> Any:
    async def relay(request: Request) -> RunResponse:
        async def run(controller: RunController) -> None:
            controller.spawn_remote_tool_call("relay", downstream, tool_call_id=CALL)

        return DataStreamResponse(create_run(run))

    return relay


@pytest.fixture(scope="module")
def remote() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/pieces", served_pieces, methods=["POST"]),
            Route("/chatty", chatty_remote, methods=["POST"]),
        ]
    )
    with running(app) as url:
        yield url


@pytest.fixture(scope="module")
def relay(remote: str) -> Iterator[str]:
    app = Starlette(routes=[Route("/chatty", relaying(f"{remote}/chatty"), methods=["POST"])])
    with running(app) as url:
        yield url


def renamed(chunk: Chunk) -> Chunk:
    """``chunk`` as the relay under ``CALL`` says it: its ids in the call's namespace."""

    def parent(parent_id: str | None) -> str:
        return CALL if parent_id is None else f"{CALL}.{parent_id}"

    match chunk:
        case TextDeltaChunk():
            return TextDeltaChunk(chunk.text_delta, parent(chunk.parent_id))
        case ReasoningDeltaChunk():
            return ReasoningDeltaChunk(chunk.reasoning_delta, parent(chunk.parent_id))
        case ReasoningPartStartChunk():
            return ReasoningPartStartChunk(chunk.unstable_summary, parent(chunk.parent_id))
        case ToolCallBeginChunk():
            return ToolCallBeginChunk(
                parent(chunk.tool_call_id), chunk.tool_name, parent(chunk.parent_id)
            )
        case ToolCallDeltaChunk():
            return ToolCallDeltaChunk(parent(chunk.tool_call_id), chunk.args_text_delta)
        case ToolCallArgsTextFinishChunk():
            return ToolCallArgsTextFinishChunk(parent(chunk.tool_call_id), chunk.args_text_delta)
        case ToolResultChunk():
            return ToolResultChunk(
                parent(chunk.tool_call_id), chunk.result, chunk.artifact, chunk.is_error
            )
        case DataChunk():
            return DataChunk(chunk.data, chunk.name, parent(chunk.parent_id))
        case SourceChunk():
            return SourceChunk(
                chunk.id, chunk.url, chunk.source_type, chunk.title, parent(chunk.parent_id)
            )
        case FileChunk():
            return FileChunk(chunk.data, chunk.mime_type, parent(chunk.parent_id))
    raise AssertionError(f"not relayed: {chunk!r}")


def own(chunk: Chunk) -> bool:
    """Whether ``chunk`` is the local call's own (its start, arguments, result)."""
    return getattr(chunk, "tool_call_id", None) == CALL


@st.composite
def cut_runs(draw: st.DrawFn) -> tuple[list[Chunk], list[str]]:
    """A remote run, and its data stream body cut into pieces (bytes as Latin-1 text).

    Drawn whole before the test's coroutine starts, so that Hypothesis never
    stops a draw inside a task of the event loop.
    """
    run: list[Chunk] = [c for c in draw(runs(max_chunks=40)) if not isinstance(c, LEFT_OUT)]
    encoder = DataStreamEncoder()
    body = encoder.encode(run) + encoder.finish()
    return run, [piece.decode("latin-1") for piece in draw(pieces(body))]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut_run=cut_runs())
async def test_a_relayed_run_is_the_remote_run_renamed_however_its_body_is_cut(
    remote: str, cut_run: tuple[list[Chunk], list[str]]
) -> None:
    run, cut = cut_run

    async def relay(controller: RunController) -> None:
        controller.spawn_remote_tool_call(
            "relay", f"{remote}/pieces", json={"pieces": cut}, tool_call_id=CALL
        )

    relayed = await collect(relay)
    remote_run = read_back(run, ArgumentEnds(text_rides=True, braces=True))
    assert joined([c for c in relayed if not own(c)]) == joined([renamed(c) for c in remote_run])
    answer = "".join(
        c.text_delta for c in run if isinstance(c, TextDeltaChunk) and not c.parent_id
    )
    assert relayed[-1] == ToolResultChunk(CALL, answer)


async def test_deltas_read_at_once_are_relayed_as_one(remote: str) -> None:
    async def relay(controller: RunController) -> None:
        controller.spawn_remote_tool_call("relay", f"{remote}/chatty", tool_call_id=CALL)

    relayed = await collect(relay)
    texts = [c for c in relayed if isinstance(c, TextDeltaChunk) and c.parent_id == CALL]
    assert "".join(c.text_delta for c in texts) == "".join(f"tok{i} " for i in range(1000))
    # 1,000 deltas written at once, read in a few pieces: a few chunks.
    assert len(texts) < 100


async def test_a_relayed_body_renders_in_the_npm_client_as_the_run_unmerged(
    remote: str, relay: str
) -> None:
    async with httpx.AsyncClient() as client:
        remote_body = (await client.post(f"{remote}/chatty")).content
        relayed_body = (await client.post(f"{relay}/chatty")).content
    relayed = DataStreamDecoder().decode(relayed_body)
    # The same remote run relayed delta by delta: what the relay forwarded
    # before it merged.
    remote_run = DataStreamDecoder().decode(remote_body)
    start, end = [c for c in relayed if own(c)][:-1], [c for c in relayed if own(c)][-1:]
    unmerged = [*start, *(renamed(c) for c in remote_run), *end]
    encoder = DataStreamEncoder()
    unmerged_body = encoder.encode(unmerged) + encoder.finish()
    assert relayed_body.count(b"\n") < unmerged_body.count(b"\n") / 10

    theirs = await anyio.to_thread.run_sync(lambda: npm_decode("data-stream", body=relayed_body))
    expected = await anyio.to_thread.run_sync(
        lambda: npm_decode("data-stream", body=unmerged_body)
    )
    assert summarize(theirs["message"]["parts"]) == summarize(expected["message"]["parts"])
    assert theirs["warnings"] == expected["warnings"] == []
    answer = "".join(
        c.text_delta for c in remote_run if isinstance(c, TextDeltaChunk) and not c.parent_id
    )
    assert end == [ToolResultChunk(CALL, answer)]
