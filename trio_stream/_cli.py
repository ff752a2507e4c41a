"""The ``trio-stream`` command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Sequence

import trio
from hypercorn.config import Config
from hypercorn.trio import serve


def _serve_demo(host: str, port: int) -> None:
    from ._demo import create_app

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = "-"
    logging.getLogger("trio_stream").info("demo on http://%s:%d/ (hypercorn, trio)", host, port)
    trio.run(serve, create_app(), config)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``trio-stream`` console script."""
    parser = argparse.ArgumentParser(
        prog="trio-stream",
        description="Streaming assistant responses with structured concurrency, on Trio.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="serve the demo app with hypercorn on trio")
    demo.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    args = parser.parse_args(argv)
    logger = logging.getLogger("trio_stream")
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.StreamHandler())
    with contextlib.suppress(KeyboardInterrupt):
        _serve_demo(args.host, args.port)
