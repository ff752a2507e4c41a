"""OpenAIStreamDecoder: OpenAI chat completion chunks read back into chunks."""

from __future__ import annotations

from trio_stream.formats._sse import Event, EventParser


def test_an_event_whose_only_data_line_is_empty_is_no_event() -> None:
    # The WHATWG rules dispatch no event for an empty data buffer; some
    # servers send such events to keep a connection busy.
    events = EventParser().feed(b"data:\n\ndata: \n\ndata: x\n\ndata:\ndata:\n\n")
    assert events == [Event(15, "x"), Event(24, "\n")]
