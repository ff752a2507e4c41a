"""Every line the library logs names its run, and what else it is about, in ``extra``.

The records are collected from the ``trio_stream`` logger across runs that
take every path that logs: a client leaving a served run (over HTTP, from a
hypercorn server in a thread), a tool whose error becomes its result, the
shutdown cut-off, and a resumable stream's end. JSON output, as the docs
show it, is ``examples/json_logs.py``, run here as a program.
"""

from __future__ import annotations

import ast
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import anyio
import pytest
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

import trio_stream.client
from trio_stream import RunController, ToolCallController, create_run
from trio_stream._shutdown import SCOPE_KEY, Shutdown
from trio_stream.asgi import DataStreamResponse
from trio_stream.formats.data_stream import DataStreamEncoder
from trio_stream.resumable import ResumableStreams

from .asgi_calls import SentMessages, never_disconnect
from .serving import ROOT, running

pytestmark = pytest.mark.anyio


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def fields(self) -> list[dict[str, object]]:
        """Each record's ``trio_stream.*`` fields, without the prefix."""
        return [
            {
                k.removeprefix("trio_stream."): v
                for k, v in vars(r).items()
                if k.startswith("trio_stream.")
            }
            for r in self.records
        ]


@pytest.fixture
def logged() -> Iterator[Records]:
    handler = Records()
    library = logging.getLogger("trio_stream")
    level = library.level
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        library.removeHandler(handler)
        library.setLevel(level)


async def test_a_tool_whose_error_is_its_result_logs_the_call_and_the_reference(
    logged: Records,
) -> None:
    async def broken(call: ToolCallController) -> None:
        raise KeyError("missing")

    async def callback(controller: RunController) -> None:
        controller.spawn_tool_call("broken", broken, tool_call_id="call_b", errors_as_result=True)

    run = create_run(callback, expose_errors=False)
    async with run as chunks:
        result = [chunk async for chunk in chunks][-1]

    (fields,) = logged.fields()
    reference = str(fields["error_reference"])
    assert fields == {
        "run_id": run.run_id,
        "tool_call_id": "call_b",
        "tool_name": "broken",
        "error_reference": reference,
    }
    assert f"(error reference {reference})" in str(getattr(result, "result", ""))


async def test_a_client_leaving_a_served_run_is_logged_with_the_run_path_and_client(
    logged: Records,
) -> None:
    run_ids: list[str] = []

    async def callback(controller: RunController) -> None:
        run_ids.append(controller.run_id)
        controller.append_text("first")
        await anyio.sleep_forever()

    async def route(request: Request) -> DataStreamResponse:
        return DataStreamResponse(create_run(callback))

    with running(Starlette(routes=[Route("/chat", route, methods=["POST"])])) as url:
        async with trio_stream.client.stream(f"{url}/chat") as chunks:
            await anext(chunks)
        with anyio.fail_after(10):
            while not logged.records:  # noqa: ASYNC110 - the server's thread logs it
                await anyio.sleep(0.01)

    (fields,) = logged.fields()
    assert fields["run_id"] == run_ids[0]
    assert fields["path"] == "/chat"
    host, _, port = str(fields["client"]).rpartition(":")
    assert host == "127.0.0.1"
    assert int(port) > 0
    assert "client disconnected from /chat" in logged.records[0].getMessage()


@pytest.mark.parametrize("anyio_backend", ["trio"])  # the cut-off is hypercorn-trio's
async def test_the_shutdown_cut_off_is_logged_with_the_run(
    logged: Records, anyio_backend: str
) -> None:
    async def callback(controller: RunController) -> None:
        controller.append_text("partial")
        await trio.sleep_forever()

    run = create_run(callback)
    shutdown = Shutdown()
    scope = {"type": "http", "path": "/chat", "extensions": {SCOPE_KEY: shutdown}}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(shutdown.cut_off_when_due)
        nursery.start_soon(DataStreamResponse(run), scope, never_disconnect, SentMessages().send)
        await trio.sleep(0.05)
        shutdown.begin(0.2)

    (fields,) = logged.fields()
    assert fields == {"run_id": run.run_id, "path": "/chat"}
    assert logged.records[0].getMessage().startswith("server shutting down")


async def test_a_resumable_stream_s_lines_name_the_run_and_the_stream(logged: Records) -> None:
    async def callback(controller: RunController) -> None:
        controller.append_text("kept")
        raise ValueError("the run broke")

    run = create_run(callback)
    async with ResumableStreams() as streams:
        response = await streams.start(run, encoder=DataStreamEncoder())
        stream_id = response.headers["x-resumable-stream-id"]
        with anyio.fail_after(10):
            while len(logged.records) < 2:  # noqa: ASYNC110 - the producer's task logs them
                await anyio.sleep(0.01)

    messages = [record.getMessage() for record in logged.records]
    assert messages[0] == f"resumable stream {stream_id}: the run failed"
    assert messages[1].startswith(f"resumable stream {stream_id} ended: failed, ")
    assert logged.fields() == [{"run_id": run.run_id, "stream_id": stream_id}] * 2


def test_the_json_formatter_of_the_docs_gives_one_object_per_line_with_the_fields() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "json_logs.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (line,) = done.stderr.splitlines()[:1]
    record = json.loads(line)
    assert record["level"] == "WARNING"
    assert record["trio_stream.run_id"].startswith("run_")
    assert record["trio_stream.tool_call_id"] == "call_1"
    assert record["trio_stream.tool_name"] == "lookup"
    assert len(record["trio_stream.error_reference"]) == 12
    assert "LookupError: the index is down" in record["exception"]
    assert f"error reference {record['trio_stream.error_reference']}" in record["exception"]


LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical", "log"})


def test_every_line_the_library_logs_passes_its_fields_as_extra() -> None:
    # The fields are what a JSON log pipeline reads instead of parsing the
    # message: a call without ``extra`` would drop the run's id from its line.
    without: list[str] = []
    for path in sorted((ROOT / "trio_stream").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOG_METHODS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "logger"
                and not any(keyword.arg == "extra" for keyword in node.keywords)
            ):
                without.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert without == []
