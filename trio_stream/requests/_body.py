"""Reading a request body into a model, with every failure a clear 4xx JSON answer.

Frameworks differ in what they check. FastAPI validates a body parameter
(422) but reads a body of any size into memory first; Starlette validates
nothing. ``parse_body`` does the whole job for any Starlette request: it
bounds the size while reading, so a huge body costs at most ``max_size``
bytes, and it reports each failure with the status code and the JSON shape
FastAPI uses (``{"detail": ...}``), so clients see one error format whichever
framework serves the route.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any, TypeVar

import pydantic
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from .._errors import TrioStreamError

__all__ = ["CLIENT_CLOSED_REQUEST", "DEFAULT_MAX_BODY_SIZE", "RequestBodyError", "parse_body"]

CLIENT_CLOSED_REQUEST = 499
"""The status of a request whose client left mid-body: nginx's convention, so
access logs tell a client that gave up from one that sent a bad body."""

#: The largest body ``parse_body`` reads unless told otherwise: 1 MiB holds a
#: long conversation; attachments belong in a file store, not in every turn.
DEFAULT_MAX_BODY_SIZE = 1 << 20

Model = TypeVar("Model", bound=pydantic.BaseModel)


class RequestBodyError(TrioStreamError, ValueError):
    """A request body that cannot be accepted, with the HTTP answer to give.

    ``detail`` is a sentence, or for a body that does not match its model
    (422) a list of ``{"type", "loc", "msg"}`` entries, one per wrong field.
    """

    def __init__(self, status_code: int, detail: str | list[dict[str, Any]]) -> None:
        super().__init__(detail if isinstance(detail, str) else _summarize(detail))
        self.status_code = status_code
        self.detail = detail

    def response(self) -> JSONResponse:
        """The JSON answer: ``{"detail": ...}`` with this error's status code."""
        return JSONResponse({"detail": self.detail}, status_code=self.status_code)


def _summarize(errors: list[dict[str, Any]]) -> str:
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


async def _read_bounded(request: Request, max_size: int) -> bytes:
    too_large = RequestBodyError(413, f"the request body is larger than {max_size} bytes")
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise RequestBodyError(400, "the content-length header is not a number") from None
        if length > max_size:
            # Refused before a byte of it is read.
            raise too_large
    body = bytearray()
    try:
        async with aclosing(request.stream()) as pieces:
            async for piece in pieces:
                body += piece
                if len(body) > max_size:
                    raise too_large
    except ClientDisconnect:
        # Not a server error: without this, the server logs a traceback for
        # every client that gives up during an upload.
        raise RequestBodyError(
            CLIENT_CLOSED_REQUEST, "the client disconnected before sending the whole body"
        ) from None
    return bytes(body)


async def parse_body(
    request: Request, model: type[Model], *, max_size: int = DEFAULT_MAX_BODY_SIZE
) -> Model:
    """Read ``request``'s JSON body and validate it as ``model``.

    Raises ``RequestBodyError``, whose ``response()`` is the answer to send:
    415 for a body declared as something other than JSON, 413 for one larger
    than ``max_size`` bytes (not read past that size), 400 for bytes that are
    not JSON, 422 for JSON that does not match ``model``, naming each field,
    and 499 when the client disconnects before its body is complete (nobody
    reads that answer, but the access log shows it).
    A body without a content type is read as JSON.
    """
    content_type = request.headers.get("content-type")
    if content_type is not None and not _is_json(content_type):
        raise RequestBodyError(
            415, f"the request body must be JSON (application/json), not {content_type}"
        )
    raw = await _read_bounded(request, max_size)
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise RequestBodyError(400, "the request body is not valid UTF-8") from None
    except RecursionError:
        raise RequestBodyError(400, "the request body's JSON is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise RequestBodyError(
            400,
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}",
        ) from None
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = [
            {"type": error["type"], "loc": ["body", *error["loc"]], "msg": error["msg"]}
            for error in exc.errors(include_url=False)
        ]
        raise RequestBodyError(422, errors) from None
