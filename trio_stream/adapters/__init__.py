"""Adapters: what other libraries stream, piped into a run.

Each adapter lives in a module of its own and needs its library, installed
as an extra; importing this package needs none of them:

- ``openai``: a chat completion streamed by an OpenAI-compatible server,
  read with the official ``openai`` client (``pip install 'trio-stream[openai]'``).
- ``anthropic``: a message streamed by Anthropic's Messages API, read with
  the official ``anthropic`` client, and a loop that runs the model's tool
  calls (``pip install 'trio-stream[anthropic]'``).
- ``mcp``: the tools of an MCP server, run as tool calls over a session of
  the official ``mcp`` SDK (``pip install 'trio-stream[mcp]'``).
- ``langgraph``: a LangGraph graph's stream merged into a run's state, on
  asyncio (``pip install 'trio-stream[langgraph]'``).
"""
