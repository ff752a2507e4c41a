"""What every StreamEncoder promises, whatever its format."""

from __future__ import annotations

from typing import Any

import pytest

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
from trio_stream.formats import StreamEncoder
from trio_stream.formats.assistant_transport import AssistantTransportEncoder
from trio_stream.formats.data_stream import DataStreamEncoder
from trio_stream.formats.object_stream import ObjectStreamEncoder
from trio_stream.formats.openai_stream import OpenAIStreamEncoder
from trio_stream.formats.ui_message_stream import UIMessageStreamEncoder

ENCODERS: list[Any] = [
    DataStreamEncoder,
    AssistantTransportEncoder,
    UIMessageStreamEncoder,
    OpenAIStreamEncoder,
    ObjectStreamEncoder,
]

ONE_OF_EACH: list[Chunk] = [
    StepStartChunk("step"),
    ReasoningPartStartChunk("plan"),
    ReasoningDeltaChunk("hmm"),
    TextDeltaChunk("a"),
    ToolCallBeginChunk("c1", "f"),
    ToolCallDeltaChunk("c1", '{"x": '),
    ToolCallDeltaChunk("c1", "1}"),
    TextDeltaChunk("nested", parent_id="c1"),
    ToolResultChunk("c1", {"ok": True}, artifact=[1]),
    ToolCallBeginChunk("c2", "g", parent_id="c1"),
    ToolResultChunk("c2", "failed", is_error=True),
    ToolCallBeginChunk("c3", "h"),
    ToolCallDeltaChunk("c3", '{"ok": '),
    ToolCallArgsTextFinishChunk("c3", "true}"),
    SourceChunk(id="s", url="https://example.org", title="Example"),
    FileChunk("aGk=", "text/plain"),
    DataChunk({"k": [1, 2]}),
    AnnotationsChunk(({"note": 1},)),
    UpdateStateChunk(({"type": "set", "path": [], "value": {"a": 1}},)),
    StepFinishChunk("stop", 1, 2),
    TextDeltaChunk("b"),
    ErrorChunk("boom"),
]


def names(encoder_class: Any) -> str:
    return str(encoder_class.__name__)


@pytest.mark.parametrize("encoder_class", ENCODERS, ids=names)
def test_a_batch_encodes_to_the_bytes_of_its_chunks_one_by_one(
    encoder_class: type[StreamEncoder],
) -> None:
    together, apart = encoder_class(), encoder_class()
    # Some encoders put a random id in every event: give both the same.
    for attribute in ("message_id", "_prefix", "id"):
        if hasattr(together, attribute):
            setattr(apart, attribute, getattr(together, attribute))
    batched = together.start() + together.encode(ONE_OF_EACH) + together.finish()
    one_by_one = apart.start()
    for chunk in ONE_OF_EACH:
        one_by_one += apart.encode([chunk])
    one_by_one += apart.finish()
    assert batched == one_by_one


@pytest.mark.parametrize("encoder_class", ENCODERS, ids=names)
def test_every_kind_of_chunk_encodes(encoder_class: type[StreamEncoder]) -> None:
    encoder = encoder_class()
    body = encoder.start() + encoder.encode(ONE_OF_EACH) + encoder.finish()
    assert body.decode().endswith("\n")
    # The object stream carries the state alone, and no error.
    assert (b"boom" in body) is not (encoder_class is ObjectStreamEncoder)


@pytest.mark.parametrize("encoder_class", ENCODERS, ids=names)
def test_what_is_not_a_chunk_is_refused(encoder_class: type[StreamEncoder]) -> None:
    with pytest.raises(TypeError, match="not a chunk"):
        encoder_class().encode([{"type": "text-delta", "text_delta": "a dict is not a chunk"}])  # type: ignore[list-item]


@pytest.mark.parametrize("encoder_class", ENCODERS, ids=names)
def test_each_format_declares_its_media_type_and_keepalive(
    encoder_class: type[StreamEncoder],
) -> None:
    assert encoder_class.media_type.startswith(("text/plain", "text/event-stream"))
    assert encoder_class.keepalive in (b"\n", b": heartbeat\n\n")
