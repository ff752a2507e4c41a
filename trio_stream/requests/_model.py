"""The base of every request model: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["WireModel"]


class WireModel(BaseModel):
    """A part of a request body sent by a JavaScript front-end.

    Fields are read from their camelCase names (``toolCallId``) and are
    attributes in snake_case (``tool_call_id``). Fields the model does not
    name are kept, not refused: front-ends add fields from release to release
    and spread the app's own ``body`` option into the request, and a server
    that rejects what it does not know breaks on the next client update.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        frozen=True,
    )
