"""The warnings the ``openai`` client causes on Trio, which tests using it ignore.

The client leaves async generators of its own (the SSE decoder's, the
response's byte iterator) unexhausted when a stream ends at ``[DONE]``; on
Trio, collecting such a generator warns. Nothing of this project's is
involved, and nothing is leaked: the HTTP response is closed.
"""

from __future__ import annotations

import pytest

__all__ = ["ignore_openai_client_warnings"]

ignore_openai_client_warnings = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <async_generator object "
    "(Response.aiter_bytes|SSEDecoder.aiter_bytes|AsyncStream._iter_events"
    "|PoolByteStream.__aiter__) :pytest.PytestUnraisableExceptionWarning"
)
