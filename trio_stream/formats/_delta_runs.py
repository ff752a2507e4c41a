"""Runs of data stream delta lines, read at once into one merged delta each.

A data stream carries text as a line per delta: ``0:"tok "`` at the top
level, ``aui-text-delta:{"textDelta":"tok ","parentId":"call_1"}`` under a
parent; reasoning likewise (``g:``, ``aui-reasoning-delta:``). A body from a
model, or from a producer that sends every delta as it comes, is thousands
of such lines, and reading them one by one costs about a microsecond each in
Python. A run of consecutive lines of one kind is read here with one JSON
decode of the run made into an array, at C speed, into one delta per parent:
what ``StreamDecoder.feed_merged`` gives. A run of top-level lines in ASCII
without escapes, the commonest, is cheaper still: its strings' bytes are
joined and decoded as one string.

The array is made by replacing the line breaks between the run's lines with
commas, and it must decode into as many values as the run has lines, each
of the one shape that kind of line has. A line that is anything else (an
extra field, a value of another type, two values on one line) fails that,
and the caller reads the run line by line instead: it gets the same chunks,
or the same ``DecodeError`` at the same offset, as ``feed`` would. The
replaced line breaks keep the check sound: a JSON string cannot hold a raw
line break, so no comma put in can fall inside a string and join two
malformed lines into one well-formed value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import groupby
from operator import attrgetter

import msgspec

from ..chunks import Chunk, ReasoningDeltaChunk, TextDeltaChunk

__all__ = ["Run", "next_run"]

_CODES = rb"(0:|g:|aui-text-delta:\{|aui-reasoning-delta:\{)"
_RUN_HERE = re.compile(_CODES + rb"[^\n]*\n(?=\1)")
"""A run at a line's start: a delta line, and the next line starts as it does."""
_RUN_AFTER_BREAK = re.compile(rb"\n" + _CODES + rb"[^\n]*\n(?=\1)")
"""A run after a line break. Anchored on the break, not on ``^``, so that the search
goes from break to break at C speed, however long the lines between."""

_strings = msgspec.json.Decoder(list[str]).decode
_string = msgspec.json.Decoder(str).decode


class _NestedText(msgspec.Struct, forbid_unknown_fields=True):
    text: str = msgspec.field(name="textDelta")
    parent_id: str = msgspec.field(name="parentId")


class _NestedReasoning(msgspec.Struct, forbid_unknown_fields=True):
    text: str = msgspec.field(name="reasoningDelta")
    parent_id: str = msgspec.field(name="parentId")


_nested_texts = msgspec.json.Decoder(list[_NestedText]).decode
_nested_reasonings = msgspec.json.Decoder(list[_NestedReasoning]).decode

_parent = attrgetter("parent_id")
_text = attrgetter("text")


def _unescaped(run: bytes, code: bytes) -> str | None:
    """The joined text of a run of ``code`` + JSON string lines in ASCII without escapes.

    The commonest run, read without a value per line: with every line break
    but the last between a closing quote and the next line's ``code`` and
    opening quote taken out, no quote, backslash or line break may remain,
    so that each line was one string whose text is its bytes; the text
    joined is then decoded as one string, which refuses control characters.
    In ASCII, no character can span two lines. ``None`` for any other run.
    """
    head = code + b'"'
    if not (
        len(run) >= len(head) + 2  # its opening and closing quotes are two quotes
        and run.isascii()
        and run.startswith(head)
        and run.endswith(b'"\n')
    ):
        return None
    inner = run[len(head) : -2].replace(b'"\n' + head, b"")
    if b'"' in inner or b"\\" in inner or b"\n" in inner:
        return None
    try:
        return _string(b'"' + inner + b'"')
    except ValueError:
        return None


def _top_level(run: bytes, code: bytes) -> str | None:
    """The joined text of a run of ``code`` + JSON string lines, one string a line; else
    ``None``."""
    text = _unescaped(run, code)
    if text is not None:
        return text
    array = b"[" + run[len(code) :].replace(b"\n" + code, b",\n") + b"]"
    try:
        values = _strings(array)
    except ValueError:  # msgspec's DecodeError, or UTF-8 that is not
        return None
    return "".join(values) if len(values) == run.count(b"\n") else None


def _text_run(run: bytes) -> list[Chunk] | None:
    text = _top_level(run, b"0:")
    return None if text is None else [TextDeltaChunk(text)]


def _reasoning_run(run: bytes) -> list[Chunk] | None:
    text = _top_level(run, b"g:")
    return None if text is None else [ReasoningDeltaChunk(text)]


def _nested(
    run: bytes, code: bytes, decode: Callable[[bytes], list[_NestedText] | list[_NestedReasoning]]
) -> list[tuple[str, str]] | None:
    """A run of ``code`` + object lines as (parent id, text) per parent in turn; else ``None``.

    Each line must be one object, closed on its line: every break between
    two lines is ``}`` then the next ``code{``, so that each comma put in
    separates two values of the array, never two fields of one.
    """
    between = b"}\n" + code + b"{"
    lines = run.count(b"\n")
    if not run.endswith(b"}\n") or run.count(between) != lines - 1:
        return None
    try:
        values = decode(b"[" + run[len(code) :].replace(between, b"},\n{") + b"]")
    except ValueError:
        return None
    if len(values) != lines:
        return None
    return [
        (parent_id, "".join(map(_text, group))) for parent_id, group in groupby(values, _parent)
    ]


def _nested_text_run(run: bytes) -> list[Chunk] | None:
    parts = _nested(run, b"aui-text-delta:", _nested_texts)
    return None if parts is None else [TextDeltaChunk(text, parent) for parent, text in parts]


def _nested_reasoning_run(run: bytes) -> list[Chunk] | None:
    parts = _nested(run, b"aui-reasoning-delta:", _nested_reasonings)
    if parts is None:
        return None
    return [ReasoningDeltaChunk(text, parent) for parent, text in parts]


_Reader = Callable[[bytes], list[Chunk] | None]

_KINDS: dict[bytes, tuple[re.Pattern[bytes], _Reader]] = {
    # What starts the run's lines: the first line break not followed by it
    # (the run's end), and the run's reader.
    b"0:": (re.compile(rb"\n(?!0:)"), _text_run),
    b"g:": (re.compile(rb"\n(?!g:)"), _reasoning_run),
    b"aui-text-delta:{": (re.compile(rb"\n(?!aui-text-delta:)"), _nested_text_run),
    b"aui-reasoning-delta:{": (re.compile(rb"\n(?!aui-reasoning-delta:)"), _nested_reasoning_run),
}


Run = tuple[int, int, list[Chunk] | None]
"""Where a run of delta lines starts and ends in a block, and its chunks: ``None`` if a
line of it is not well-formed, and the run has to be read line by line."""


def next_run(block: bytes, pos: int) -> Run | None:
    """The first run of two or more delta lines of one kind in ``block`` (whole lines)
    from the line starting at ``pos``; ``None`` if there is none.

    A delta line alone is no run: read with the lines around it, it costs
    what it costs, where a run's reading would cost a search or two more.
    """
    found = _RUN_HERE.match(block, pos) or _RUN_AFTER_BREAK.search(block, pos)
    if found is None:
        return None
    start, code = found.start(1), found.group(1)
    end_of_run, read = _KINDS[code]
    end = end_of_run.search(block, start)
    assert end is not None  # the block ends with a line break
    stop = end.end()
    return start, stop, read(block[start:stop])
