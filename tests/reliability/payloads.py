"""Hostile payloads: what a run may be asked to send, and what a client must read back.

A payload is a list of operations on a run's controller (``Text``,
``ToolCall``, ``Data``…) whose strings are built to break naive framing:
line breaks of every kind, ``data:``, ``event:`` and ``[DONE]`` lines, NUL
and the other control characters, U+2028, astral characters, the empty
string; and whose values are any JSON value: big integers, ``-0.0``, the
extreme floats, nesting hundreds of levels deep. ``play`` performs a
payload in a run; ``expected`` says what a client of each format must read
back, written from the operations alone, without the library's encoders.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeAlias

import anyio.lowlevel
from hypothesis import strategies as st

from trio_stream import RunController

__all__ = [
    "FORMATS",
    "HOSTILE_ATOMS",
    "TOO_DEEP",
    "Annotations",
    "Convertible",
    "Data",
    "Error",
    "File",
    "Message",
    "Op",
    "Payload",
    "Reasoning",
    "Source",
    "State",
    "StateText",
    "Text",
    "Tool",
    "ToolCall",
    "Unencodable",
    "any_json",
    "as_js",
    "client_payloads",
    "complete_at",
    "convertible",
    "expected",
    "first_surrogate",
    "hostile_text",
    "json_values",
    "nested",
    "non_empty_texts",
    "payloads",
    "play",
    "strict_loads",
    "surrogate_texts",
    "texts",
    "tool_call_id",
    "unencodable",
]

FORMATS = ("data-stream", "assistant-transport", "ui-message-stream", "openai")
"""Every wire format, by the name the tests and the decoders use."""

HOSTILE_ATOMS = (
    "",
    "\n",
    "\r",
    "\r\n",
    "\n\n",
    "\r\r",
    "data: ",
    "data:",
    "data: [DONE]\n\n",
    "[DONE]",
    "event: error\n",
    "id: 7\r\n",
    "retry: 0",
    ": heartbeat",
    '0:"x"\n',
    '3:"boom"\n',
    "aui-state:",
    "\x00",
    "\x01",
    "\x1b[2J",
    "\t",
    "\x7f",
    "\x85",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\uffff",
    "\U0001f30d",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "\U0010ffff",
    "\U0001d11e",
    '"',
    "\\",
    "\\u0000",
    "\\ud800",
    "{",
    "}]",
    "</script>",
    "é",
)
"""Pieces of text that break a framing which forgets to escape, or escapes wrongly."""


def hostile_text(max_atoms: int = 6) -> st.SearchStrategy[str]:
    """Strings of hostile atoms and arbitrary Unicode (astral characters included)."""
    atom = st.sampled_from(HOSTILE_ATOMS) | st.text(max_size=5)
    return st.lists(atom, max_size=max_atoms).map("".join)


texts = hostile_text()
non_empty_texts = texts.filter(bool)

# ``data-custom`` and ``data-update-state`` carry unnamed data and state in the
# UI message stream, where a name is only the type's suffix.
data_names = non_empty_texts.filter(lambda name: name not in ("custom", "update-state"))

EDGE_NUMBERS: tuple[int | float, ...] = (
    0,
    -0.0,
    5e-324,
    -1.7976931348623157e308,
    2**53 + 1,
    -(2**63),
    2**64,
    10**30,
    1e-7,
    0.1,
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(EDGE_NUMBERS)
    | texts
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
"""Any JSON value, as Python builds it: ``None``, bools, ints, finite floats, str, list, dict."""


def nested(leaf: Any, depth: int, key: str = "k") -> Any:
    """``leaf`` inside ``depth`` containers, lists and dicts in turn."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {key: value}
    return value


deep_values = st.builds(nested, json_scalars, st.integers(30, 250), texts)
"""Values nested far deeper than any real message, yet well within what JSON readers take."""

any_json = json_values | deep_values


class Tool(NamedTuple):
    """A tool call as a client sees it."""

    id: str
    name: str
    args_text: str
    result: Any = None
    is_error: bool = False
    artifact: Any = None


@dataclass(frozen=True)
class Text:
    text: str
    parent_id: str | None = None


@dataclass(frozen=True)
class Reasoning:
    text: str


@dataclass(frozen=True)
class ToolCall:
    name: str
    id_suffix: str
    pieces: tuple[str, ...]
    result: Any
    is_error: bool
    artifact: Any


@dataclass(frozen=True)
class Data:
    value: Any
    name: str | None


@dataclass(frozen=True)
class Error:
    text: str


@dataclass(frozen=True)
class State:
    key: str
    value: Any


@dataclass(frozen=True)
class StateText:
    key: str
    text: str


@dataclass(frozen=True)
class Source:
    id: str
    url: str
    title: str | None


@dataclass(frozen=True)
class File:
    data: bytes | str
    mime_type: str


@dataclass(frozen=True)
class Annotations:
    values: tuple[Any, ...]


Op: TypeAlias = (
    Text | Reasoning | ToolCall | Data | Error | State | StateText | Source | File | Annotations
)


@dataclass(frozen=True)
class Payload:
    """Operations for one run; ``pause`` yields to the scheduler between them,
    so that they leave in batches of one rather than all together."""

    ops: tuple[Op, ...]
    pause: bool


def split(text: str, cuts: list[int]) -> tuple[str, ...]:
    """``text`` cut at ``cuts`` (taken modulo its length): the pieces of a stream."""
    points = sorted({cut % (len(text) + 1) for cut in cuts} | {0, len(text)})
    return tuple(text[a:b] for a, b in itertools.pairwise(points))


json_arguments = st.builds(
    lambda value, ascii_only: json.dumps(value, ensure_ascii=ascii_only),
    st.dictionaries(texts, any_json, max_size=4) | st.lists(any_json, max_size=3),
    st.booleans(),
)
"""Tool arguments as a model streams them: JSON text, here full of hostile strings."""


def _nothing_after_the_json(pieces: tuple[str, ...]) -> bool:
    completion = complete_at(pieces)
    return completion is None or completion[0] == len(pieces) - 1


argument_pieces = st.builds(
    split, json_arguments | texts, st.lists(st.integers(0), max_size=6)
).filter(_nothing_after_the_json) | st.lists(st.just(""), max_size=3).map(tuple)
"""JSON arguments, text that is not JSON, or nothing at all (no delta, or empty ones).

Not text that goes on once it is complete JSON (``{}`` then ``]``): the
formats mark arguments final when they parse, and the data stream's decoder
drops what follows.
"""

tool_calls = st.builds(
    ToolCall,
    name=non_empty_texts,
    id_suffix=texts,
    pieces=argument_pieces,
    result=any_json,
    is_error=st.just(False),
    artifact=st.none() | any_json,
) | st.builds(
    ToolCall,
    name=non_empty_texts,
    id_suffix=texts,
    pieces=argument_pieces,
    result=texts,
    is_error=st.just(True),
    artifact=st.none(),
)

ops: st.SearchStrategy[Op] = st.one_of(
    st.builds(Text, texts),
    st.builds(Text, texts, non_empty_texts.map(lambda p: "p" + p)),
    st.builds(Reasoning, texts),
    tool_calls,
    st.builds(Data, any_json, st.none() | data_names),
    st.builds(Error, texts),
    st.builds(State, texts.map(lambda k: "v" + k), any_json),
    st.builds(StateText, texts.map(lambda k: "t" + k), texts),
    st.builds(Source, texts, texts, st.none() | texts),
    st.builds(File, st.binary(max_size=30) | texts, texts),
    st.builds(Annotations, st.lists(any_json, max_size=3).map(tuple)),
)

payloads = st.builds(Payload, st.lists(ops, min_size=1, max_size=8).map(tuple), st.booleans())


def tool_call_id(index: int, op: ToolCall) -> str:
    """The id of the tool call made by the ``index``-th operation: unique, and hostile."""
    return f"call_{index}{op.id_suffix}"


async def play(controller: RunController, ops: tuple[Op, ...], *, pause: bool = False) -> None:
    """Perform ``ops`` through ``controller``, the way an application would."""
    for index, op in enumerate(ops):
        match op:
            case Text(text, parent_id):
                producer = (
                    controller if parent_id is None else controller.with_parent_id(parent_id)
                )
                producer.append_text(text)
            case Reasoning(text):
                controller.append_reasoning(text)
            case ToolCall():
                call = await controller.add_tool_call(op.name, tool_call_id(index, op))
                for piece in op.pieces:
                    call.append_args_text(piece)
                call.set_response(op.result, artifact=op.artifact, is_error=op.is_error)
            case Data(value, name):
                controller.add_data(value, name=name)
            case Error(text):
                controller.add_error(text)
            case State(key, value):
                controller.state[key] = value
            case StateText(key, text):
                controller.append_state_text([key], text)
            case Source(id, url, title):
                controller.add_source(id, url, title)
            case File(data, mime_type):
                controller.add_file(data, mime_type)
            case Annotations(values):
                controller.add_annotations(list(values))
        if pause:
            await anyio.lowlevel.checkpoint()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of a float's range")
    return number


def _check_strings(value: Any) -> None:
    if isinstance(value, str):
        value.encode()  # a lone surrogate, escaped in the JSON text, fails here
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)


def strict_loads(text: str) -> Any:
    """Parse ``text`` as JSON and nothing more lenient.

    Python's ``json`` also takes ``NaN``, ``Infinity``, numbers beyond a
    float's range and escaped lone surrogates; RFC 8259 JSON that every
    client can read has none of them, so here they fail with ``ValueError``.
    """
    value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    _check_strings(value)
    return value


def complete_at(pieces: tuple[str, ...] | list[str]) -> tuple[int, Any] | None:
    """The index of the piece that completes the arguments as JSON, and their value.

    Arguments are complete the moment the text so far is a JSON object or
    array: no later piece can extend one and keep it JSON.
    """
    text = ""
    for index, piece in enumerate(pieces):
        text += piece
        try:
            value = strict_loads(text)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict | list):
            return index, value
    return None


@dataclass
class Message:
    """What a client reads from a stream, in a form every format can be reduced to.

    Text and reasoning are concatenated per producer (``None``: the run
    itself, else a parent id), whatever parts they were cut into.
    """

    text: dict[str | None, str] = field(default_factory=dict)
    reasoning: dict[str | None, str] = field(default_factory=dict)
    tools: list[Tool] = field(default_factory=list)
    data: list[Any] = field(default_factory=list)
    named_data: list[tuple[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    state: Any = None
    sources: list[tuple[str, str, str | None]] = field(default_factory=list)
    files: list[tuple[str, str]] = field(default_factory=list)
    annotations: list[Any] = field(default_factory=list)

    def add_text(self, parent_id: str | None, text: str) -> None:
        self.text[parent_id] = self.text.get(parent_id, "") + text

    def add_reasoning(self, parent_id: str | None, text: str) -> None:
        self.reasoning[parent_id] = self.reasoning.get(parent_id, "") + text


def expected(ops: tuple[Op, ...], wire_format: str) -> Message:
    """What a client of ``wire_format`` must read from a run that performed ``ops``.

    The run starts with an empty dict as its state. The OpenAI format
    carries one assistant message as a model produces it: text, reasoning,
    tool calls and errors of the run itself, nothing else.
    """
    openai = wire_format == "openai"
    message = Message(state=None if openai else {})
    for index, op in enumerate(ops):
        match op:
            case Text(text, parent_id):
                if not (openai and parent_id is not None):
                    message.add_text(parent_id, text)
            case Reasoning(text):
                message.add_reasoning(None, text)
            case ToolCall():
                args_text = "".join(op.pieces)
                if wire_format == "assistant-transport" and not args_text:
                    args_text = "{}"  # its accumulator parses the text; "" is not JSON
                if openai:
                    tool = Tool(tool_call_id(index, op), op.name, args_text)
                else:
                    tool = Tool(
                        tool_call_id(index, op),
                        op.name,
                        args_text,
                        op.result,
                        op.is_error,
                        op.artifact,
                    )
                message.tools.append(tool)
            case Error(text):
                message.errors.append(text)
            case _ if openai:
                pass
            case Data(value, None):
                message.data.append(value)
            case Data(value, name):
                assert name is not None
                message.named_data.append((name, value))
            case State(key, value):
                message.state[key] = value
            case StateText(key, text):
                message.state[key] = message.state.get(key, "") + text
            case Source(id, url, title):
                message.sources.append((id, url, title))
            case File(data, mime_type):
                if isinstance(data, bytes):
                    data = base64.b64encode(data).decode()
                message.files.append((mime_type, data))
            case Annotations(values):
                message.annotations.extend(values)
    return message


# -- values with no JSON form, and values whose JSON form is documented ---------


def with_surrogate(text: str, surrogate: str, at: int) -> str:
    """``text`` with a lone surrogate inserted at ``at`` (taken modulo its length)."""
    index = at % (len(text) + 1)
    return text[:index] + surrogate + text[index:]


lone_surrogates = st.characters(categories=["Cs"])
surrogate_texts = st.builds(with_surrogate, texts, lone_surrogates, st.integers(0))
"""Strings a Python ``str`` can hold and UTF-8 cannot: a lone surrogate somewhere inside.

What ``surrogateescape`` decoding or a broken upstream leaves behind.
"""


def first_surrogate(text: str) -> int:
    return next(index for index, char in enumerate(text) if "\ud800" <= char <= "\udfff")


class Unencodable(NamedTuple):
    """A value that has no JSON form, and the words that must name its problem."""

    value: Any
    problem: str


def _circular_list() -> Any:
    items: list[Any] = [1]
    items.append(items)
    return items


def _circular_dict() -> Any:
    mapping: dict[str, Any] = {"a": 1}
    mapping["self"] = {"again": mapping}
    return mapping


class _Opaque:
    """An application object nobody taught to be JSON."""


TOO_DEEP = "nested too deeply, or contains itself"

_unencodable_leaves: st.SearchStrategy[Unencodable] = st.one_of(
    surrogate_texts.map(lambda text: Unencodable(text, "surrogates not allowed")),
    surrogate_texts.map(lambda text: Unencodable({text: 1}, "surrogates not allowed")),
    st.builds(lambda: Unencodable(_Opaque(), "unsupported")),
    st.builds(lambda: Unencodable(object(), "unsupported")),
    st.builds(lambda: Unencodable(1j, "unsupported")),
    st.builds(lambda: Unencodable(len, "unsupported")),
    st.builds(lambda: Unencodable({(1, 2): "tuple key"}, "keys are supported")),
    st.builds(lambda: Unencodable({None: "None key"}, "keys are supported")),
    st.builds(lambda: Unencodable(_circular_list(), TOO_DEEP)),
    st.builds(lambda: Unencodable(_circular_dict(), TOO_DEEP)),
    st.integers(3_000, 20_000).map(lambda depth: Unencodable(nested(0, depth), TOO_DEEP)),
)


def _embed(bad: Unencodable, container: Any, key: str) -> Unencodable:
    if isinstance(container, dict):
        return Unencodable({**container, key: bad.value}, bad.problem)
    return Unencodable([*container, bad.value], bad.problem)


unencodable = _unencodable_leaves | st.builds(
    _embed,
    _unencodable_leaves,
    st.dictionaries(texts, json_values, max_size=3) | st.lists(json_values, max_size=3),
    texts,
)
"""Values with no JSON form, alone or hidden among JSON values."""


class Convertible(NamedTuple):
    """A value that is not JSON but has a documented JSON form, and that form."""

    value: Any
    json_form: Any


_convertible_leaves: st.SearchStrategy[Convertible] = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf]).map(lambda x: Convertible(x, None)),
    st.binary(max_size=12).map(lambda data: Convertible(data, base64.b64encode(data).decode())),
    st.frozensets(st.integers(-5, 5), max_size=4).map(lambda s: Convertible(s, list(s))),
    json_values.map(lambda value: Convertible(value, value)),
)


def _tuple_of(items: list[Convertible]) -> Convertible:
    return Convertible(tuple(item.value for item in items), [item.json_form for item in items])


def _int_keyed(items: dict[int, Convertible]) -> Convertible:
    return Convertible(
        {key: item.value for key, item in items.items()},
        {str(key): item.json_form for key, item in items.items()},
    )


convertible = st.recursive(
    _convertible_leaves,
    lambda inner: (
        st.lists(inner, max_size=3).map(_tuple_of)
        | st.dictionaries(st.integers(), inner, max_size=3).map(_int_keyed)
    ),
    max_leaves=8,
)
"""Non-finite floats (``null``), bytes (base64), sets and tuples (lists), int keys (strings)."""


# -- what the official clients see -----------------------------------------------


def as_js(value: Any) -> Any:
    """``value`` as JavaScript's ``JSON.parse`` leaves it, then ``JSON.stringify`` gives it back.

    Numbers are doubles: integers beyond 2**53 round, those beyond a
    double's range become ``null``, and ``1.0`` and ``-0.0`` print as ``1``
    and ``0``. Here every number takes the one form it has after that trip.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            return None
        if not math.isfinite(number):
            return None
        return int(number) if number.is_integer() and abs(number) <= 2**53 else number
    if isinstance(value, list):
        return [as_js(item) for item in value]
    if isinstance(value, dict):
        return {key: as_js(item) for key, item in value.items()}
    raise TypeError(f"not a JSON value: {value!r}")


def _for_the_official_clients(payload: Payload) -> Payload:
    """The payload without what the clients read differently by design.

    Errors (the sample sends one at the end: the clients stop at an error),
    and arguments that are not JSON (the UI message stream reports them as
    a failed call, whose output the clients then do not show).
    """
    kept = tuple(
        op
        for op in payload.ops
        if not isinstance(op, Error)
        and not (
            isinstance(op, ToolCall) and "".join(op.pieces) and complete_at(op.pieces) is None
        )
    )
    return Payload(kept, payload.pause)


client_payloads = payloads.map(_for_the_official_clients)
