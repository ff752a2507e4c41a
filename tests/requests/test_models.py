"""The request models accept what each front-end posts and name what is wrong.

The bodies here follow the front-ends' own request types: assistant-ui's
``SendCommandsRequestBody`` and data stream runtime body, and the AI SDK's
``DefaultChatTransport`` body (which ``tests/demo`` also posts from Node with
the real transport, over two turns).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from trio_stream.requests import (
    AssistantTransportRequest,
    DataStreamRequest,
    UIMessageStreamRequest,
)
from trio_stream.requests.assistant_transport import AddMessageCommand, AddToolResultCommand
from trio_stream.requests.data_stream import (
    AssistantModelMessage,
    ToolCallContent,
    ToolModelMessage,
    UserModelMessage,
)
from trio_stream.requests.ui_message_stream import DataUIPart, TextUIPart, ToolUIPart


def errors(model: Any, body: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    return [(error["loc"], error["type"]) for error in info.value.errors()]


TRANSPORT_BODY: dict[str, Any] = {
    "commands": [
        {
            "type": "add-message",
            "message": {"role": "user", "parts": [{"type": "text", "text": "Hi"}]},
            "parentId": None,
            "sourceId": None,
        },
        {
            "type": "add-tool-result",
            "toolCallId": "call_1",
            "toolName": "confirm",
            "result": {"ok": True},
            "isError": False,
        },
    ],
    "state": {"messages": []},
    "system": "Be brief.",
    "tools": {"confirm": {"parameters": {"type": "object"}}},
    "threadId": "thread-1",
    "callSettings": {"temperature": 0.2},
    "config": {"modelName": "small"},
    "temperature": 0.2,
    "modelName": "small",
}


def test_assistant_transport_commands_are_typed() -> None:
    body = AssistantTransportRequest.model_validate(TRANSPORT_BODY)
    message, result = body.commands
    assert isinstance(message, AddMessageCommand)
    assert message.message.role == "user"
    assert message.message.text == "Hi"
    assert isinstance(result, AddToolResultCommand)
    assert (result.tool_call_id, result.result, result.is_error) == ("call_1", {"ok": True}, False)
    assert body.call_settings == {"temperature": 0.2}
    assert body.thread_id == "thread-1"
    # Spread call settings and the app's own body fields are kept, not refused.
    assert body.model_extra == {"temperature": 0.2, "modelName": "small"}


def test_assistant_transport_names_an_unknown_command_and_a_missing_field() -> None:
    body = {"commands": [{"type": "add-thought"}, {"type": "add-tool-result", "result": 1}]}
    assert errors(AssistantTransportRequest, body) == [
        (("commands", 0), "union_tag_invalid"),
        (("commands", 1, "add-tool-result", "toolCallId"), "missing"),
    ]
    assert errors(AssistantTransportRequest, {"state": {}}) == [(("commands",), "missing")]


DATA_STREAM_BODY: dict[str, Any] = {
    "system": "Be brief.",
    "messages": [
        {"role": "system", "content": "You are a demo."},
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool-call",
                    "toolCallId": "call_1",
                    "toolName": "get_weather",
                    "input": {"city": "Lisbon"},
                },
            ],
        },
        {
            "role": "tool",
            "content": [
                {
                    "type": "tool-result",
                    "toolCallId": "call_1",
                    "toolName": "get_weather",
                    "output": {"type": "json", "value": {"celsius": 24}},
                }
            ],
        },
        {"role": "user", "content": "Thanks"},
    ],
    "tools": {},
    "unstable_assistantMessageId": "msg_1",
    "runConfig": {"custom": {"mode": "fast"}},
    "state": None,
    "temperature": 0.5,
}


def test_data_stream_messages_are_typed_by_role_and_part() -> None:
    body = DataStreamRequest.model_validate(DATA_STREAM_BODY)
    _, user, assistant, tool, thanks = body.messages
    assert isinstance(user, UserModelMessage)
    assert isinstance(assistant, AssistantModelMessage)
    call = assistant.content[1]
    assert isinstance(call, ToolCallContent)
    assert (call.tool_name, call.input) == ("get_weather", {"city": "Lisbon"})
    assert isinstance(tool, ToolModelMessage)
    assert tool.content[0].output == {"type": "json", "value": {"celsius": 24}}
    assert thanks.content == "Thanks"
    assert body.run_config == {"custom": {"mode": "fast"}}
    assert body.unstable_assistant_message_id == "msg_1"
    assert body.model_extra == {"temperature": 0.5}


def test_data_stream_names_a_bad_role_and_an_empty_conversation() -> None:
    assert errors(DataStreamRequest, {"messages": [{"role": "robot", "content": "x"}]}) == [
        (("messages", 0), "union_tag_invalid")
    ]
    assert errors(DataStreamRequest, {"messages": []}) == [(("messages",), "too_short")]
    assert errors(DataStreamRequest, {"messages": [{"role": "tool", "content": "x"}]}) == [
        (("messages", 0, "tool", "content"), "list_type")
    ]


USE_CHAT_BODY: dict[str, Any] = {
    "id": "chat-1",
    "messages": [
        {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Weather?"}]},
        {
            "id": "a1",
            "role": "assistant",
            "parts": [
                {"type": "step-start"},
                {"type": "reasoning", "text": "Look it up.", "state": "done"},
                {
                    "type": "tool-get_weather",
                    "toolCallId": "call_1",
                    "state": "output-available",
                    "input": {"city": "Lisbon"},
                    "output": {"celsius": 24},
                },
                {
                    "type": "tool-get_quote",
                    "toolCallId": "call_2",
                    "state": "output-error",
                    "input": {"symbol": "X"},
                    "errorText": "unavailable",
                },
                {"type": "source-url", "sourceId": "s1", "url": "https://example.org"},
                {"type": "file", "mediaType": "image/png", "url": "data:image/png;base64,AA=="},
                {"type": "data-weather", "data": {"celsius": 24}},
                {"type": "text", "text": "24 °C.", "state": "done"},
            ],
        },
        {"id": "u2", "role": "user", "parts": [{"type": "text", "text": "Thanks"}]},
    ],
    "trigger": "submit-message",
    "messageId": None,
}


def test_use_chat_parts_are_typed_including_prefixed_types() -> None:
    body = UIMessageStreamRequest.model_validate(USE_CHAT_BODY)
    assert [message.role for message in body.messages] == ["user", "assistant", "user"]
    parts = body.messages[1].parts
    tool = parts[2]
    assert isinstance(tool, ToolUIPart)
    assert (tool.tool_name, tool.state, tool.output) == (
        "get_weather",
        "output-available",
        {"celsius": 24},
    )
    failed = parts[3]
    assert isinstance(failed, ToolUIPart)
    assert failed.error_text == "unavailable"
    data = parts[6]
    assert isinstance(data, DataUIPart)
    assert (data.name, data.data) == ("weather", {"celsius": 24})
    assert isinstance(parts[7], TextUIPart)
    assert body.messages[1].text == "24 °C."
    assert body.message_id is None


def test_use_chat_names_an_unknown_part_and_a_bad_tool_state() -> None:
    body = {
        "id": "chat-1",
        "messages": [
            {
                "id": "a1",
                "role": "assistant",
                "parts": [
                    {"type": "hologram"},
                    {"type": "tool-x", "toolCallId": "c", "state": "thinking"},
                ],
            }
        ],
    }
    assert errors(UIMessageStreamRequest, body) == [
        (("messages", 0, "parts", 0), "unknown_part_type"),
        (("messages", 0, "parts", 1, "tool-*", "state"), "literal_error"),
    ]
    assert errors(UIMessageStreamRequest, {"id": "c", "messages": [], "trigger": "x"}) == [
        (("messages",), "too_short"),
        (("trigger",), "literal_error"),
    ]


def test_models_populate_by_python_name_and_dump_wire_names() -> None:
    command = AddToolResultCommand(type="add-tool-result", tool_call_id="c", result=1)
    assert command.model_dump(by_alias=True, exclude_none=True) == {
        "type": "add-tool-result",
        "toolCallId": "c",
        "result": 1,
        "isError": False,
    }
