"""The demo's real model: any OpenAI-compatible server, chosen by the environment.

With ``OPENAI_BASE_URL`` set (and ``OPENAI_API_KEY``, ``OPENAI_MODEL`` if
needed), the demo asks that server instead of the scripted agent. The model
is offered two small tools; when it calls them, they run in parallel in the
run's nursery and the model is asked again with their results, until it
answers without calling any (or after a few rounds).
"""

from __future__ import annotations

import ast
import json
import operator
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._controller import RunController
from ._agent import Agent, ScriptedAgent

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from ..adapters.openai import ToolCall

__all__ = ["DEFAULT_MODEL", "OpenAIAgent", "agent_from_environment"]

DEFAULT_MODEL = "gpt-4o-mini"

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


def agent_from_environment(environ: Mapping[str, str] = os.environ, *, pace: float = 1.0) -> Agent:
    """The scripted agent at ``pace``, or the model at ``OPENAI_BASE_URL`` if it is set."""
    base_url = environ.get("OPENAI_BASE_URL")
    if not base_url:
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
