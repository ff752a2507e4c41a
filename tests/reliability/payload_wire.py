"""Reading the four wire formats back, with parsers written from their specifications.

Nothing here uses the library's encoders or its JSON. A body is first cut
into frames as a client would cut it (server-sent events by the WHATWG
rules, the data stream by lines), each frame must be one whole, strict JSON
value, and then a reader per format replays the frames the way a front-end
does, checking as it goes that every frame refers to what came before it (a
delta to an open part, a result to a started call, the finish last), and
reduces the message to a ``Message``. A frame broken by a payload's line
break, a part the client never saw start, a value that is not JSON: each
fails here with ``BrokenStream``, saying which frame and why.
"""

from __future__ import annotations

import re
from typing import Any

from .payloads import Message, Tool, complete_at, strict_loads

__all__ = ["BrokenStream", "apply_state", "data_stream_lines", "read", "sse_events"]


class BrokenStream(AssertionError):
    """A body a client could not read as its format."""


def _json(text: str, where: str) -> Any:
    try:
        return strict_loads(text)
    except (ValueError, RecursionError) as exc:
        raise BrokenStream(f"{where} is not strict JSON ({exc}): {text[:200]!r}") from None


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BrokenStream(f"the body is not UTF-8: {exc}") from None


_SSE_LINE = re.compile(r"\r\n|\r|\n")


def sse_events(body: bytes) -> list[Any]:
    """The data of each event of an SSE body: JSON values, and ``"[DONE]"`` as is.

    The WHATWG rules: lines end with CR LF, CR or LF; a blank line ends an
    event; a line starting with a colon is a comment. Every event of these
    formats is exactly one ``data:`` line, so an event with another field,
    with two data lines, or with data that is not one JSON value is a frame
    a payload broke. The body must end with a blank line: anything after it
    is an event a client never dispatches.
    """
    text = _utf8(body)
    if "\r" in text:
        raise BrokenStream("a raw CR in an SSE body ends a line for the client")
    if not text.endswith("\n\n"):
        raise BrokenStream(f"the body does not end with a blank line: {text[-80:]!r}")
    events: list[Any] = []
    data: list[str] = []
    for number, line in enumerate(_SSE_LINE.split(text[:-1]), 1):
        if line.startswith(":"):
            continue
        if not line:
            if len(data) > 1:
                raise BrokenStream(f"the event ending at line {number} has {len(data)} data lines")
            if data:
                events.append(data[0] if data[0] == "[DONE]" else _json(data[0], f"line {number}"))
            data = []
            continue
        name, _, value = line.partition(":")
        if name != "data":
            raise BrokenStream(f"line {number} is not a data line: {line[:200]!r}")
        data.append(value.removeprefix(" "))
    return events


_DATA_STREAM_LINE = re.compile(r"([0-9a-z]|aui-[a-z-]+):(.*)", re.DOTALL)


def data_stream_lines(body: bytes) -> list[tuple[str, Any]]:
    """The ``(code, value)`` of each line of a data stream body.

    A line is a type code, a colon, one JSON value and LF; a blank line is a
    keep-alive. Only LF ends a line: JSON never holds a raw one, and CR,
    U+2028 and the like are characters of the value.
    """
    text = _utf8(body)
    if text and not text.endswith("\n"):
        raise BrokenStream(f"the body ends inside a line: {text[-80:]!r}")
    lines: list[tuple[str, Any]] = []
    for number, line in enumerate(text.split("\n")[:-1], 1):
        if not line:
            continue
        match = _DATA_STREAM_LINE.fullmatch(line)
        if match is None:
            raise BrokenStream(f"line {number} has no type code: {line[:200]!r}")
        lines.append((match[1], _json(match[2], f"line {number} ({match[1]})")))
    return lines


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise BrokenStream(message)


def apply_state(state: Any, operations: list[dict[str, Any]]) -> Any:
    """``state`` after a client applied ``operations`` (paths of one key at most, here)."""
    for op in operations:
        path, value = op["path"], op["value"]
        _check(op["type"] in ("set", "append-text"), f"unknown state operation {op!r}")
        _check(len(path) <= 1, f"a state path deeper than the payloads write: {path!r}")
        if not path:
            _check(op["type"] == "set", "append-text at the root")
            state = value
            continue
        (key,) = path
        _check(isinstance(state, dict), f"state operation on a non-dict state: {op!r}")
        if op["type"] == "set":
            state[key] = value
        else:
            state[key] = state.get(key, "") + value
    return state


class _Calls:
    """The tool calls of a message, in the order they started."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.names: dict[str, str] = {}
        self.pieces: dict[str, list[str]] = {}
        self.results: dict[str, tuple[Any, bool, Any]] = {}

    def start(self, tool_call_id: str, name: str) -> None:
        _check(tool_call_id not in self.names, f"tool call {tool_call_id!r} started twice")
        self.order.append(tool_call_id)
        self.names[tool_call_id] = name
        self.pieces[tool_call_id] = []

    def delta(self, tool_call_id: str, piece: str) -> None:
        _check(tool_call_id in self.names, f"arguments for an unknown call {tool_call_id!r}")
        _check(tool_call_id not in self.results, f"arguments after the result {tool_call_id!r}")
        self.pieces[tool_call_id].append(piece)

    def result(self, tool_call_id: str, result: Any, is_error: bool, artifact: Any) -> None:
        _check(tool_call_id in self.names, f"a result for an unknown call {tool_call_id!r}")
        _check(tool_call_id not in self.results, f"two results for {tool_call_id!r}")
        self.results[tool_call_id] = (result, is_error, artifact)

    def tools(self, *, with_results: bool = True) -> list[Tool]:
        tools = []
        for key in self.order:
            args_text = "".join(self.pieces[key])
            if not with_results:
                tools.append(Tool(key, self.names[key], args_text))
                continue
            # A call without a result (its run failed first) reads as one with none.
            result = self.results.get(key, (None, False, None))
            tools.append(Tool(key, self.names[key], args_text, *result))
        return tools


def read_data_stream(body: bytes) -> Message:
    """Replay a data stream body (assistant-ui's ``DataStreamDecoder``)."""
    message = Message(state={})
    calls = _Calls()
    finals: dict[str, int] = {}
    failed = finished = False
    for code, value in data_stream_lines(body):
        _check(not finished, f"a {code}: line after the d: line that ends the message")
        match code:
            case "0":
                message.add_text(None, value)
            case "g":
                message.add_reasoning(None, value)
            case "aui-text-delta":
                message.add_text(value["parentId"], value["textDelta"])
            case "aui-reasoning-delta":
                message.add_reasoning(value["parentId"], value["reasoningDelta"])
            case "b":
                calls.start(value["toolCallId"], value["toolName"])
            case "c":
                key = value["toolCallId"]
                calls.delta(key, value["argsTextDelta"])
                if value.get("isFinal"):
                    _check(key not in finals, f"two isFinal deltas for {key!r}")
                    finals[key] = len(calls.pieces[key]) - 1
            case "a":
                calls.result(
                    value["toolCallId"],
                    value["result"],
                    value.get("isError", False),
                    value.get("artifact"),
                )
            case "2":
                _check(isinstance(value, list), "2: carries a list")
                message.data.extend(value)
            case "aui-data":
                message.named_data.append((value["name"], value["data"]))
            case "3":
                message.errors.append(value)
                failed = True
            case "aui-state":
                message.state = apply_state(message.state, value)
            case "h":
                message.sources.append((value["id"], value["url"], value.get("title")))
            case "k":
                message.files.append((value["mimeType"], value["data"]))
            case "8":
                message.annotations.extend(value)
            case "f" | "e":
                pass
            case "d":
                _check(not failed, "a d: line after an error, which already ended the message")
                finished = True
            case _:
                raise BrokenStream(f"unknown type code {code!r}")
    _check(finished or failed, "the body has no d: line")
    for key in calls.order:
        completion = complete_at(calls.pieces[key])
        final = finals.get(key)
        _check(
            final == (None if completion is None else completion[0]),
            f"isFinal of {key!r} on piece {final}, the arguments are complete at {completion}",
        )
    message.tools = calls.tools()
    return message


def read_assistant_transport(body: bytes) -> Message:
    """Replay an assistant transport body (``AssistantTransportDecoder`` and its accumulator)."""
    message = Message(state={})
    calls = _Calls()
    parts: list[dict[str, Any]] = []
    open_parts: set[int] = set()
    args_finished: set[int] = set()
    events = sse_events(body)
    _check(events[-1:] == ["[DONE]"], "the body does not end with [DONE]")
    failed = finished = False

    def part_at(event: dict[str, Any]) -> int:
        path = event["path"]
        _check(
            len(path) == 1 and path[0] in open_parts,
            f"{event['type']} for a part that is not open: {path!r}",
        )
        index: int = path[0]
        return index

    for event in events[:-1]:
        _check(not finished, f"{event!r} after message-finish")
        match event["type"]:
            case "part-start":
                _check(event["path"] == [], f"a part started at {event['path']!r}")
                part = event["part"]
                open_parts.add(len(parts))
                parts.append(part)
                match part["type"]:
                    case "tool-call":
                        calls.start(part["toolCallId"], part["toolName"])
                    case "source":
                        message.sources.append((part["id"], part["url"], part.get("title")))
                    case "file":
                        message.files.append((part["mimeType"], part["data"]))
                    case "data":
                        message.named_data.append((part["name"], part["data"]))
                    case "text" | "reasoning":
                        pass
                    case other:
                        raise BrokenStream(f"a part of unknown type {other!r}")
            case "text-delta":
                index = part_at(event)
                part = parts[index]
                delta = event["textDelta"]
                if part["type"] == "text":
                    message.add_text(part.get("parentId"), delta)
                elif part["type"] == "reasoning":
                    message.add_reasoning(part.get("parentId"), delta)
                else:
                    _check(part["type"] == "tool-call", f"text into a {part['type']} part")
                    calls.delta(part["toolCallId"], delta)
            case "tool-call-args-text-finish":
                index = part_at(event)
                _check(parts[index]["type"] == "tool-call", "args finish for a non-call part")
                _check(index not in args_finished, "arguments finished twice")
                args_finished.add(index)
            case "result":
                part = parts[part_at(event)]
                _check(part["type"] == "tool-call", "a result for a part that is not a call")
                calls.result(
                    part["toolCallId"], event["result"], event["isError"], event.get("artifact")
                )
            case "part-finish":
                index = part_at(event)
                if parts[index]["type"] == "tool-call":
                    _check(index in args_finished, "a call finished before its arguments")
                open_parts.remove(index)
            case "data":
                message.data.extend(event["data"])
            case "error":
                message.errors.append(event["error"])
                failed = True
            case "update-state":
                message.state = apply_state(message.state, event["operations"])
            case "annotations":
                message.annotations.extend(event["annotations"])
            case "step-start" | "step-finish":
                pass
            case "message-finish":
                _check(not failed, "message-finish after an error")
                finished = True
            case other:
                raise BrokenStream(f"an event of unknown type {other!r}")
    _check(not open_parts, f"parts never finished: {sorted(open_parts)}")
    _check(finished or failed, "no message-finish")
    message.tools = calls.tools()
    return message


_FILE_URL = re.compile(r"data:(.*?);base64,(.*)", re.DOTALL)


def read_ui_message_stream(body: bytes) -> Message:
    """Replay a UI message stream body (the AI SDK's ``readUIMessageStream``)."""
    message = Message(state={})
    calls = _Calls()
    blocks: dict[str, tuple[str, str | None]] = {}
    seen_blocks: set[str] = set()
    inputs: dict[str, tuple[str, Any]] = {}
    annotations: list[Any] = []
    events = sse_events(body)
    _check(len(events) >= 3, f"too few events for a message: {events!r}")
    _check(events[-1:] == ["[DONE]"], "the body does not end with [DONE]")
    _check(events[0]["type"] == "start", "the body does not open with start")
    _check(events[-2]["type"] == "finish", "finish is not the last event")
    for event in events[1:-2]:
        kind = event["type"]
        parent = event.get("providerMetadata", {}).get("trioStream", {}).get("parentId")
        match kind:
            case "text-start" | "reasoning-start":
                block = event["id"]
                _check(block not in seen_blocks, f"block {block!r} started twice")
                seen_blocks.add(block)
                blocks[block] = (kind.removesuffix("-start"), parent)
            case "text-delta" | "reasoning-delta":
                block_kind, parent = blocks.get(event["id"], (None, None))
                _check(block_kind == kind.removesuffix("-delta"), f"{kind} to no open block")
                if block_kind == "text":
                    message.add_text(parent, event["delta"])
                else:
                    message.add_reasoning(parent, event["delta"])
            case "text-end" | "reasoning-end":
                block_kind, _ = blocks.pop(event["id"], (None, None))
                _check(block_kind == kind.removesuffix("-end"), f"{kind} of no open block")
            case "tool-input-start":
                calls.start(event["toolCallId"], event["toolName"])
            case "tool-input-delta":
                calls.delta(event["toolCallId"], event["inputTextDelta"])
            case "tool-input-available" | "tool-input-error":
                key = event["toolCallId"]
                _check(key in calls.names and key not in inputs, f"{kind} out of place")
                _check(calls.names[key] == event["toolName"], "the tool name changed")
                inputs[key] = (kind, event["input"])
            case "tool-output-available":
                key = event["toolCallId"]
                _check(key in inputs, "an output before the input")
                artifact = event.get("providerMetadata", {}).get("trioStream", {})
                calls.result(key, event["output"], False, artifact.get("artifact"))
            case "tool-output-error":
                _check(event["toolCallId"] in inputs, "an output before the input")
                calls.result(event["toolCallId"], event["errorText"], True, None)
            case "source-url":
                message.sources.append((event["sourceId"], event["url"], event.get("title")))
            case "file":
                match = _FILE_URL.fullmatch(event["url"])
                _check(match is not None and match[1] == event["mediaType"], "a bad file URL")
                assert match is not None
                message.files.append((event["mediaType"], match[2]))
            case "data-custom":
                message.data.append(event["data"])
            case "data-update-state":
                message.state = apply_state(message.state, event["data"])
            case "message-metadata":
                metadata = event["messageMetadata"]["annotations"]
                _check(metadata[: len(annotations)] == annotations, "annotations were lost")
                annotations = metadata
            case "error":
                message.errors.append(event["errorText"])
            case "start-step" | "finish-step":
                pass
            case _ if kind.startswith("data-"):
                message.named_data.append((kind.removeprefix("data-"), event["data"]))
            case _:
                raise BrokenStream(f"an event of unknown type {kind!r}")
    _check(not blocks, f"blocks never ended: {sorted(blocks)}")
    message.annotations = annotations
    for key in calls.order:
        _check(key in inputs, f"tool call {key!r} never got its input")
        kind, value = inputs[key]
        pieces = calls.pieces[key]
        completion = complete_at(pieces)
        if completion is not None:
            _check((kind, value) == ("tool-input-available", completion[1]), f"input of {key!r}")
        elif not "".join(pieces):
            _check((kind, value) == ("tool-input-available", {}), f"no arguments: {key!r}")
        else:
            _check((kind, value) == ("tool-input-error", "".join(pieces)), f"{key!r}: {kind}")
    message.tools = calls.tools()
    return message


def read_openai(body: bytes) -> Message:
    """Replay an OpenAI ``chat.completion.chunk`` stream as the ``openai`` SDKs do."""
    message = Message()
    calls = _Calls()
    by_index: list[str] = []
    events = sse_events(body)
    _check(events[-1:] == ["[DONE]"], "the body does not end with [DONE]")
    header: tuple[Any, ...] | None = None
    finish_reason = None
    failed = False
    for event in events[:-1]:
        if "error" in event:
            message.errors.append(event["error"]["message"])
            failed = True
            continue
        _check(finish_reason is None, "a chunk after the one with the finish reason")
        this = (event["id"], event["object"], event["created"], event["model"])
        _check(header in (None, this), "the chunks disagree on id, object, created or model")
        _check(event["object"] == "chat.completion.chunk", "not a chat.completion.chunk")
        [choice] = event["choices"]
        delta = choice["delta"]
        _check(("role" in delta) == (header is None), "the role is not in the first delta only")
        header = this
        finish_reason = choice["finish_reason"]
        if "content" in delta:
            message.add_text(None, delta["content"])
        if "reasoning_content" in delta:
            message.add_reasoning(None, delta["reasoning_content"])
        for call in delta.get("tool_calls", []):
            index = call["index"]
            if index == len(by_index):
                _check(call["type"] == "function", "a call that is not a function")
                by_index.append(call["id"])
                calls.start(call["id"], call["function"]["name"])
            _check(index < len(by_index), f"tool call index {index} skips one")
            calls.delta(by_index[index], call["function"]["arguments"])
    if failed:
        _check(finish_reason is None, "a finish reason after an error")
    else:
        expected_reason = "tool_calls" if by_index else "stop"
        _check(finish_reason == expected_reason, f"finish reason {finish_reason!r}")
    message.tools = calls.tools(with_results=False)
    return message


READERS = {
    "data-stream": read_data_stream,
    "assistant-transport": read_assistant_transport,
    "ui-message-stream": read_ui_message_stream,
    "openai": read_openai,
}


def read(wire_format: str, body: bytes) -> Message:
    """The message a client of ``wire_format`` reads from ``body``; ``BrokenStream`` if none."""
    return READERS[wire_format](body)
