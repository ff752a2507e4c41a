"""Serve one ASGI app with one server, in a process of its own.

    python -m bench._serve <server> <module:attribute> <port>

``server`` is ``hypercorn-trio`` (through ``trio_stream.serve``),
``hypercorn-asyncio`` or ``uvicorn`` (with uvloop and httptools, as
``uvicorn[standard]`` runs by default). Every server gets the same listen
backlog and no access log, so they differ only in themselves.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from typing import Any

BACKLOG = 4096


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def main() -> None:
    server, target, port_text = sys.argv[1:4]
    app = _load(target)
    port = int(port_text)
    if server == "hypercorn-trio":
        import trio

        from trio_stream import serve

        trio.run(lambda: serve(app, host="127.0.0.1", port=port))
    elif server == "hypercorn-asyncio":
        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.backlog = BACKLOG
        config.accesslog = None
        asyncio.run(hypercorn_serve(app, config))
    elif server == "uvicorn":
        import uvicorn

        uvicorn.run(
            app,
            host="127.0.0.1",
            port=port,
            backlog=BACKLOG,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    else:
        raise SystemExit(f"unknown server {server!r}")


if __name__ == "__main__":
    main()
