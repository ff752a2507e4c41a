"""RunResponse: what every wire format's response does, over real HTTP.

The responses are served by hypercorn on Trio (``tests/serving.py``) and read
with httpx or curl; the app records what happened on the server side.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
import trio
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trio_stream import RunController, SerializationError, ToolCallController, create_run
from trio_stream.asgi import (
    AssistantTransportResponse,
    DataStreamResponse,
    OpenAIStreamResponse,
    RunResponse,
)
from trio_stream.chunks import Chunk, ReasoningDeltaChunk, TextDeltaChunk
from trio_stream.formats.data_stream import DataStreamEncoder

from ..asgi_calls import SCOPE, SentMessages, never_disconnect
from ..clients import JS
from ..serving import running

DATA_STREAM_END = b'd:{"finishReason":"stop","usage":{"inputTokens":0,"outputTokens":0}}\n'
"""How a data stream body without steps ends."""


class Recorder:
    """Wraps an app; records its ASGI sends and the exceptions it raised."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.sends: list[Message] = []
        self.raised: list[tuple[BaseException, bool]] = []
        self.done = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def recording_send(message: Message) -> None:
            self.sends.append(message)
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        except Exception as exc:
            body_ended = any(
                m["type"] == "http.response.body" and not m.get("more_body") for m in self.sends
            )
            self.raised.append((exc, body_ended))
        finally:
            self.done.set()

    @property
    def body_sends(self) -> int:
        return sum(m["type"] == "http.response.body" for m in self.sends)


def app_for(response: Any) -> Starlette:
    async def endpoint(request: Request) -> Response:
        result: Response = response()
        return result

    return Starlette(routes=[Route("/", endpoint)])


@pytest.fixture
def events() -> dict[str, threading.Event]:
    return {name: threading.Event() for name in ("started", "cancelled", "finished")}


# -- the run's lifetime ---------------------------------------------------------


def test_a_client_that_disconnects_while_the_run_is_idle_cancels_its_tasks(
    events: dict[str, threading.Event], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trio_stream")

    async def slow_tool(tool: ToolCallController) -> str:
        try:
            events["started"].set()
            await trio.sleep_forever()
        finally:
            events["cancelled"].set()
        return "never"

    async def callback(controller: RunController) -> None:
        controller.append_text("thinking")
        controller.spawn_tool_call("slow", slow_tool)
        controller.spawn_tool_call("slow", slow_tool)

    recorder = Recorder(app_for(lambda: DataStreamResponse(create_run(callback))))
    with running(recorder) as url, httpx.stream("GET", url, timeout=10) as response:
        lines = response.iter_lines()  # kept: dropping it would close the response
        assert next(lines) == '0:"thinking"'
        assert events["started"].wait(5)
        time.sleep(0.2)  # the run is idle now: nothing more will be written
        assert not events["cancelled"].is_set()
        response.close()
        disconnected = time.monotonic()
        assert events["cancelled"].wait(5)
        # Loose here; the benchmark measures it properly.
        assert time.monotonic() - disconnected < 2
        assert recorder.done.wait(5)
    assert recorder.raised == []
    assert "client disconnected from /: run cancelled, all its tasks done in" in caplog.text


def test_a_client_that_disconnects_mid_stream_stops_the_producer(
    events: dict[str, threading.Event],
) -> None:
    produced: list[int] = []

    async def callback(controller: RunController) -> None:
        try:
            for i in range(10_000):
                controller.append_text(f"{i} ")
                produced.append(i)
                await trio.sleep(0.001)
        finally:
            events["cancelled"].set()

    with (
        running(app_for(lambda: DataStreamResponse(create_run(callback)))) as url,
        httpx.stream("GET", url, timeout=10) as response,
    ):
        lines = response.iter_lines()
        for _ in range(5):
            next(lines)
        response.close()
        assert events["cancelled"].wait(5)
    assert len(produced) < 10_000


def test_behind_fastapi_middleware_a_disconnect_still_cancels_the_run(
    events: dict[str, threading.Event],
) -> None:
    app = FastAPI()

    @app.middleware("http")
    async def passthrough(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        return await call_next(request)

    async def slow_tool(tool: ToolCallController) -> None:
        try:
            events["started"].set()
            await trio.sleep_forever()
        finally:
            events["cancelled"].set()

    @app.post("/chat")
    async def chat(request: Request) -> DataStreamResponse:
        question = (await request.json())["question"]

        async def run(controller: RunController) -> None:
            controller.append_text(question)
            controller.spawn_tool_call("slow", slow_tool)

        return DataStreamResponse(create_run(run))

    with (
        running(app) as url,
        httpx.stream("POST", url + "/chat", json={"question": "why?"}, timeout=10) as response,
    ):
        lines = response.iter_lines()
        assert next(lines) == '0:"why?"'
        assert events["started"].wait(5)
        time.sleep(0.1)
        assert not events["cancelled"].is_set()
        response.close()
        assert events["cancelled"].wait(5)


def test_over_http2_a_reset_stream_cancels_its_run_and_the_connection_lives_on(
    events: dict[str, threading.Event],
) -> None:
    async def slow_tool(tool: ToolCallController) -> None:
        try:
            await trio.sleep_forever()
        finally:
            events["cancelled"].set()

    async def slow(controller: RunController) -> None:
        controller.append_text("working")
        controller.spawn_tool_call("slow", slow_tool)

    async def quick(controller: RunController) -> None:
        controller.append_text("quick")

    app = Starlette(
        routes=[
            Route("/slow", lambda request: DataStreamResponse(create_run(slow))),
            Route("/quick", lambda request: DataStreamResponse(create_run(quick))),
        ]
    )
    with running(app) as url:
        # Node's http2 client, cleartext with prior knowledge, as hypercorn allows.
        result = subprocess.run(
            ["node", str(JS / "http2_abort.mjs"), url, "/slow", "/quick"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert events["cancelled"].wait(5)
    output = json.loads(result.stdout)
    assert output["aborted"].startswith('0:"working"\n')
    assert output["after"] == 200
    assert output["body"].startswith('0:"quick"\n')


def test_an_ordinary_run_ends_the_body_and_runs_the_background_task() -> None:
    background_ran = threading.Event()

    async def callback(controller: RunController) -> None:
        controller.append_text("hi")

    def respond() -> DataStreamResponse:
        return DataStreamResponse(
            create_run(callback), background=BackgroundTask(background_ran.set)
        )

    recorder = Recorder(app_for(respond))
    with running(recorder) as url:
        assert httpx.get(url).content == b'0:"hi"\n' + DATA_STREAM_END
        assert background_ran.wait(5)
    assert recorder.raised == []


# -- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response_class", "error", "end"),
    [
        (DataStreamResponse, b'3:"the model is down"\n', b""),
        (
            AssistantTransportResponse,
            b'data: {"type":"error","error":"the model is down"}\n\n',
            b"data: [DONE]\n\n",
        ),
        (
            OpenAIStreamResponse,
            b'data: {"error":{"message":"the model is down","type":"server_error","code":null}}'
            b"\n\n",
            b"data: [DONE]\n\n",
        ),
    ],
)
def test_a_failing_run_sends_the_error_and_a_complete_body_before_raising(
    response_class: type[RunResponse], error: bytes, end: bytes
) -> None:
    async def callback(controller: RunController) -> None:
        controller.append_text("partial")
        await trio.sleep(0.01)
        raise ValueError("the model is down")

    recorder = Recorder(app_for(lambda: response_class(create_run(callback))))
    with running(recorder) as url:
        # curl exits non-zero on a truncated chunked body (exit code 18).
        result = subprocess.run(
            ["curl", "--silent", "--show-error", "--no-buffer", "--max-time", "20", url],
            capture_output=True,
            check=False,
        )
        assert recorder.done.wait(5)
    assert result.returncode == 0, result.stderr
    assert error in result.stdout
    assert result.stdout.endswith(end)
    assert result.stdout.index(error) > result.stdout.index(b"partial")
    [(exc, body_ended)] = recorder.raised
    assert isinstance(exc, ValueError)
    assert str(exc) == "the model is down"
    assert body_ended, "the exception propagated before the body was complete"


# -- writes -------------------------------------------------------------------------


def test_chunks_made_together_leave_together() -> None:
    async def callback(controller: RunController) -> None:
        for i in range(2000):
            controller.append_text(f"{i} ")

    recorder = Recorder(app_for(lambda: DataStreamResponse(create_run(callback))))
    with running(recorder) as url:
        body = httpx.get(url).text
    assert body.count("\n") == 2001
    # One start and a handful of bodies, not 2000 sends.
    assert recorder.body_sends <= 5


def test_a_producer_that_yields_between_chunks_still_gets_few_writes() -> None:
    """One chunk per task switch would be one write per chunk; the 1 ms window
    gathers them."""

    async def callback(controller: RunController) -> None:
        for i in range(5000):
            controller.append_text(f"{i} ")
            await trio.lowlevel.checkpoint()

    recorder = Recorder(app_for(lambda: DataStreamResponse(create_run(callback))))
    with running(recorder) as url:
        body = httpx.get(url).text
    assert body.count("\n") == 5001
    assert body.splitlines()[4999] == '0:"4999 "'
    # Without the window: about 2,500 writes (two chunks each).
    assert recorder.body_sends < 500, recorder.body_sends


def test_a_slow_producers_chunks_leave_one_by_one_at_once() -> None:
    produced: dict[int, float] = {}

    async def callback(controller: RunController) -> None:
        for i in range(8):
            await trio.sleep(0.1)
            produced[i] = time.monotonic()
            controller.append_text(f"{i}")

    arrived: dict[int, float] = {}
    with (
        running(app_for(lambda: DataStreamResponse(create_run(callback)))) as url,
        httpx.stream("GET", url, timeout=10) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("0:"):
                arrived[int(line[3:-1])] = time.monotonic()
    assert sorted(arrived) == list(range(8))
    # Each chunk reached the client before the next one was made (100 ms
    # later): nothing waits for company.
    early = [arrived[i] < produced[i + 1] for i in range(7)]
    assert all(early), [arrived[i] - produced[i] for i in range(8)]


def test_heartbeats_fill_silence_and_stop_with_the_stream() -> None:
    async def callback(controller: RunController) -> None:
        controller.append_text("a")
        await trio.sleep(0.35)
        controller.append_text("b")

    with running(
        app_for(lambda: AssistantTransportResponse(create_run(callback), heartbeat=0.1))
    ) as url:
        body = httpx.get(url).content
    first, second = body.index(b'"textDelta":"a"'), body.index(b'"textDelta":"b"')
    assert 2 <= body[first:second].count(b": heartbeat\n\n") <= 4
    assert b": heartbeat" not in body[second:]


def test_the_data_stream_heartbeat_is_a_blank_line_and_off_by_default() -> None:
    async def callback(controller: RunController) -> None:
        await trio.sleep(0.25)
        controller.append_text("a")

    with running(
        Starlette(
            routes=[
                Route("/off", lambda r: DataStreamResponse(create_run(callback))),
                Route("/on", lambda r: DataStreamResponse(create_run(callback), heartbeat=0.1)),
            ]
        )
    ) as url:
        assert httpx.get(url + "/off").content == b'0:"a"\n' + DATA_STREAM_END
        on = httpx.get(url + "/on").content
    # About two blank lines in the 250 ms silence; a busy machine may move one.
    silence, rest = on.split(b"0:", 1)
    assert 1 <= len(silence) <= 3
    assert silence == b"\n" * len(silence)
    assert b"0:" + rest == b'0:"a"\n' + DATA_STREAM_END


# -- what a Starlette response does ------------------------------------------------


def test_headers_status_and_media_types() -> None:
    async def callback(controller: RunController) -> None:
        controller.append_text("x")

    def respond() -> Response:
        return AssistantTransportResponse(
            create_run(callback),
            status_code=201,
            headers={"x-request-id": "42", "cache-control": "no-store"},
        )

    with running(
        Starlette(
            routes=[
                Route("/at", lambda r: respond()),
                Route("/ds", lambda r: DataStreamResponse(create_run(callback))),
            ]
        )
    ) as url:
        at = httpx.get(url + "/at")
        ds = httpx.get(url + "/ds")
    assert at.status_code == 201
    assert at.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert at.headers["x-request-id"] == "42"
    assert at.headers["cache-control"] == "no-store"  # the caller's value wins
    assert at.headers["x-accel-buffering"] == "no"
    assert ds.headers["content-type"] == "text/plain; charset=utf-8"
    assert ds.headers["x-vercel-ai-data-stream"] == "v1"
    assert "x-accel-buffering" not in ds.headers


def test_bad_arguments_are_refused_at_once() -> None:
    async def callback(controller: RunController) -> None:
        pass

    with pytest.raises(TypeError, match="create_run"):
        DataStreamResponse(callback)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="heartbeat"):
        DataStreamResponse(create_run(callback), heartbeat=-1)
    with pytest.raises(ValueError, match="heartbeat"):
        DataStreamResponse(create_run(callback), heartbeat=float("nan"))
    with pytest.raises(TypeError, match="needs an encoder"):
        RunResponse(create_run(callback))
    with pytest.raises(TypeError, match="DataStreamEncoder"):
        AssistantTransportResponse(create_run(callback), encoder=DataStreamEncoder())


# -- any backend, without a server ------------------------------------------------


async def a_pause_b(controller: RunController) -> None:
    controller.append_text("a")
    await anyio.sleep(0.01)
    controller.append_text("b")


@pytest.mark.anyio
async def test_the_response_is_a_plain_asgi_callable_on_any_backend() -> None:
    sent = SentMessages()
    await sent.call(DataStreamResponse(create_run(a_pause_b)))
    assert sent[0]["type"] == "http.response.start"
    assert sent.body == b'0:"a"\n0:"b"\n' + DATA_STREAM_END
    assert sent[-1]["more_body"] is False


@pytest.mark.anyio
async def test_the_last_batch_leaves_with_the_ending_in_the_final_message(
    anyio_backend: str,
) -> None:
    sent = SentMessages()
    await sent.call(DataStreamResponse(create_run(a_pause_b)))
    bodies = [(m["body"], m["more_body"]) for m in sent if m["type"] == "http.response.body"]
    if anyio_backend == "trio":
        assert bodies == [(b'0:"a"\n', True), (b'0:"b"\n' + DATA_STREAM_END, False)]
    else:
        # AnyIO's task group on asyncio yields once more when the run's
        # nursery closes, so the last batch is read before the run has ended.
        assert bodies == [(b'0:"a"\n', True), (b'0:"b"\n', True), (DATA_STREAM_END, False)]


@pytest.mark.anyio
async def test_a_runs_only_batch_is_written_at_once_before_the_ending() -> None:
    async def callback(controller: RunController) -> None:
        controller.append_text("a")

    sent = SentMessages()
    await sent.call(DataStreamResponse(create_run(callback)))
    bodies = [(m["body"], m["more_body"]) for m in sent if m["type"] == "http.response.body"]
    assert bodies == [(b'0:"a"\n', True), (DATA_STREAM_END, False)]


@pytest.mark.anyio
async def test_a_failed_runs_body_ends_before_it_raises() -> None:
    async def callback(controller: RunController) -> None:
        controller.append_text("a")
        await anyio.sleep(0.01)
        raise ValueError("broken")

    sent = SentMessages()
    with pytest.raises(ValueError, match="broken"):
        await sent.call(DataStreamResponse(create_run(callback)))
    assert sent.body == b'0:"a"\n3:"broken"\n'
    assert sent[-1]["more_body"] is False


def test_a_paced_stream_ends_in_two_writes_over_http() -> None:
    async def callback(controller: RunController) -> None:
        for text in "abc":
            await trio.sleep(0.02)
            controller.append_text(text)

    recorder = Recorder(app_for(lambda: DataStreamResponse(create_run(callback))))
    with running(recorder) as url:
        body = httpx.get(url).content
    assert body == b'0:"a"\n0:"b"\n0:"c"\n' + DATA_STREAM_END
    last = recorder.sends[-1]
    assert last["body"] == b'0:"c"\n' + DATA_STREAM_END
    assert last["more_body"] is False
    assert recorder.body_sends == 3


@pytest.mark.anyio
async def test_a_server_refusing_writes_counts_as_a_disconnect() -> None:
    cancelled = anyio.Event()

    async def callback(controller: RunController) -> None:
        try:
            while True:
                controller.append_text("a")
                await anyio.sleep(0.01)
        finally:
            cancelled.set()

    writes = 0

    async def send(message: Message) -> None:
        nonlocal writes
        if message["type"] == "http.response.body":
            writes += 1
            if writes == 3:
                raise OSError("connection reset")  # what uvicorn does, as the ASGI spec says

    await DataStreamResponse(create_run(callback))(SCOPE, never_disconnect, send)
    assert cancelled.is_set()
    assert writes == 3


@pytest.mark.anyio
async def test_a_chunk_a_stream_cannot_send_fails_the_run_at_the_call() -> None:
    async def raw_chunks() -> AsyncIterator[Chunk]:
        yield TextDeltaChunk("fine")
        await anyio.lowlevel.checkpoint()
        yield TextDeltaChunk("not \udc80 UTF-8")

    async def callback(controller: RunController) -> None:
        controller.add_stream(raw_chunks())

    sent = SentMessages()
    with pytest.raises(SerializationError, match="not valid Unicode"):
        await sent.call(DataStreamResponse(create_run(callback)))
    assert sent.body.startswith(b'0:"fine"\n3:"a text-delta chunk\'s text_delta is not valid')
    assert sent[-1]["more_body"] is False


class _FailingEncoder(DataStreamEncoder):
    """A format of one's own with a bug: it cannot encode reasoning."""

    def encode(self, chunks: Iterable[Chunk]) -> bytes:
        batch = list(chunks)
        if any(isinstance(chunk, ReasoningDeltaChunk) for chunk in batch):
            raise RuntimeError("no reasoning here")
        return super().encode(batch)


@pytest.mark.anyio
async def test_a_chunk_the_encoder_cannot_write_ends_the_body_with_an_error() -> None:
    async def callback(controller: RunController) -> None:
        controller.append_text("fine")
        await anyio.sleep(0.01)  # past the coalescing window: a write of its own
        controller.append_reasoning("hmm")

    sent = SentMessages()
    with pytest.raises(SerializationError, match="could not be encoded"):
        await sent.call(RunResponse(create_run(callback), encoder=_FailingEncoder()))
    assert sent.body.startswith(b'0:"fine"\n3:"a chunk could not be encoded for the wire: ')
    assert sent[-1]["more_body"] is False


@pytest.mark.anyio
async def test_an_error_message_that_is_not_unicode_is_spelled_out() -> None:
    async def callback(controller: RunController) -> None:
        raise ValueError("bad byte: \udcff")

    sent = SentMessages()
    with pytest.raises(ValueError, match="bad byte"):
        await sent.call(DataStreamResponse(create_run(callback)))
    assert sent.body == b'3:"bad byte: \\\\udcff"\n'


@pytest.mark.anyio
async def test_a_client_gone_before_the_headers_means_no_run() -> None:
    started = False

    async def callback(controller: RunController) -> None:
        nonlocal started
        started = True

    async def send(message: Message) -> None:
        raise OSError("connection reset")

    await DataStreamResponse(create_run(callback))(SCOPE, never_disconnect, send)
    assert not started


@pytest.mark.anyio
async def test_a_client_gone_as_the_body_starts_leaves_no_run_behind() -> None:
    happened: list[str] = []

    async def callback(controller: RunController) -> None:
        happened.append("started")
        try:
            await anyio.sleep_forever()
        finally:
            happened.append("cleaned up")

    async def gone() -> Message:
        return {"type": "http.disconnect"}

    sent = SentMessages()
    await DataStreamResponse(create_run(callback))(SCOPE, gone, sent.send)
    # Cancelled before its first step, or cancelled and cleaned up: never left running.
    assert happened in ([], ["started", "cleaned up"])
    assert [m["type"] for m in sent] == ["http.response.start"]


@pytest.mark.anyio
async def test_a_run_failing_in_its_clean_up_after_the_client_left_raises_that_failure() -> None:
    written = anyio.Event()

    async def callback(controller: RunController) -> None:
        controller.append_text("a")
        try:
            await anyio.sleep_forever()
        finally:
            raise ValueError("clean-up failed")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            written.set()

    async def leave_after_the_first_write() -> Message:
        await written.wait()
        return {"type": "http.disconnect"}

    with pytest.raises(ValueError, match="clean-up failed"):
        await DataStreamResponse(create_run(callback))(SCOPE, leave_after_the_first_write, send)


@pytest.mark.anyio
async def test_a_response_cancelled_from_outside_returns_after_its_runs_clean_up() -> None:
    happened: list[str] = []

    async def tool(call: ToolCallController) -> str:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)  # a clean-up that takes a while
            happened.append("tool cleaned up")
        return "never"

    async def callback(controller: RunController) -> None:
        controller.spawn_tool_call("slow", tool)
        controller.append_text("a")

    sent = SentMessages()
    with anyio.move_on_after(0.1):
        await sent.call(DataStreamResponse(create_run(callback)))
    assert happened == ["tool cleaned up"]
    assert sent.body.endswith(b'0:"a"\n')  # and no ending: the response was cut short
