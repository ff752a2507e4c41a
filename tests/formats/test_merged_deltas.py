"""merged_deltas and feed_merged: fewer, larger deltas that every reader takes for the same.

A reader of any format joins the deltas of a part (the text or reasoning of
one parent, the argument text of one call), so merging consecutive ones
changes no message, with one subtlety the properties below pin down: a
call's arguments end where their JSON completes, and text after that is
text after the end. ``feed_merged`` gives, piece by piece, what ``feed``
gives merged, whichever shortcut a decoder takes to get there.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_stream.chunks import (
    Chunk,
    DataChunk,
    ReasoningDeltaChunk,
    TextDeltaChunk,
    ToolCallArgsTextFinishChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
)
from trio_stream.formats import FORMATS, merged_deltas

from .runs import joined, pieces, runs


def encoded(name: str, chunks: list[Chunk]) -> bytes:
    encoder = FORMATS[name].encoder()
    return encoder.start() + encoder.encode(chunks) + encoder.finish()


def is_delta(chunk: Chunk) -> bool:
    return isinstance(chunk, TextDeltaChunk | ReasoningDeltaChunk | ToolCallDeltaChunk)


# -- merged_deltas ---------------------------------------------------------------------


def test_consecutive_deltas_of_one_part_become_one() -> None:
    chunks: list[Chunk] = [
        TextDeltaChunk("Hel"),
        TextDeltaChunk("lo"),
        TextDeltaChunk(" there", "p1"),  # another parent: another part
        TextDeltaChunk("!", "p1"),
        ReasoningDeltaChunk("think"),
        ReasoningDeltaChunk("ing"),
        DataChunk(1),
        TextDeltaChunk("after"),  # not consecutive with the first two
    ]
    assert merged_deltas(chunks) == [
        TextDeltaChunk("Hello"),
        TextDeltaChunk(" there!", "p1"),
        ReasoningDeltaChunk("thinking"),
        DataChunk(1),
        TextDeltaChunk("after"),
    ]


def test_chunks_that_are_not_merged_are_the_same_objects() -> None:
    chunks: list[Chunk] = [TextDeltaChunk("alone"), DataChunk({"a": 1}), TextDeltaChunk("x", "p")]
    assert all(a is b for a, b in zip(merged_deltas(chunks), chunks, strict=True))


def test_argument_text_is_merged_up_to_a_delta_that_may_complete_it() -> None:
    # '{"q": 1}' completes the arguments where it closes: what follows is
    # text after their end, and stays a delta of its own.
    chunks: list[Chunk] = [
        ToolCallBeginChunk("c1", "f"),
        ToolCallDeltaChunk("c1", '{"q"'),
        ToolCallDeltaChunk("c1", ": 1"),
        ToolCallDeltaChunk("c1", "}"),
        ToolCallDeltaChunk("c1", " "),
        ToolCallDeltaChunk("c1", "x"),
        ToolCallArgsTextFinishChunk("c1"),
    ]
    assert merged_deltas(chunks) == [
        ToolCallBeginChunk("c1", "f"),
        ToolCallDeltaChunk("c1", '{"q": 1}'),
        ToolCallDeltaChunk("c1", " x"),
        ToolCallArgsTextFinishChunk("c1"),
    ]


@given(runs(max_chunks=40))
def test_merging_keeps_every_part_and_every_other_chunk_in_order(chunks: list[Chunk]) -> None:
    merged = merged_deltas(chunks)
    assert joined(merged) == joined(chunks)
    assert len(merged) <= len(chunks)
    # Text and reasoning are merged as far as they go.
    for first, second in itertools.pairwise(merged):
        if isinstance(first, TextDeltaChunk | ReasoningDeltaChunk):
            assert not (type(second) is type(first) and second.parent_id == first.parent_id)


@pytest.mark.parametrize("name", sorted(FORMATS))
@given(chunks=runs(max_chunks=40))
def test_every_format_reads_a_merged_run_as_the_run(name: str, chunks: list[Chunk]) -> None:
    """Encoded in any format and read back, merged deltas say what the deltas said:
    the same text, the same arguments ending at the same place, the same results."""

    def read(run: list[Chunk]) -> list[Any]:
        return joined(FORMATS[name].decoder().decode(encoded(name, run)))

    assert read(merged_deltas(chunks)) == read(chunks)


# -- feed_merged -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FORMATS))
@given(data=st.data())
def test_feed_merged_gives_each_piece_what_feed_gives_it_merged(
    name: str, data: st.DataObject
) -> None:
    body = encoded(name, data.draw(runs(max_chunks=40)))
    plain, merging = FORMATS[name].decoder(), FORMATS[name].decoder()
    for piece in data.draw(pieces(body)):
        assert merging.feed_merged(piece) == merged_deltas(plain.feed(piece))
    assert merging.close() == plain.close()


def test_deltas_are_merged_within_a_piece_never_across_pieces() -> None:
    body = encoded("ui-message-stream", [TextDeltaChunk(t) for t in "abc"])
    decoder = FORMATS["ui-message-stream"].decoder()
    cut = body.index(b'"c"')
    first, second = decoder.feed_merged(body[:cut]), decoder.feed_merged(body[cut:])
    assert [c for c in first + second if is_delta(c)] == [
        TextDeltaChunk("ab"),
        TextDeltaChunk("c"),
    ]
