"""The demo with a real model: an OpenAI-compatible or Anthropic server this suite serves.

The fake OpenAI-compatible server is this project's ``OpenAIStreamResponse``
on hypercorn, the fake Anthropic one the adapter tests' Messages server:
asked a question, each calls ``get_weather`` and ``calculate`` (in one
message, arguments streamed); given the tool results, it answers with them.
The demo talks to them with the official ``openai`` and ``anthropic``
clients.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from trio_stream import RunController, create_run
from trio_stream.asgi import OpenAIStreamResponse
from trio_stream.demo import ScriptedAgent, create_app
from trio_stream.demo._model import (
    AnthropicAgent,
    OpenAIAgent,
    agent_from_environment,
    calculate,
)
from trio_stream.formats.openai_stream import OpenAIStreamEncoder

from ..adapters.messages_server import (
    Script,
    message,
    messages_app,
    text,
    thinking,
    tool_results,
    tool_use,
)
from ..anthropic_warnings import ignore_anthropic_client_warnings
from ..clients import decode, summarize
from ..openai_warnings import ignore_openai_client_warnings
from ..serving import running, running_demo

pytestmark = [ignore_openai_client_warnings, ignore_anthropic_client_warnings]

requests_seen: list[dict[str, Any]] = []


async def chat_completions(request: Request) -> OpenAIStreamResponse:
    body = await request.json()
    requests_seen.append(body)
    results = [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"]

    async def model(controller: RunController) -> None:
        if results:
            weather, value = results
            controller.append_text(
                f"It is {weather['celsius']} °C in {weather['city']}, and the sum is "
                f"{value['value']:g}."
            )
            return
        controller.append_reasoning("Two tools will answer this.")
        for name, args in (
            ("get_weather", '{"city": "Oslo"}'),
            ("calculate", '{"expression": "2*21"}'),
        ):
            call = await controller.add_tool_call(name)
            for piece in (args[:5], args[5:]):
                call.append_args_text(piece)
            call.close()

    encoder = OpenAIStreamEncoder(model=body["model"], include_usage=True)
    return OpenAIStreamResponse(create_run(model), encoder=encoder)


@pytest.fixture(scope="module")
def model_url() -> Iterator[str]:
    app = Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])
    with running(app) as url:
        yield f"{url}/v1"


def test_the_demo_pipes_the_model_and_runs_the_tools_it_asks_for(model_url: str) -> None:
    requests_seen.clear()
    agent = agent_from_environment({"OPENAI_BASE_URL": model_url, "OPENAI_MODEL": "fake-1"})
    assert isinstance(agent, OpenAIAgent)
    with running(create_app(agent=agent)) as url:
        assert httpx.get(f"{url}/api/info").json()["model"] == "fake-1"
        body = {"messages": [{"role": "user", "content": "Oslo, and 2*21?"}]}
        output = decode("data-stream", url=f"{url}/api/chat/data-stream", post=body)
    assert summarize(output["message"]["parts"]) == [
        ("reasoning", "Two tools will answer this.", None),
        (
            "tool-call",
            "get_weather",
            {"city": "Oslo"},
            {"city": "Oslo", "celsius": 23, "source": "demo data"},
            False,
            None,
        ),
        ("tool-call", "calculate", {"expression": "2*21"}, {"value": 42.0}, False, None),
        ("text", "It is 23 °C in Oslo, and the sum is 42.", None),
    ]
    first, second = requests_seen
    assert (first["model"], first["stream"]) == ("fake-1", True)
    assert [tool["function"]["name"] for tool in first["tools"]] == ["get_weather", "calculate"]
    # The second request carries the model's calls and the results.
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "tool", "tool"]
    assert [c["function"]["name"] for c in second["messages"][1]["tool_calls"]] == [
        "get_weather",
        "calculate",
    ]


def test_the_cli_uses_the_model_the_environment_names(
    model_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", model_url)
    monkeypatch.setenv("OPENAI_MODEL", "fake-2")
    with running_demo(tmp_path / "server.log") as url:
        assert httpx.get(f"{url}/api/info").json()["model"] == "fake-2"
        reply = httpx.post(
            f"{url}/api/chat/data-stream",
            json={"messages": [{"role": "user", "content": "Hi"}]},
            timeout=30,
        )
    assert '0:"It is 23 °C in Oslo, and the sum is 42."' in reply.text.splitlines()
    assert "model: fake-2" in (tmp_path / "server.log").read_text()


def test_without_a_base_url_the_demo_is_scripted() -> None:
    assert isinstance(agent_from_environment({}), ScriptedAgent)
    assert isinstance(agent_from_environment({"OPENAI_BASE_URL": ""}), ScriptedAgent)
    assert isinstance(agent_from_environment({"ANTHROPIC_BASE_URL": ""}), ScriptedAgent)


# -- Anthropic ---------------------------------------------------------------------

anthropic_requests: list[dict[str, Any]] = []


def claude(body: dict[str, Any]) -> Script:
    results = tool_results(body)
    if results:
        weather, value = (json.loads(results[i]["content"]) for i in ("toolu_w", "toolu_c"))
        answer = f"It is {weather['celsius']} °C in {weather['city']}, and the sum is "
        return message(text(0, answer, f"{value['value']:g}."))
    return message(
        thinking(0, "Two tools will answer this.", signature="SIG"),
        tool_use(1, "toolu_w", "get_weather", '{"city"', ': "Oslo"}'),
        tool_use(2, "toolu_c", "calculate", '{"expression": ', '"2*21"}'),
        stop_reason="tool_use",
    )


@pytest.fixture(scope="module")
def anthropic_url() -> Iterator[str]:
    with running(messages_app(claude, anthropic_requests)) as url:
        yield url


def test_the_demo_pipes_an_anthropic_model_and_runs_the_tools_it_asks_for(
    anthropic_url: str,
) -> None:
    anthropic_requests.clear()
    agent = agent_from_environment(
        {"ANTHROPIC_BASE_URL": anthropic_url, "ANTHROPIC_MODEL": "fake-claude-1"}
    )
    assert isinstance(agent, AnthropicAgent)
    with running(create_app(agent=agent)) as url:
        assert httpx.get(f"{url}/api/info").json()["model"] == "fake-claude-1"
        body = {
            "system": "Be brief.",
            "messages": [{"role": "user", "content": "Oslo, and 2*21?"}],
        }
        output = decode("data-stream", url=f"{url}/api/chat/data-stream", post=body)
    assert summarize(output["message"]["parts"]) == [
        ("reasoning", "Two tools will answer this.", None),
        (
            "tool-call",
            "get_weather",
            {"city": "Oslo"},
            {"city": "Oslo", "celsius": 23, "source": "demo data"},
            False,
            None,
        ),
        ("tool-call", "calculate", {"expression": "2*21"}, {"value": 42.0}, False, None),
        ("text", "It is 23 °C in Oslo, and the sum is 42.", None),
    ]
    first, second = anthropic_requests
    assert (first["model"], first["stream"], first["system"]) == (
        "fake-claude-1",
        True,
        "Be brief.",
    )
    assert [tool["name"] for tool in first["tools"]] == ["get_weather", "calculate"]
    assert first["tools"][1]["input_schema"]["required"] == ["expression"]
    # The second request carries the model's message, signed thinking and
    # calls, then one result per call.
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert [block["type"] for block in second["messages"][1]["content"]] == [
        "thinking",
        "tool_use",
        "tool_use",
    ]
    assert [r["tool_use_id"] for r in second["messages"][2]["content"]] == ["toolu_w", "toolu_c"]


def test_the_cli_uses_the_anthropic_model_the_environment_names(
    anthropic_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_url)
    monkeypatch.setenv("ANTHROPIC_MODEL", "fake-claude-2")
    with running_demo(tmp_path / "server.log") as url:
        assert httpx.get(f"{url}/api/info").json()["model"] == "fake-claude-2"
        reply = httpx.post(
            f"{url}/api/chat/data-stream",
            json={"messages": [{"role": "user", "content": "Hi"}]},
            timeout=30,
        )
    assert '0:"It is 23 °C in Oslo, and the sum is "' in reply.text.splitlines()
    assert "model: fake-claude-2" in (tmp_path / "server.log").read_text()


def test_an_openai_base_url_comes_before_an_anthropic_one() -> None:
    agent = agent_from_environment(
        {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    )
    assert isinstance(agent, OpenAIAgent)


def test_an_anthropic_server_that_is_down_is_an_error_chunk_not_a_hang() -> None:
    agent = agent_from_environment({"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"})
    with running(create_app(agent=agent)) as url:
        reply = httpx.post(
            f"{url}/api/chat/data-stream",
            json={"messages": [{"role": "user", "content": "Hi"}]},
            timeout=60,
        )
    assert reply.status_code == 200
    assert reply.text.splitlines()[-1] == '3:"Connection error."'


def test_a_model_server_that_is_down_is_an_error_chunk_not_a_hang() -> None:
    agent = agent_from_environment({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    with running(create_app(agent=agent)) as url:
        reply = httpx.post(
            f"{url}/api/chat/data-stream",
            json={"messages": [{"role": "user", "content": "Hi"}]},
            timeout=60,
        )
    assert reply.status_code == 200
    assert reply.text.splitlines()[-1] == '3:"Connection error."'


@pytest.mark.parametrize(
    ("expression", "value"), [("6 * 7", 42.0), ("(1 + 2) ** 2 / 4", 2.25), ("-3 - -3", 0.0)]
)
def test_calculate_evaluates_arithmetic(expression: str, value: float) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize(
    "expression", ["__import__('os')", "2 ** 1000", "1 / 0", "x + 1", "1 +", "9" * 300]
)
def test_calculate_refuses_anything_else(expression: str) -> None:
    with pytest.raises(ValueError, match=r"not an expression|not arithmetic|too|division"):
        calculate(expression)
