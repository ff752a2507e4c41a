"""The ``trio-stream`` command line: the demo, and any ASGI app, on hypercorn with Trio."""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import trio
from hypercorn.config import Config
from starlette.types import ASGIApp

from ._server import default_config, serve
from ._telemetry import log_extra
from ._workers import Supervisor, listen, serve_as_worker

logger = logging.getLogger("trio_stream")

GC_THRESHOLDS = (50_000, 20, 10)
"""The cyclic garbage collector's thresholds in a ``trio-stream`` process.

Python's defaults (2,000 or 700 allocations between young collections, a
full one every 100 of those) suit short scripts. A worker holding 2,000
streams has some 20,000 tasks and a million and a half objects, and each
full collection walks all of them: the loop stood still for 0.6 to 1 s at a
time, and collecting took 55 % of the worker's CPU. With these thresholds the
same load (tests/reliability/test_load.py) spent 1.3 s collecting instead of
9.4, and the p99 of a delta's delivery went from 947 ms to 392 and 511 ms in
two runs. The cost is a few megabytes more of garbage waiting between
collections. They are set before the app's module is imported: an app that
calls ``gc.set_threshold`` as it is imported keeps its own.
"""


KEEP_ALIVE_TIMEOUT = 5.0
"""Seconds an idle connection is kept between requests: hypercorn's own default.

A proxy or load balancer that keeps its connections to the server open
between requests (nginx's upstream ``keepalive``, cloud load balancers) may
send a request on one at the moment the server closes it, and answers its
client 502. It does not happen if the server waits longer than the proxy:
``--keep-alive-timeout`` is for that.
"""


def _load(target: str) -> ASGIApp:
    """The object named by ``module:attribute``."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"trio-stream serve: expected module:attribute, not {target!r}")
    sys.path.insert(0, ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"trio-stream serve: cannot import {module_name!r}: {exc}") from exc
    app = module
    for name in attribute.split("."):
        try:
            app = getattr(app, name)
        except AttributeError:
            raise SystemExit(f"trio-stream serve: {module_name!r} has no {attribute!r}") from None
    if not callable(app):
        raise SystemExit(f"trio-stream serve: {target!r} is not an ASGI app")
    return app


def _config(args: argparse.Namespace) -> Config:
    """hypercorn's configuration, as the command line sets it."""
    config = default_config()
    config.accesslog = "-" if args.access_log else None
    config.graceful_timeout = args.graceful_timeout
    config.keep_alive_timeout = args.keep_alive_timeout
    return config


def _run(serving: Callable[..., Awaitable[None]], config: Config) -> None:
    """``serving(config=...)`` on Trio, in this process: the server, or one of its workers."""
    # SIGINT and SIGTERM start a graceful shutdown; a second SIGINT stops at once.
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(partial(serving, config=config))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-stream",
        description="Streaming assistant responses with structured concurrency, on Trio.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="serve the demo app with hypercorn on trio")
    serve_app = commands.add_parser("serve", help="serve an ASGI app with hypercorn on trio")
    serve_app.add_argument("app", metavar="module:app", help="the app to serve, e.g. main:app")
    for command in (demo, serve_app):
        command.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
        command.add_argument("--port", type=int, default=8000, help="port (default 8000)")
        command.add_argument(
            "--graceful-timeout",
            type=float,
            default=3.0,
            metavar="SECONDS",
            help="on SIGTERM or SIGINT, how long open responses get to end; streams still "
            "running one second before that end with an error chunk (default 3)",
        )
        command.add_argument(
            "--keep-alive-timeout",
            type=float,
            default=KEEP_ALIVE_TIMEOUT,
            metavar="SECONDS",
            help="how long a connection may stay idle between requests before the server "
            "closes it; behind a proxy or load balancer that keeps connections to the server, "
            "set it above that proxy's idle timeout (default %(default)g)",
        )
        command.add_argument(
            "--access-log",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="a line per request on standard output (default: on)",
        )
    serve_app.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="serve with N worker processes sharing the port, under a parent that replaces "
        "a worker lost and stops them all on SIGTERM or SIGINT (default: this process serves)",
    )
    # Set by the parent of --workers on each worker's command line: the listening
    # socket's and the lifeline's file descriptors.
    serve_app.add_argument("--worker-fds", help=argparse.SUPPRESS)
    demo.add_argument(
        "--format",
        choices=("data-stream", "assistant-transport", "ui-message-stream"),
        default="data-stream",
        help="the wire format the page starts with (default data-stream)",
    )
    demo.add_argument(
        "--remote",
        action="store_true",
        help="agents of agents: the page's agent asks two specialist agents that the demo "
        "runs in processes of its own (one of them uses an MCP server's tools), and Stop "
        "cancels the runs in every process; needs the mcp extra (uv run --extra mcp)",
    )
    demo.add_argument(
        "--pace",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="scales the scripted agents' pauses: 1 is a pace a person can follow, "
        "0.1 ten times faster (default 1)",
    )
    return parser


def _demo(args: argparse.Namespace) -> Callable[..., Awaitable[None]]:
    """What ``trio-stream demo`` serves, as a function of the configuration."""
    if args.remote:
        if importlib.util.find_spec("mcp") is None:
            raise SystemExit(
                "trio-stream demo --remote needs the mcp SDK: run it with "
                "`uv run --extra mcp trio-stream demo --remote`, or pip install 'trio-stream[mcp]'"
            )
        from .demo._orchestrator import serve_with_specialists

        if os.environ.get("OPENAI_BASE_URL"):
            logger.warning(
                "demo --remote: the orchestrator is scripted; OPENAI_BASE_URL is unused",
                extra=log_extra(),
            )
        logger.info(
            "demo on http://%s:%d/ (hypercorn, trio; model: orchestrator, starting its "
            "specialists)",
            args.host,
            args.port,
            extra=log_extra(url=f"http://{args.host}:{args.port}/"),
        )
        return partial(
            serve_with_specialists,
            host=args.host,
            port=args.port,
            format=args.format,
            pace=args.pace,
        )
    from .demo import create_app
    from .demo._model import agent_from_environment

    agent = agent_from_environment(pace=args.pace)
    logger.info(
        "demo on http://%s:%d/ (hypercorn, trio; model: %s)",
        args.host,
        args.port,
        agent.name,
        extra=log_extra(url=f"http://{args.host}:{args.port}/"),
    )
    app = create_app(format=args.format, agent=agent)
    return partial(serve, app, host=args.host, port=args.port)


def _supervise(args: argparse.Namespace) -> int:
    """``serve --workers N``: bind the port, then start and keep the workers; the exit status."""
    config = _config(args)
    config.bind = [f"{args.host}:{args.port}"]
    try:
        listener = listen(config)
    except OSError as exc:
        raise SystemExit(
            f"trio-stream serve: cannot listen on {args.host}:{args.port}: {exc}"
        ) from None
    host, port = listener.getsockname()[:2]
    logger.info(
        "serving %s on http://%s:%d with %d workers (parent pid %d)",
        args.app,
        f"[{host}]" if ":" in host else host,
        port,
        args.workers,
        os.getpid(),
        extra=log_extra(url=f"http://{host}:{port}", pid=os.getpid()),
    )

    def worker_command(lifeline_fd: int) -> list[str]:
        return [
            *(sys.executable, "-m", "trio_stream", "serve", args.app),
            *("--graceful-timeout", repr(args.graceful_timeout)),
            *("--keep-alive-timeout", repr(args.keep_alive_timeout)),
            "--access-log" if args.access_log else "--no-access-log",
            *("--worker-fds", f"{listener.fileno()},{lifeline_fd}"),
        ]

    supervisor = Supervisor(
        worker_command,
        workers=args.workers,
        listener=listener,
        graceful_timeout=args.graceful_timeout,
    )
    return trio.run(supervisor.run)


def _serve_worker(args: argparse.Namespace) -> Callable[..., Awaitable[None]]:
    """What one worker of ``serve --workers N`` serves, on the parent's socket."""
    # Ctrl+C reaches the worker with its parent; until it serves, the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    listener_fd, _, lifeline_fd = args.worker_fds.partition(",")
    return partial(
        serve_as_worker,
        _load(args.app),
        listener_fd=int(listener_fd),
        lifeline_fd=int(lifeline_fd),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``trio-stream`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.graceful_timeout >= 0:
        parser.error(f"--graceful-timeout must not be negative, not {args.graceful_timeout}")
    if not args.keep_alive_timeout > 0:
        parser.error(f"--keep-alive-timeout must be positive, not {args.keep_alive_timeout}")
    if args.command == "demo" and not args.pace >= 0:
        parser.error(f"--pace must not be negative, not {args.pace}")
    if args.command == "serve" and args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be at least 1, not {args.workers}")
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.StreamHandler())
    # Before the app is imported, so that an app that sets thresholds of its own keeps them.
    gc.set_threshold(*GC_THRESHOLDS)
    if args.command == "demo":
        serving = _demo(args)
    elif args.worker_fds:
        serving = _serve_worker(args)
    elif args.workers is not None:
        with contextlib.suppress(KeyboardInterrupt):
            raise SystemExit(_supervise(args))
        return
    else:
        serving = partial(serve, _load(args.app), host=args.host, port=args.port)
    _run(serving, _config(args))
