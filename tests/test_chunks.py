"""Chunks: immutable, typed, with assistant-stream's field names."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from trio_stream.chunks import (
    CHUNK_TYPES,
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

# The vocabulary: each chunk type with assistant-stream's field names.
VOCABULARY: dict[type[Any], tuple[str, tuple[str, ...]]] = {
    TextDeltaChunk: ("text-delta", ("text_delta", "parent_id")),
    ReasoningDeltaChunk: ("reasoning-delta", ("reasoning_delta", "parent_id")),
    ReasoningPartStartChunk: ("reasoning-part-start", ("unstable_summary", "parent_id")),
    ToolCallBeginChunk: ("tool-call-begin", ("tool_call_id", "tool_name", "parent_id")),
    ToolCallDeltaChunk: ("tool-call-delta", ("tool_call_id", "args_text_delta")),
    ToolCallArgsTextFinishChunk: (
        "tool-call-args-text-finish",
        ("tool_call_id", "args_text_delta"),
    ),
    ToolResultChunk: ("tool-result", ("tool_call_id", "result", "artifact", "is_error")),
    DataChunk: ("data", ("data", "name", "parent_id")),
    ErrorChunk: ("error", ("error",)),
    UpdateStateChunk: ("update-state", ("operations",)),
    SourceChunk: ("source", ("id", "url", "source_type", "title", "parent_id")),
    FileChunk: ("file", ("data", "mime_type", "parent_id")),
    AnnotationsChunk: ("annotations", ("annotations",)),
    StepStartChunk: ("step-start", ("message_id",)),
    StepFinishChunk: (
        "step-finish",
        ("finish_reason", "input_tokens", "output_tokens", "is_continued"),
    ),
}


def test_every_chunk_type_is_in_the_vocabulary() -> None:
    assert set(CHUNK_TYPES) == set(VOCABULARY)


@pytest.mark.parametrize("chunk_type", CHUNK_TYPES, ids=lambda t: t.__name__)
def test_type_string_and_field_names(chunk_type: type[Any]) -> None:
    type_string, fields = VOCABULARY[chunk_type]
    assert chunk_type.type == type_string
    assert chunk_type.__struct_fields__ == fields


def test_chunks_are_immutable() -> None:
    chunk = TextDeltaChunk("hi")
    with pytest.raises(AttributeError):
        chunk.text_delta = "changed"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        chunk.type = "other"  # type: ignore[misc, assignment]


def test_the_type_is_not_a_constructor_argument() -> None:
    with pytest.raises(TypeError):
        TextDeltaChunk("hi", None, "reasoning-delta")  # type: ignore[call-arg]


def test_chunks_compare_by_type_and_value() -> None:
    assert TextDeltaChunk("a") == TextDeltaChunk("a")
    assert TextDeltaChunk("a") != ReasoningDeltaChunk("a")  # type: ignore[comparison-overlap]
    assert TextDeltaChunk("a") != TextDeltaChunk("a", parent_id="p")


def test_defaults_follow_the_vocabulary() -> None:
    assert ToolResultChunk("c", 1) == ToolResultChunk("c", 1, None, False)
    assert SourceChunk(id="s", url="u").source_type == "url"
    assert StepFinishChunk("stop") == StepFinishChunk("stop", 0, 0, False)


def test_chunks_convert_to_plain_dicts() -> None:
    assert msgspec.structs.asdict(ToolCallBeginChunk("c", "search")) == {
        "tool_call_id": "c",
        "tool_name": "search",
        "parent_id": None,
    }


def text_of(chunk: Chunk) -> str:
    # The checks run mypy --strict on this file: the attribute access below
    # type-checks only because comparing ``type`` narrows the union.
    if chunk.type == "text-delta":
        return chunk.text_delta
    return ""


def test_comparing_the_type_string_narrows_the_union() -> None:
    assert text_of(TextDeltaChunk("a")) == "a"
    assert text_of(ErrorChunk("e")) == ""
