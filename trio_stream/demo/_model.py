"""The demo's real model: an OpenAI-compatible or Anthropic server, chosen by the environment.

With ``OPENAI_BASE_URL`` set (and ``OPENAI_API_KEY``, ``OPENAI_MODEL`` if
needed), the demo asks that server instead of the scripted agent; with
``ANTHROPIC_BASE_URL`` (and ``ANTHROPIC_API_KEY``, ``ANTHROPIC_MODEL``), it
asks a server of Anthropic's Messages API. The model is offered two small
tools; when it calls them, they run in parallel in the run's nursery and the
model is asked again with their results, until it answers without calling
any (or after a few rounds).
"""

from __future__ import annotations

import ast
import json
import operator
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._controller import RunController, ToolCallController
from ._agent import Agent, ScriptedAgent

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic
    from anthropic.types import MessageParam, ToolParam
    from openai import AsyncOpenAI

    from ..adapters.openai import ToolCall

__all__ = [
    "DEFAULT_ANTHROPIC_MODEL",
    "DEFAULT_MODEL",
    "AnthropicAgent",
    "OpenAIAgent",
    "agent_from_environment",
]

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_ANTHROPIC_MODEL = "claude-haiku-4-5"

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city (demo data).",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "calculate",
            "description": "Evaluate an arithmetic expression: numbers, + - * / ** and brackets.",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string"}},
                "required": ["expression"],
            },
        },
    },
]

_OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _evaluate(node: ast.AST) -> float:
    """Arithmetic only: a model's expression is input, never code to run."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 100:
            raise ValueError("exponent too large")
        return float(_OPERATORS[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return float(_OPERATORS[type(node.op)](_evaluate(node.operand)))
    raise ValueError(f"not arithmetic: {ast.dump(node)[:60]}")


def calculate(expression: str) -> float:
    """The value of an arithmetic expression; ``ValueError`` for anything else."""
    if len(expression) > 200:
        raise ValueError("expression too long")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an expression: {expression!r}") from exc
    try:
        return _evaluate(tree)
    except ZeroDivisionError:
        raise ValueError("division by zero") from None


def get_weather(city: str) -> dict[str, Any]:
    """Made-up, stable weather: the demo has no weather service."""
    celsius = sum(city.encode()) % 30
    return {"city": city, "celsius": celsius, "source": "demo data"}


def _tool_result(name: str, args: Any) -> Any:
    if name == "get_weather":
        return get_weather(str(args["city"]))
    if name == "calculate":
        return {"value": calculate(str(args["expression"]))}
    raise ValueError(f"no tool named {name!r}")


async def _run_tool(call: ToolCall) -> None:
    """Run a call the model made; a bad call is an error result the model can read."""
    try:
        result = _tool_result(call.name, call.args)
    except (ValueError, KeyError, TypeError) as exc:
        call.controller.set_response(f"{type(exc).__name__}: {exc}", is_error=True)
    else:
        call.controller.set_response(result)


ANTHROPIC_TOOLS: list[ToolParam] = [
    {
        "name": tool["function"]["name"],
        "description": tool["function"]["description"],
        "input_schema": tool["function"]["parameters"],
    }
    for tool in TOOLS
]
"""The same two tools, as the Messages API takes them."""


async def _spawned_tool(call: ToolCallController) -> Any:
    """A demo tool run as a spawned tool call: what it returns is the result.

    A bad call raises, and the Anthropic loop makes the message an error
    result the model can read; it names the error, as ``_run_tool`` does.
    """
    try:
        return _tool_result(call.tool_name, call.args)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc


class OpenAIAgent:
    """Answers through an OpenAI-compatible chat-completions server, tools included."""

    def __init__(self, client: AsyncOpenAI, model: str, *, max_rounds: int = 4) -> None:
        self.client = client
        self.model = model
        self.name = model
        self.max_rounds = max_rounds

    async def aclose(self) -> None:
        """Close the client's connections; the demo app does it at shutdown."""
        await self.client.close()

    async def __call__(self, controller: RunController, messages: list[dict[str, str]]) -> str:
        from ..adapters.openai import run_chat_completion

        history: list[Any] = list(messages)
        answer: list[str] = []
        for _ in range(self.max_rounds):
            outcome = await run_chat_completion(
                controller, self.client, model=self.model, messages=history, tools=TOOLS
            )
            answer.append(outcome.text)
            if not outcome.tool_calls:
                break
            history.append(outcome.assistant_message())
            # Each call is a task of the run: they run in parallel, and are
            # cancelled with it.
            async with controller.open_substream() as tools:
                for call in outcome.tool_calls:
                    tools.start_soon(_run_tool, call)
            for call in outcome.tool_calls:
                response = call.controller.response
                assert response is not None
                history.append(
                    {
                        "role": "tool",
                        "tool_call_id": call.id,
                        "content": json.dumps(response.result),
                    }
                )
        return "".join(answer)


class AnthropicAgent:
    """Answers through a server of Anthropic's Messages API, tools included."""

    def __init__(
        self, client: AsyncAnthropic, model: str, *, max_rounds: int = 4, max_tokens: int = 4096
    ) -> None:
        self.client = client
        self.model = model
        self.name = model
        self.max_rounds = max_rounds
        self.max_tokens = max_tokens

    async def aclose(self) -> None:
        """Close the client's connections; the demo app does it at shutdown."""
        await self.client.close()

    async def __call__(self, controller: RunController, messages: list[dict[str, str]]) -> str:
        from ..adapters.anthropic import run_tool_loop

        # The API takes the system prompt apart, and refuses empty messages.
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        history: list[MessageParam] = []
        for message in messages:
            if message["role"] == "user" and message["content"]:
                history.append({"role": "user", "content": message["content"]})
            elif message["role"] == "assistant" and message["content"]:
                history.append({"role": "assistant", "content": message["content"]})
        params: dict[str, Any] = {"system": system} if system else {}
        outcome = await run_tool_loop(
            controller,
            self.client,
            model=self.model,
            messages=history,
            max_tokens=self.max_tokens,
            tool_functions={tool["name"]: _spawned_tool for tool in ANTHROPIC_TOOLS},
            max_rounds=self.max_rounds,
            tools=ANTHROPIC_TOOLS,
            **params,
        )
        return outcome.text


def agent_from_environment(environ: Mapping[str, str] = os.environ, *, pace: float = 1.0) -> Agent:
    """The scripted agent at ``pace``, or the model the environment names.

    ``OPENAI_BASE_URL`` names an OpenAI-compatible server, else
    ``ANTHROPIC_BASE_URL`` a server of Anthropic's Messages API.
    """
    base_url = environ.get("OPENAI_BASE_URL")
    if not base_url:
        if environ.get("ANTHROPIC_BASE_URL"):
            return _anthropic_agent(environ)
        return ScriptedAgent(pace)
    try:
        from openai import AsyncOpenAI
    except ImportError:
        raise SystemExit(
            "OPENAI_BASE_URL is set, but the openai package is not installed: "
            "pip install 'trio-stream[openai]'"
        ) from None
    # Local servers (vLLM, llama.cpp, Ollama) accept any key; the client needs one.
    client = AsyncOpenAI(base_url=base_url, api_key=environ.get("OPENAI_API_KEY") or "unused")
    return OpenAIAgent(client, environ.get("OPENAI_MODEL") or DEFAULT_MODEL)


def _anthropic_agent(environ: Mapping[str, str]) -> AnthropicAgent:
    try:
        from anthropic import AsyncAnthropic
    except ImportError:
        raise SystemExit(
            "ANTHROPIC_BASE_URL is set, but the anthropic package is not installed: "
            "pip install 'trio-stream[anthropic]'"
        ) from None
    # Servers that speak the Messages API locally accept any key; the client needs one.
    client = AsyncAnthropic(
        base_url=environ["ANTHROPIC_BASE_URL"],
        api_key=environ.get("ANTHROPIC_API_KEY") or "unused",
    )
    return AnthropicAgent(client, environ.get("ANTHROPIC_MODEL") or DEFAULT_ANTHROPIC_MODEL)
