"""Serve one ASGI app with hypercorn itself, in a process of its own.

    python -m bench._serve <server> <module:attribute> <port>

``server`` is ``hypercorn-trio`` or ``hypercorn-asyncio``: hypercorn's
``serve`` on that event loop, with nothing of trio-stream's around the app
(the bare ceiling needs the server alone). hypercorn's own command would
serve from a child process, whose CPU and memory the harness would not see.
Every server gets the same listen backlog (``bench._servers.BACKLOG``) and
no access log, so they differ only in themselves; ``trio-stream serve`` and
uvicorn run through their own commands (``bench._servers``).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from functools import partial
from typing import Any

from hypercorn.config import Config

from ._servers import BACKLOG


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _config(port: int) -> Config:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.backlog = BACKLOG
    config.accesslog = None
    return config


def main() -> None:
    server, target, port_text = sys.argv[1:4]
    app = _load(target)
    config = _config(int(port_text))
    if server == "hypercorn-trio":
        import trio
        from hypercorn.trio import serve as trio_serve

        trio.run(partial(trio_serve, app, config, mode="asgi"))
    elif server == "hypercorn-asyncio":
        from hypercorn.asyncio import serve as asyncio_serve

        asyncio.run(asyncio_serve(app, config, mode="asgi"))
    else:
        raise SystemExit(f"unknown server {server!r}")


if __name__ == "__main__":
    main()
