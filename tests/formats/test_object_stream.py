"""The object stream: a run's state as the official client mirrors it, and back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from trio_stream import DecodeError, RunController, create_run
from trio_stream.asgi import ObjectStreamResponse
from trio_stream.chunks import (
    Chunk,
    DataChunk,
    ErrorChunk,
    StateOperation,
    TextDeltaChunk,
    ToolCallBeginChunk,
    UpdateStateChunk,
)
from trio_stream.formats import decoder_for
from trio_stream.formats.object_stream import ObjectStreamDecoder, ObjectStreamEncoder
from trio_stream.serialization import gorp_stream

from ..asgi_calls import SentMessages
from ..clients import decode
from ..conftest import collect
from ..serving import running


def set_op(path: list[str], value: Any) -> StateOperation:
    return {"type": "set", "path": path, "value": value}


def append_op(path: list[str], text: str) -> StateOperation:
    return {"type": "append-text", "path": path, "value": text}


def operations(chunk: Chunk) -> tuple[StateOperation, ...]:
    return chunk.operations if isinstance(chunk, UpdateStateChunk) else ()


def body_of(encoder: ObjectStreamEncoder, *batches: list[StateOperation]) -> bytes:
    return encoder.encode([UpdateStateChunk(tuple(ops)) for ops in batches]) + encoder.finish()


def test_each_batch_of_operations_is_one_event() -> None:
    body = body_of(ObjectStreamEncoder(), [set_op(["count"], 1)], [append_op(["text"], "hi")])
    assert body == (
        b'data: [{"type":"set","path":["count"],"value":1}]\n\n'
        b'data: [{"type":"append-text","path":["text"],"value":"hi"}]\n\n'
    )


def test_a_snapshot_comes_before_the_first_operations_only() -> None:
    body = body_of(
        ObjectStreamEncoder({"count": 0}), [set_op(["count"], 1)], [set_op(["count"], 2)]
    )
    assert body == (
        b'data: [{"type":"set","path":[],"value":{"count":0}},'
        b'{"type":"set","path":["count"],"value":1}]\n\n'
        b'data: [{"type":"set","path":["count"],"value":2}]\n\n'
    )


def test_an_empty_snapshot_is_not_sent() -> None:
    empty: tuple[Any, ...] = (None, {}, [], "")
    for snapshot in empty:
        body = body_of(ObjectStreamEncoder(snapshot), [set_op(["a"], 1)])
        assert body == b'data: [{"type":"set","path":["a"],"value":1}]\n\n'


def test_a_snapshot_without_operations_is_sent_at_the_end() -> None:
    # Else a client of a run that never changed its state would not learn it.
    encoder = ObjectStreamEncoder({"a": [1]})
    assert encoder.encode([TextDeltaChunk("hi")]) == b""
    assert encoder.finish() == b'data: [{"type":"set","path":[],"value":{"a":[1]}}]\n\n'


def test_the_snapshot_is_taken_when_the_encoder_is_made() -> None:
    snapshot: dict[str, Any] = {"items": ("a",)}
    encoder = ObjectStreamEncoder(snapshot)
    snapshot["items"] = "changed"
    assert encoder.finish() == b'data: [{"type":"set","path":[],"value":{"items":["a"]}}]\n\n'


def test_text_is_sent_as_it_is() -> None:
    body = body_of(ObjectStreamEncoder(), [append_op(["text"], "héllo")])
    assert body == 'data: [{"type":"append-text","path":["text"],"value":"héllo"}]\n\n'.encode()


def test_what_is_not_state_has_no_place_in_the_format() -> None:
    encoder = ObjectStreamEncoder()
    others: list[Chunk] = [
        TextDeltaChunk("hi"),
        DataChunk([1]),
        ToolCallBeginChunk("c1", "f"),
        ErrorChunk("x"),
    ]
    assert encoder.start() + encoder.encode(others) + encoder.finish() == b""


@pytest.mark.anyio
async def test_a_runs_state_reaches_the_official_client_as_the_server_holds_it() -> None:
    final: list[Any] = []

    async def run(controller: RunController) -> None:
        controller.state["messages"].append("hi")
        controller.state["messages"][0] = "hi!"
        controller.append_text("text has no place here")
        await anyio.lowlevel.checkpoint()
        controller.state["title"] = "Gré"
        controller.state["title"] += "etings"
        final.append(controller.state.value)

    chunks = await collect(run, state={"messages": []})
    encoder = ObjectStreamEncoder({"messages": []})
    body = encoder.encode(chunks) + encoder.finish()
    assert body.split(b"\n\n")[0] == (
        b'data: [{"type":"set","path":[],"value":{"messages":[]}},'
        b'{"type":"set","path":["messages","0"],"value":"hi"},'
        b'{"type":"append-text","path":["messages","0"],"value":"!"}]'
    )
    official = decode("object-stream", body=body, split=1)
    assert official["message"] == final[0] == {"messages": ["hi!"], "title": "Gréetings"}
    assert official["warnings"] == []
    # Read back: the run's state chunks, the snapshot first.
    decoded = [op for chunk in ObjectStreamDecoder().decode(body) for op in operations(chunk)]
    assert decoded[0] == set_op([], {"messages": []})
    assert decoded[1:] == [op for chunk in chunks for op in operations(chunk)]


async def counting(controller: RunController) -> None:
    controller.state["count"] = 1
    await anyio.sleep(0.2)
    controller.state["count"] = 2


def state_app(**options: Any) -> Starlette:
    def respond(request: Request) -> ObjectStreamResponse:
        return ObjectStreamResponse(create_run(counting, state={"count": 0}), **options)

    return Starlette(routes=[Route("/state", respond)])


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running(state_app(snapshot={"count": 0}, heartbeat=False)) as base:
        yield base


def test_the_response_names_its_format_as_the_official_client_requires(url: str) -> None:
    response = httpx.get(f"{url}/state")
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["assistant-stream-format"] == "object-stream/v0"
    assert response.headers["cache-control"] == "no-cache"
    assert response.content == (
        b'data: [{"type":"set","path":[],"value":{"count":0}},'
        b'{"type":"set","path":["count"],"value":1}]\n\n'
        b'data: [{"type":"set","path":["count"],"value":2}]\n\n'
    )
    # fromObjectStreamResponse checks the headers itself, on the live response.
    official = decode("object-stream", url=f"{url}/state")
    assert official["message"] == {"count": 2}
    assert isinstance(decoder_for(response.headers), ObjectStreamDecoder)


@pytest.mark.anyio
async def test_a_silence_is_filled_with_keepalives_the_client_skips() -> None:
    sent = SentMessages()
    await sent.call(ObjectStreamResponse(create_run(counting, state={}), heartbeat=0.05))
    assert b": heartbeat\n\n" in sent.body
    assert sent.body.count(b"data: ") == 2
    assert decode("object-stream", body=sent.body)["message"] == {"count": 2}


def test_a_snapshot_goes_to_the_encoder_once() -> None:
    with pytest.raises(TypeError, match="give the snapshot to the encoder"):
        ObjectStreamResponse(
            create_run(counting), snapshot={"a": 1}, encoder=ObjectStreamEncoder({"a": 2})
        )


def test_assistant_streams_names_are_the_same_classes() -> None:
    assert gorp_stream.GorpStreamEncoder is ObjectStreamEncoder
    assert gorp_stream.GorpStreamResponse is ObjectStreamResponse
    assert gorp_stream.GorpStreamDecoder is ObjectStreamDecoder
    assert gorp_stream.GORP_STREAM_FORMAT == "object-stream/v0"
    assert gorp_stream.ASSISTANT_STREAM_FORMAT_HEADER == "assistant-stream-format"


# -- decoding what any producer writes ------------------------------------------


FOREIGN = (
    b": a comment first\r\n\r\n"
    b'data: [{"type":"set","path":[],"value":{"items":[]}}]\r\n\r\n'
    b"data: []\n\n"
    b'data: [{"type":"set","path":["items",0],"value":"a"},'
    b'{"type":"append-text","path":["items","0"],"value":"b"}]\n\n'
)
"""As assistant-stream's npm encoder may write it: CRLF, an empty batch, a number index."""


def test_the_decoder_reads_other_producers_bodies_split_anywhere() -> None:
    expected = [
        UpdateStateChunk((set_op([], {"items": []}),)),
        UpdateStateChunk((set_op(["items", "0"], "a"), append_op(["items", "0"], "b"))),
    ]
    assert ObjectStreamDecoder().decode(FOREIGN) == expected
    decoder = ObjectStreamDecoder()
    pieces = [chunk for i in range(len(FOREIGN)) for chunk in decoder.feed(FOREIGN[i : i + 1])]
    assert pieces + decoder.close() == expected
    assert decode("object-stream", body=FOREIGN)["message"] == {"items": ["ab"]}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'data: {"type":"set"}\n\n', "expected an array of state operations"),
        (b"data: [1]\n\n", "expected each operation as an object"),
        (b'data: [{"type":"set","path":"a"}]\n\n', "expected an operation's path as an array"),
        (b'data: [{"type":"delete","path":[]}]\n\n', "of type set or append-text"),
        (b'data: [{"type":"append-text","path":[],"value":1}]\n\n', "value as a string"),
        (b'data: [{"type":"set","path":[true],"value":1}]\n\n', "keys of a path as strings"),
        (b'data: [{"type":"set","path":[],"value":1}]\n', "inside an event"),
    ],
)
def test_the_decoder_refuses_what_is_not_the_format(body: bytes, problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        ObjectStreamDecoder().decode(body)


def test_a_body_is_told_an_object_stream_by_its_header_or_its_first_event() -> None:
    by_header = {
        "content-type": "text/event-stream",
        "Assistant-Stream-Format": "object-stream/v0",
    }
    assert isinstance(decoder_for(by_header), ObjectStreamDecoder)
    untold = decoder_for({"content-type": "text/event-stream"})
    assert untold.decode(FOREIGN) == ObjectStreamDecoder().decode(FOREIGN)
