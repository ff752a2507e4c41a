"""Log lines as JSON, with the fields trio-stream adds to each of them.

Every line the library logs (on the ``trio_stream`` logger) carries, in
its ``extra``, the run's id and what else it is about, under keys that start
with ``trio_stream.``: ``run_id``, ``stream_id``, ``tool_call_id``,
``tool_name``, ``error_reference``, ``path``, ``client``, ``url``. A JSON
formatter puts them in the object as they are, for a log pipeline to index
without parsing the message::

    python examples/json_logs.py

prints the JSON line of a tool that failed, whose error became its result.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import trio

from trio_stream import RunController, ToolCallController, create_run

PREFIX = "trio_stream."


class JSONFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the ``trio_stream.*``
    fields, and the traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((key, value) for key, value in vars(record).items() if key.startswith(PREFIX))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


async def lookup(call: ToolCallController) -> str:
    raise LookupError("the index is down")


async def run(controller: RunController) -> None:
    controller.spawn_tool_call("lookup", lookup, tool_call_id="call_1", errors_as_result=True)


async def main() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter())
    logging.getLogger("trio_stream").addHandler(handler)
    async with create_run(run, expose_errors=False) as chunks:
        async for _ in chunks:
            pass


if __name__ == "__main__":
    trio.run(main)
