"""The OpenAI chat completions stream: ``chat.completion.chunk`` events.

What an OpenAI-compatible client (the official ``openai`` SDKs, LangChain,
anything that talks to ``/v1/chat/completions`` with ``stream=True``) reads:
server-sent events whose ``choices[0].delta`` carries the assistant's text
(``content``), its reasoning (``reasoning_content``, as DeepSeek and vLLM
send it) and its tool calls, each numbered by ``index``, with its ``id``,
function name and argument text streamed in pieces. A last chunk carries the
``finish_reason``: ``tool_calls`` when the message called tools, ``length``
or ``content_filter`` when the run's last step finished so, else ``stop``;
then an optional usage chunk, then ``data: [DONE]``.

The format describes one assistant message, as a model produces it. What a
run adds beyond that has no place in it and is not sent: tool results, the
chunks of sub-streams (anything with a parent id), state, sources, files,
data and annotations. An error becomes an event with an ``error`` object, as
OpenAI sends it, on which the ``openai`` client raises ``APIError``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from .._ids import random_id
from .._json import encode
from ..chunks import (
    AnnotationsChunk,
    Chunk,
    DataChunk,
    ErrorChunk,
    FileChunk,
    ReasoningDeltaChunk,
    SourceChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)
from . import _sse
from ._encoder import StreamEncoder
from ._message import MessageOutcome, not_a_chunk

__all__ = ["OpenAIStreamEncoder"]

_FINISH_REASONS = {"length": "length", "content-filter": "content_filter"}


class OpenAIStreamEncoder(StreamEncoder):
    """Encodes chunks as OpenAI ``chat.completion.chunk`` events.

    ``model`` is reported in every chunk; ``include_usage`` adds the usage
    chunk a client asks for with ``stream_options={"include_usage": True}``,
    with the token counts summed over the run's ``step-finish`` chunks.
    """

    media_type: ClassVar[str] = _sse.MEDIA_TYPE
    headers: ClassVar[Mapping[str, str]] = _sse.HEADERS
    keepalive: ClassVar[bytes] = _sse.KEEPALIVE
    default_heartbeat: ClassVar[bool] = True

    def __init__(
        self,
        *,
        model: str = "trio-stream",
        include_usage: bool = False,
        system_fingerprint: str | None = None,
    ) -> None:
        self.id = random_id("chatcmpl-")
        self.model = model
        self.include_usage = include_usage
        self.created = int(time.time())
        header = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": model,
            "system_fingerprint": system_fingerprint,
        }
        # Every event but the usage one is this prefix, a delta, this suffix.
        self._prefix = b"data: " + encode(header)[:-1] + b',"choices":[{"index":0,"delta":'
        self._finish_reason_key = b',"logprobs":null,"finish_reason":'
        self._suffix = self._finish_reason_key + b"null}]}\n\n"
        self._tool_indices: dict[str, int] = {}
        self._tool_calls = 0
        self._role_sent = False
        self._outcome = MessageOutcome()

    def _delta(self, delta: dict[str, Any]) -> bytes:
        if not self._role_sent:
            self._role_sent = True
            delta = {"role": "assistant", **delta}
        return self._prefix + encode(delta) + self._suffix

    def encode(self, chunks: Iterable[Chunk]) -> bytes:
        return b"".join([self._encode_one(chunk) for chunk in chunks])

    def _encode_one(self, chunk: Chunk) -> bytes:
        match chunk:
            case TextDeltaChunk(parent_id=None):
                return self._delta({"content": chunk.text_delta})
            case ReasoningDeltaChunk(parent_id=None):
                return self._delta({"reasoning_content": chunk.reasoning_delta})
            case ToolCallBeginChunk(parent_id=None):
                # Every call gets an index of its own, even one that reuses an
                # id: its argument deltas then go to the latest call of that id.
                index = self._tool_indices[chunk.tool_call_id] = self._tool_calls
                self._tool_calls += 1
                call = {
                    "index": index,
                    "id": chunk.tool_call_id,
                    "type": "function",
                    "function": {"name": chunk.tool_name, "arguments": ""},
                }
                return self._delta({"tool_calls": [call]})
            case ToolCallDeltaChunk():
                known = self._tool_indices.get(chunk.tool_call_id)
                if known is None:  # a call made inside a sub-stream
                    return b""
                call = {"index": known, "function": {"arguments": chunk.args_text_delta}}
                return self._delta({"tool_calls": [call]})
            case StepFinishChunk():
                self._outcome.step_finished(chunk)
                return b""
            case ErrorChunk():
                self._outcome.failed = True
                return _sse.event(
                    {"error": {"message": chunk.error, "type": "server_error", "code": None}}
                )
            case (
                # Chunks of sub-streams, and what a chat completion has no place for.
                TextDeltaChunk()
                | ReasoningDeltaChunk()
                | ToolCallBeginChunk()
                | ToolResultChunk()
                | DataChunk()
                | UpdateStateChunk()
                | SourceChunk()
                | FileChunk()
                | AnnotationsChunk()
                | StepStartChunk()
            ):
                return b""
            case _:
                return not_a_chunk(chunk)

    def finish(self) -> bytes:
        outcome = self._outcome
        if outcome.failed:
            return _sse.DONE
        # A last step cut short says so; otherwise a message that called tools
        # ends with them.
        reason = _FINISH_REASONS.get(outcome.last_step_reason or "")
        if reason is None:
            reason = "tool_calls" if self._tool_indices else "stop"
        delta = b"{}" if self._role_sent else b'{"role":"assistant"}'
        last = self._prefix + delta + self._finish_reason_key + encode(reason) + b"}]}\n\n"
        if not self.include_usage:
            return last + _sse.DONE
        usage = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": {
                "prompt_tokens": outcome.input_tokens,
                "completion_tokens": outcome.output_tokens,
                "total_tokens": outcome.input_tokens + outcome.output_tokens,
            },
        }
        return last + _sse.event(usage) + _sse.DONE
