"""The warnings the ``anthropic`` client causes on Trio, which tests using it ignore.

A stream of the client reads its events through async generators of its own
(the SSE decoder's, the stream's, the message stream's, the response's byte
iterator) and closes only the HTTP response when it is closed, leaving those
generators unexhausted; on Trio, collecting such a generator warns. Nothing
of this project's is involved, and nothing is leaked: the response is closed.
"""

from __future__ import annotations

import pytest

__all__ = ["ignore_anthropic_client_warnings"]

ignore_anthropic_client_warnings = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <async_generator object "
    "(SSEDecoder|AsyncStream|AsyncMessageStream|Response|PoolByteStream)[.]"
    "(aiter_bytes|_aiter_chunks|_iter_events|__stream__|__aiter__|aiter_raw) "
    ":pytest.PytestUnraisableExceptionWarning"
)
