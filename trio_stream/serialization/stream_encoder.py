"""The base class of every format's encoder, at assistant-stream's path."""

from ..formats import StreamEncoder

__all__ = ["StreamEncoder"]
