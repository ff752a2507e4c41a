"""Every format, served by hypercorn on Trio, read by the official clients.

assistant-ui's decoders (npm ``assistant-stream``) and the AI SDK's
``readUIMessageStream`` (npm ``ai``) run in Node.js and fetch the scenarios
of ``scenarios.py`` over HTTP themselves. Each body is decoded as it
arrives, and again fed in one-byte pieces, so that a framing mistake (a
split UTF-8 sequence, a line or event boundary) cannot hide. The libraries'
own warnings must stay empty: they drop what they cannot read with only a
warning.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio
import anyio.to_thread
import pytest

from trio_stream import RunController, create_run
from trio_stream.asgi import RunResponse

from ..asgi_calls import SentMessages
from ..clients import DecodeError, decode, summarize
from ..scenarios import RESPONSES, everything

ASSISTANT_STREAM_FORMATS = ["data-stream", "assistant-transport", "ui-message-stream"]

WEATHER = ("tool-call", "weather", {"city": "Lisbon"}, {"city": "Lisbon", "celsius": 21}, False)
RESEARCH = ("tool-call", "research", {"topic": "x"}, "summary", False)
STATION: tuple[Any, ...] = ("tool-call", "station", {}, "no such station", True)
FETCH = ("tool-call", "fetch", {"url": "https://example.org"}, "<html>", False)
LAST_TEXT = 'Done: ünïcødé 🌍 and "quotes"\nnew line'


def expected_parts(decoder: str) -> list[tuple[Any, ...]]:
    # The UI message stream has no parent ids for assistant-ui's decoder to
    # read, and carries files as data URLs.
    parent = None if decoder == "ui-message-stream" else "call_r"
    file_data, nested_file_data = "aGVsbG8=", "aGk="
    if decoder == "ui-message-stream":
        file_data = "data:text/plain;base64," + file_data
        nested_file_data = "data:text/plain;base64," + nested_file_data
    return [
        ("reasoning", "Let me think.", None),
        ("text", "Checking three things.", None),
        ("tool-call", "search", {"q": "trio"}, ["trio docs"], False, None),
        ("tool-call", "search", {"q": "anyio"}, ["anyio docs"], False, None),
        (*WEATHER, None),
        (*RESEARCH, None),
        (*STATION, None),
        ("text", "Reading sources", parent),
        ("file", "text/plain", nested_file_data, parent),
        *([] if decoder == "ui-message-stream" else [("data", "progress", {"pages": 3}, parent)]),
        (*FETCH, parent),
        ("source", "https://trio.readthedocs.io", "Trio", None),
        ("file", "text/plain", file_data, None),
        ("text", LAST_TEXT, None),
    ]


@pytest.mark.parametrize("split", [None, 1])
@pytest.mark.parametrize("decoder", ASSISTANT_STREAM_FORMATS)
def test_assistant_ui_decodes_every_kind_of_chunk(
    scenarios_url: str, decoder: str, split: int | None
) -> None:
    output = decode(decoder, url=f"{scenarios_url}/{decoder}/everything", split=split)
    assert output["warnings"] == []
    message = output["message"]
    assert message["status"] == {"type": "complete", "reason": "stop"}
    assert summarize(message["parts"]) == expected_parts(decoder)
    metadata = message["metadata"]
    [step] = metadata["steps"]
    assert step["state"] == "finished"
    assert step["finishReason"] == "stop"
    assert step["usage"] == {"inputTokens": 10, "outputTokens": 20}
    if decoder == "ui-message-stream":
        assert metadata["unstable_data"] == [
            {
                "name": "update-state",
                "data": [
                    {"type": "set", "path": [], "value": {"progress": "running", "log": ""}},
                    {"type": "append-text", "path": ["log"], "value": "started"},
                ],
            },
            {"name": "progress", "data": {"pages": 3}},
            {"name": "custom", "data": {"kind": "chart", "points": [1, 2, 3]}},
            {
                "name": "update-state",
                "data": [{"type": "set", "path": ["progress"], "value": "done"}],
            },
        ]
    else:
        assert metadata["unstable_state"] == {"progress": "done", "log": "started"}
        assert metadata["unstable_data"] == [{"kind": "chart", "points": [1, 2, 3]}]
        assert metadata["unstable_annotations"] == [{"note": "checked"}]


@pytest.mark.parametrize("decoder", ASSISTANT_STREAM_FORMATS)
def test_assistant_ui_sees_the_error_and_what_came_before(
    scenarios_url: str, decoder: str
) -> None:
    output = decode(decoder, url=f"{scenarios_url}/{decoder}/failing", split=3)
    assert output["warnings"] == []
    message = output["message"]
    assert message["status"]["type"] == "incomplete"
    assert message["status"]["reason"] == "error"
    assert message["status"]["error"]["message"] == "the model is down"
    assert summarize(message["parts"]) == [("text", "Before the error", None)]


@pytest.mark.parametrize("decoder", ASSISTANT_STREAM_FORMATS)
def test_assistant_ui_reads_plain_and_very_long_text(scenarios_url: str, decoder: str) -> None:
    text = decode(decoder, url=f"{scenarios_url}/{decoder}/text")["message"]
    assert summarize(text["parts"]) == [("text", "Hello, world!", None)]
    long = decode(decoder, url=f"{scenarios_url}/{decoder}/long", split=4093)
    assert long["warnings"] == []
    assert summarize(long["message"]["parts"]) == [("text", "\u03b1" * 200_000 + "end", None)]


def text_by_producer(parts: list[tuple[Any, ...]]) -> dict[str | None, list[str]]:
    texts: dict[str | None, list[str]] = {}
    for part in parts:
        if part[0] == "text":
            texts.setdefault(part[2], []).append(part[1])
    return texts


@pytest.mark.parametrize("decoder", ["data-stream", "assistant-transport"])
def test_parallel_sub_streams_keep_their_text_apart(scenarios_url: str, decoder: str) -> None:
    output = decode(decoder, url=f"{scenarios_url}/{decoder}/parallel")
    assert output["warnings"] == []
    texts = text_by_producer(summarize(output["message"]["parts"]))
    joined = {parent: "".join(pieces) for parent, pieces in texts.items()}
    assert joined == {
        None: "Comparing: while they work",
        "call_a": "a0 a1 a2 ",
        "call_b": "b0 b1 b2 ",
    }
    if decoder == "assistant-transport":
        # One part per producer and stretch of text, however they interleave.
        assert texts == {
            None: ["Comparing: ", "while they work"],
            "call_a": ["a0 a1 a2 "],
            "call_b": ["b0 b1 b2 "],
        }


def part_events(chunks: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Where each tool call's part got its arguments' end and its result, in ``chunks``.

    A part's path is ``[n]`` for the n-th ``part-start``; the text-delta that
    says "Waiting" is recorded under ``"text"``.
    """
    calls: dict[int, str] = {}
    found: dict[str, dict[str, int]] = {"text": {}}
    starts = 0
    for index, chunk in enumerate(chunks):
        if chunk["type"] == "part-start":
            if chunk["part"]["type"] == "tool-call":
                calls[starts] = chunk["part"]["toolCallId"]
                found[calls[starts]] = {}
            starts += 1
        elif chunk["type"] == "text-delta" and chunk["textDelta"].startswith("Waiting"):
            found["text"]["delta"] = index
        elif chunk["type"] in ("tool-call-args-text-finish", "result"):
            found[calls[chunk["path"][0]]].setdefault(chunk["type"], index)
        elif chunk["type"] == "step-finish":
            found["text"]["step-finish"] = index
    return found


@pytest.mark.parametrize("decoder", ASSISTANT_STREAM_FORMATS)
def test_assistant_ui_reads_summaries_and_arguments_that_end_before_their_results(
    scenarios_url: str, decoder: str
) -> None:
    output = decode(decoder, url=f"{scenarios_url}/{decoder}/planned", split=1)
    assert output["warnings"] == []
    message = output["message"]
    assert message["status"] == {"type": "requires-action", "reason": "tool-calls"}
    reasoning, *rest = message["parts"]
    if decoder == "ui-message-stream":  # its reasoning parts take provider metadata
        assert reasoning["providerMetadata"] == {"trioStream": {"summary": "Planning the lookup"}}
    else:
        assert reasoning["unstable_summary"] == "Planning the lookup"
    assert reasoning["text"] == "First the station, then the time."
    calls = {part["toolName"]: part for part in rest if part["type"] == "tool-call"}
    assert {name: (part["args"], part["result"]) for name, part in calls.items()} == {
        "confirm": ({"station": "Lisbon"}, "confirmed"),
        "now": ({}, "12:00"),
        "later": ({}, "later done"),
    }
    # The ends the run sent are the client's: the calls show their final
    # arguments while the text that follows them streams, before any result.
    seen = part_events(output["chunks"])
    for call in ("call_c", "call_n"):
        ended = seen[call]["tool-call-args-text-finish"]
        assert ended < seen["text"]["delta"] < seen[call]["result"]
    if decoder == "data-stream":  # ended by the step's end, as assistant-stream does
        assert seen["call_l"]["tool-call-args-text-finish"] < seen["text"]["step-finish"]


def test_the_ai_sdk_reads_summaries_and_arguments_that_end_before_their_results(
    scenarios_url: str,
) -> None:
    output = decode("ai-ui-message-stream", url=f"{scenarios_url}/ui-message-stream/planned")
    assert output["warnings"] == []
    parts = [part for part in output["message"]["parts"] if part["type"] != "step-start"]
    assert parts[0] == {
        "type": "reasoning",
        "id": "reasoning-1",
        "text": "First the station, then the time.",
        "providerMetadata": {"trioStream": {"summary": "Planning the lookup"}},
        "state": "done",
    }
    assert [(p["type"], p["input"], p["output"]) for p in parts[1:4]] == [
        ("tool-confirm", {"station": "Lisbon"}, "confirmed"),
        ("tool-now", {}, "12:00"),
        ("tool-later", {}, "later done"),
    ]
    kinds = [chunk["type"] for chunk in output["chunks"]]
    assert kinds.index("tool-input-available") < kinds.index("text-start")


# -- the AI SDK ------------------------------------------------------------------


def by_type(parts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        grouped.setdefault(part["type"], []).append(part)
    return grouped


@pytest.mark.parametrize("split", [None, 1])
def test_the_ai_sdk_builds_the_ui_message(scenarios_url: str, split: int | None) -> None:
    output = decode(
        "ai-ui-message-stream", url=f"{scenarios_url}/ui-message-stream/everything", split=split
    )
    assert output["warnings"] == []
    assert output["headers"]["x-vercel-ai-ui-message-stream"] == "v1"
    message = output["message"]
    assert message["role"] == "assistant"
    assert message["id"].startswith("msg_")
    assert message["metadata"] == {"annotations": [{"note": "checked"}]}
    parts = message["parts"]
    assert [p["type"] for p in parts] == [
        "step-start",
        "reasoning",
        "text",
        "tool-search",
        "tool-search",
        "tool-weather",
        "tool-research",
        "tool-station",
        "data-update-state",
        "text",
        "file",
        "data-progress",
        "tool-fetch",
        "source-url",
        "file",
        "data-custom",
        "data-update-state",
        "text",
    ]
    grouped = by_type(parts)
    assert [p["text"] for p in grouped["text"]] == [
        "Checking three things.",
        "Reading sources",
        LAST_TEXT,
    ]
    assert all(p["state"] == "done" for p in grouped["text"] + grouped["reasoning"])
    nested_text = grouped["text"][1]
    assert nested_text["providerMetadata"] == {"trioStream": {"parentId": "call_r"}}
    [weather] = grouped["tool-weather"]
    assert weather["state"] == "output-available"
    assert weather["input"] == {"city": "Lisbon"}
    assert weather["output"] == {"city": "Lisbon", "celsius": 21}
    [station] = grouped["tool-station"]
    assert station["state"] == "output-error"
    assert station["errorText"] == "no such station"
    [fetch] = grouped["tool-fetch"]
    assert fetch["callProviderMetadata"] == {"trioStream": {"parentId": "call_r"}}
    assert fetch["output"] == "<html>"
    assert [(p["input"], p["output"]) for p in grouped["tool-search"]] == [
        ({"q": "trio"}, ["trio docs"]),
        ({"q": "anyio"}, ["anyio docs"]),
    ]
    [source] = grouped["source-url"]
    assert (source["url"], source["title"]) == ("https://trio.readthedocs.io", "Trio")
    assert grouped["file"] == [
        {
            "type": "file",
            "mediaType": "text/plain",
            "url": "data:text/plain;base64,aGk=",
            "providerMetadata": {"trioStream": {"parentId": "call_r"}},
        },
        {"type": "file", "mediaType": "text/plain", "url": "data:text/plain;base64,aGVsbG8="},
    ]
    assert grouped["data-custom"][0]["data"] == {"kind": "chart", "points": [1, 2, 3]}
    assert grouped["data-progress"][0]["data"] == {"pages": 3}
    finish = output["chunks"][-1]
    assert finish == {
        "type": "finish",
        "finishReason": "stop",
        "usage": {"inputTokens": 10, "outputTokens": 20},
    }


def test_the_ai_sdk_keeps_parallel_text_blocks_apart(scenarios_url: str) -> None:
    output = decode("ai-ui-message-stream", url=f"{scenarios_url}/ui-message-stream/parallel")
    assert output["warnings"] == []
    texts: dict[str | None, list[str]] = {}
    for part in output["message"]["parts"]:
        if part["type"] == "text":
            parent = part.get("providerMetadata", {}).get("trioStream", {}).get("parentId")
            texts.setdefault(parent, []).append(part["text"])
            assert part["state"] == "done"
    assert texts == {
        None: ["Comparing: ", "while they work"],
        "call_a": ["a0 a1 a2 "],
        "call_b": ["b0 b1 b2 "],
    }


def test_the_ai_sdk_receives_the_error_chunk(scenarios_url: str) -> None:
    output = decode("ai-ui-message-stream", url=f"{scenarios_url}/ui-message-stream/failing")
    assert output["warnings"] == []
    types = [chunk["type"] for chunk in output["chunks"]]
    assert types[-3:] == ["text-end", "error", "finish"]
    assert output["chunks"][-2]["errorText"] == "the model is down"
    assert output["chunks"][-1]["finishReason"] == "error"
    assert [p["text"] for p in output["message"]["parts"] if p["type"] == "text"] == [
        "Before the error"
    ]


def test_the_decoders_reject_a_broken_body() -> None:
    # The harness itself can fail: a body cut in the middle is an error.
    with pytest.raises(DecodeError, match="incomplete line"):
        decode("data-stream", body=b'0:"Hello"\n0:"wor')
    with pytest.raises(DecodeError, match="DONE"):
        decode("assistant-transport", body=b'data: {"type":"error","error":"x"}\n\n')


# -- in process, on any backend --------------------------------------------------


async def body_of(response: RunResponse) -> bytes:
    """The body of ``response``, called in process with no server."""
    sent = SentMessages()
    await sent.call(response)
    return sent.body


@pytest.mark.anyio
@pytest.mark.parametrize("decoder", ASSISTANT_STREAM_FORMATS)
async def test_the_encoders_give_the_same_message_on_any_backend(decoder: str) -> None:
    body = await body_of(RESPONSES[decoder](create_run(everything)))
    output = await anyio.to_thread.run_sync(partial(decode, decoder, body=body, split=5))
    assert output["warnings"] == []
    assert summarize(output["message"]["parts"]) == expected_parts(decoder)


async def pauses(controller: RunController) -> None:
    controller.append_text("before")
    await anyio.sleep(0.1)
    controller.append_text(" after")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("decoder", "format"),
    [
        ("data-stream", "data-stream"),
        ("assistant-transport", "assistant-transport"),
        ("ui-message-stream", "ui-message-stream"),
        ("ai-ui-message-stream", "ui-message-stream"),
    ],
)
async def test_heartbeats_are_ignored_by_every_decoder(decoder: str, format: str) -> None:
    body = await body_of(RESPONSES[format](create_run(pauses), heartbeat=0.01))
    if format == "data-stream":
        assert b'0:"before"\n\n\n' in body  # blank lines between the two deltas
    else:
        assert body.count(b": heartbeat\n\n") >= 2
    output = await anyio.to_thread.run_sync(partial(decode, decoder, body=body, split=2))
    assert output["warnings"] == []
    texts = [part["text"] for part in output["message"]["parts"] if part["type"] == "text"]
    assert texts == ["before after"]
