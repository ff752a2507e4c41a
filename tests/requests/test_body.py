"""parse_body: a bounded read, then JSON, then the model; each failure a 4xx JSON answer."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import BaseModel, ConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message

from trio_stream.requests import (
    CLIENT_CLOSED_REQUEST,
    DEFAULT_MAX_BODY_SIZE,
    RequestBodyError,
    parse_body,
)

from ..serving import running


class Order(BaseModel):
    item: str
    count: int


class Anything(BaseModel):
    model_config = ConfigDict(extra="allow")


async def order(request: Request) -> Response:
    try:
        body = await parse_body(request, Order, max_size=1000)
    except RequestBodyError as error:
        return error.response()
    return JSONResponse(body.model_dump())


async def anything(request: Request) -> Response:
    """The default bound, and a model that takes any object."""
    try:
        await parse_body(request, Anything)
    except RequestBodyError as error:
        return error.response()
    return Response(status_code=204)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    routes = [Route("/order", order, methods=["POST"]), Route("/any", anything, methods=["POST"])]
    with running(Starlette(routes=routes)) as base:
        yield base


@pytest.fixture
def url(base_url: str) -> str:
    return f"{base_url}/order"


def post(
    url: str, content: bytes, content_type: str | None = "application/json"
) -> httpx.Response:
    headers = {} if content_type is None else {"content-type": content_type}
    return httpx.post(url, content=content, headers=headers, timeout=30)


def test_a_valid_body_becomes_the_model(url: str) -> None:
    response = post(url, b'{"item": "tea", "count": 2}')
    assert response.status_code == 200
    assert response.json() == {"item": "tea", "count": 2}


def test_json_media_types_with_parameters_or_suffixes_are_json(url: str) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json", None):
        assert post(url, b'{"item": "tea", "count": 2}', content_type).status_code == 200


def test_a_body_that_is_not_declared_json_is_415(url: str) -> None:
    response = post(url, b"item=tea&count=2", "application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.json()["detail"]


def test_a_declared_oversized_body_is_refused_before_it_is_read(url: str) -> None:
    response = post(url, b'{"item": "' + b"x" * 2000 + b'", "count": 1}')
    assert response.status_code == 413
    assert response.json() == {"detail": "the request body is larger than 1000 bytes"}


def test_an_undeclared_oversized_body_is_cut_off_at_the_limit(url: str) -> None:
    def pieces() -> Iterator[bytes]:
        # Chunked transfer: no content-length to refuse up front.
        for _ in range(200):
            yield b" " * 100

    response = httpx.post(url, content=pieces(), timeout=30)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json() == {"detail": "the request body is larger than 1000 bytes"}


def test_bytes_that_are_not_json_are_400_with_the_position(url: str) -> None:
    response = post(url, b'{"item": "tea",\n "count": }')
    assert response.status_code == 400
    assert response.json() == {
        "detail": "the request body is not valid JSON: Expecting value at line 2 column 11"
    }


def test_bytes_that_are_not_utf8_are_400(url: str) -> None:
    response = post(url, b'{"item": "\xff"}')
    assert response.status_code == 400
    assert response.json() == {"detail": "the request body is not valid UTF-8"}


def test_json_nested_too_deeply_to_parse_is_400(base_url: str) -> None:
    response = post(f"{base_url}/any", b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400
    assert response.json() == {"detail": "the request body's JSON is nested too deeply"}


def test_the_default_bound_lets_a_mebibyte_in_and_no_more(base_url: str) -> None:
    padding = DEFAULT_MAX_BODY_SIZE - len(b'{"a": ""}')
    assert post(f"{base_url}/any", b'{"a": "' + b"x" * padding + b'"}').status_code == 204
    assert post(f"{base_url}/any", b'{"a": "' + b"x" * (padding + 1) + b'"}').status_code == 413


def test_json_that_does_not_match_names_each_wrong_field(url: str) -> None:
    response = post(url, b'{"count": "two"}')
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {"type": "missing", "loc": ["body", "item"], "msg": "Field required"},
            {
                "type": "int_parsing",
                "loc": ["body", "count"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
            },
        ]
    }


def test_the_error_says_what_is_wrong_in_python_too() -> None:
    error = RequestBodyError(
        422,
        [
            {"type": "missing", "loc": ["body", "item"], "msg": "Field required"},
            {"type": "missing", "loc": ["body", "count"], "msg": "Field required"},
        ],
    )
    assert str(error) == "body.item: Field required (and 1 more)"
    assert isinstance(error, ValueError)
    assert error.response().status_code == 422


@pytest.mark.anyio
async def test_a_client_leaving_mid_body_is_a_499_not_a_server_error() -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"item": "te', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    scope = {
        "type": "http",
        "method": "POST",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"40")],
    }
    with pytest.raises(RequestBodyError) as raised:
        await parse_body(Request(scope, receive), Order)
    assert raised.value.status_code == CLIENT_CLOSED_REQUEST == 499
    assert "disconnected" in str(raised.value)
