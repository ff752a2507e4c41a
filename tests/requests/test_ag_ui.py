"""AGUIRequest takes the RunAgentInput an AG-UI client posts, every role of message.

The bodies are built with the protocol's own Python package
(``ag-ui-protocol``) and dumped as it puts them on the wire; the body
``@ag-ui/client``'s ``HttpAgent`` posts is read over HTTP in
``tests/formats/test_ag_ui_client.py``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from ag_ui.core import types as agui
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trio_stream.requests import AGUIRequest, RequestBodyError, parse_body
from trio_stream.requests.ag_ui import (
    ActivityMessage,
    AssistantMessage,
    BinaryPart,
    DataSource,
    DeveloperMessage,
    MediaPart,
    ReasoningMessage,
    SystemMessage,
    TextPart,
    ToolMessage,
    UrlSource,
    UserMessage,
)

from ..serving import running


def protocol_input() -> dict[str, Any]:
    """A RunAgentInput with a message of every role, as the protocol's package sends it."""
    run_input = agui.RunAgentInput(
        thread_id="thread-1",
        run_id="run-2",
        parent_run_id="run-1",
        protocol_version="1.0",
        state={"todo": ["tea"]},
        messages=[
            agui.DeveloperMessage(id="m0", role="developer", content="Use metric units."),
            agui.SystemMessage(id="m1", role="system", content="Be brief."),
            agui.UserMessage(
                id="m2",
                role="user",
                content=[
                    agui.TextPart(type="text", text="What is "),
                    agui.ImagePart(
                        type="image",
                        source=agui.DataSource(type="data", value="aGk=", mime_type="image/png"),
                    ),
                    agui.TextPart(type="text", text="this?"),
                    agui.DocumentPart(
                        type="document",
                        source=agui.UrlSource(type="url", value="https://example.org/a.pdf"),
                    ),
                ],
            ),
            agui.ReasoningMessage(id="m3", role="reasoning", content="An image of a cat."),
            agui.AssistantMessage(
                id="m4",
                role="assistant",
                content="Let me check.",
                tool_calls=[
                    agui.ToolCall(
                        id="call_1",
                        type="function",
                        function=agui.FunctionCall(name="lookup", arguments='{"q":"cat"}'),
                    )
                ],
            ),
            agui.ToolMessage(id="m5", role="tool", content="a cat", tool_call_id="call_1"),
            agui.ActivityMessage(
                id="m6", role="activity", activity_type="progress", content={"done": 1}
            ),
        ],
        tools=[
            agui.Tool(name="confirm", description="Ask the user", parameters={"type": "object"})
        ],
        context=[agui.Context(description="timezone", value="Europe/Lisbon")],
        forwarded_props={"mode": "fast"},
        resume=[agui.ResumeEntry(interrupt_id="i1", status="resolved", payload={"ok": True})],
    )
    body: dict[str, Any] = run_input.model_dump(mode="json", by_alias=True)
    return body


def test_every_role_is_typed() -> None:
    body = AGUIRequest.model_validate(protocol_input())
    assert (body.thread_id, body.run_id, body.parent_run_id) == ("thread-1", "run-2", "run-1")
    assert body.state == {"todo": ["tea"]}
    assert [type(message) for message in body.messages] == [
        DeveloperMessage,
        SystemMessage,
        UserMessage,
        ReasoningMessage,
        AssistantMessage,
        ToolMessage,
        ActivityMessage,
    ]
    user = body.messages[2]
    assert isinstance(user, UserMessage)
    assert user.text == "What is this?"
    image, document = user.content[1], user.content[3]
    assert isinstance(image, MediaPart)
    assert isinstance(image.source, DataSource)
    assert image.source.mime_type == "image/png"
    assert isinstance(document, MediaPart)
    assert isinstance(document.source, UrlSource)
    assistant = body.messages[4]
    assert isinstance(assistant, AssistantMessage)
    assert assistant.tool_calls is not None
    assert assistant.tool_calls[0].function.arguments == '{"q":"cat"}'
    tool = body.messages[5]
    assert isinstance(tool, ToolMessage)
    assert (tool.tool_call_id, tool.text) == ("call_1", "a cat")
    activity = body.messages[6]
    assert isinstance(activity, ActivityMessage)
    assert activity.content == {"done": 1}
    assert [(tool.name, tool.parameters) for tool in body.tools] == [
        ("confirm", {"type": "object"})
    ]
    assert [(c.description, c.value) for c in body.context] == [("timezone", "Europe/Lisbon")]
    assert body.forwarded_props == {"mode": "fast"}
    assert body.resume is not None
    assert body.resume[0].interrupt_id == "i1"


def test_the_least_a_client_sends_is_ids_and_messages() -> None:
    body = AGUIRequest.model_validate({"threadId": "t", "runId": "r", "messages": []})
    assert (body.state, body.tools, body.context, body.forwarded_props) == (None, [], [], None)


def test_null_where_older_clients_sent_it_is_taken_as_absent() -> None:
    body = AGUIRequest.model_validate(
        {
            "threadId": "t",
            "runId": "r",
            "state": None,
            "forwardedProps": None,
            "tools": [{"name": "f", "description": "", "parameters": None}],
            "messages": [
                {
                    "id": "u",
                    "role": "user",
                    "content": [
                        {"type": "binary", "mimeType": "image/png", "data": "aGk="},
                        {"type": "text", "text": "and this"},
                    ],
                }
            ],
        }
    )
    user = body.messages[0]
    assert isinstance(user, UserMessage)
    assert isinstance(user.content[0], BinaryPart)  # the media part before AG-UI 1.0
    assert isinstance(user.content[1], TextPart)


def errors(body: Any) -> list[tuple[tuple[Any, ...], Any, str]]:
    """Each error's place (where it starts, the field it names) and type."""
    with pytest.raises(ValidationError) as info:
        AGUIRequest.model_validate(body)
    return [(error["loc"][:2], error["loc"][-1], error["type"]) for error in info.value.errors()]


def test_a_wrong_body_names_each_wrong_field() -> None:
    assert errors(
        {
            "threadId": "t",
            "messages": [
                {"id": "a", "role": "robot", "content": "x"},
                {"id": "b", "role": "tool", "content": "x"},
                {"id": "c", "role": "user", "content": [{"type": "video", "source": {}}]},
            ],
        }
    ) == [
        (("runId",), "runId", "missing"),
        (("messages", 0), 0, "union_tag_invalid"),
        (("messages", 1), "toolCallId", "missing"),
        (("messages", 2), "str", "string_type"),  # content is a string, or parts:
        (("messages", 2), "source", "union_tag_not_found"),
    ]


async def agent(request: Request) -> Response:
    try:
        body = await parse_body(request, AGUIRequest)
    except RequestBodyError as error:
        return error.response()
    return JSONResponse({"run": body.run_id, "last": body.messages[-1].id})


def test_parse_body_reads_it_and_answers_a_bad_one_with_422() -> None:
    with running(Starlette(routes=[Route("/agent", agent, methods=["POST"])])) as base:
        good = httpx.post(f"{base}/agent", json=protocol_input(), timeout=30)
        bad = httpx.post(f"{base}/agent", json={"threadId": "t", "messages": []}, timeout=30)
    assert good.json() == {"run": "run-2", "last": "m6"}
    assert bad.status_code == 422
    assert bad.json()["detail"] == [
        {"type": "missing", "loc": ["body", "runId"], "msg": "Field required"}
    ]
