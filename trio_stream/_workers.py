"""Several worker processes on one listening socket, kept alive by a parent.

``trio-stream serve --workers N`` runs N processes that each serve the app
exactly as a single ``trio-stream serve`` does (the graceful shutdown
cut-off, the garbage collector's thresholds, the lifespan guard, the access
log), under a parent that serves nothing itself. Decisions, and why:

One socket, bound by the parent and inherited by every worker. The workers
take connections from one accept queue, so a connection waits for whichever
worker is free to accept it first; a worker busy with its streams accepts
fewer. The queue belongs to the parent's socket, so connections that arrive
while a worker is being replaced, or are queued when one dies, are served by
the others instead of being reset. The alternative, a socket of one's own per
worker with ``SO_REUSEPORT``, lets the kernel spread connections by a hash of
their addresses, blind to how busy each worker is, resets the connections
queued on a worker that dies, and cannot share a port picked by the kernel
(port 0). uvicorn, gunicorn and hypercorn's own ``--workers`` share one socket
too.

A worker is a fresh ``python -m trio_stream serve`` process (not a fork:
Trio and threads do not survive one), given the listening socket and one end
of a socket pair, the *lifeline*, by file descriptor. It imports the app
itself, so the parent never runs the app's code. Its environment names its
slot, 1 to N, as ``TRIO_STREAM_WORKER`` (``WORKER_ENV``), and a replacement
takes the slot of the worker it replaces: what a worker must have of its own
and keep across replacements (a port to serve its metrics on, an instance
name in its telemetry) can be derived from it. Over the lifeline the worker
says when it serves; the parent stops a worker by shutting its side of the
lifeline, and when the parent dies, however it dies, the kernel closes it.
Either way the worker reads end-of-file and shuts down gracefully, so no
worker outlives its parent by more than the graceful timeout.

SIGTERM or SIGINT to the parent stops every worker that way and waits for
each, up to the graceful timeout and a margin for the interpreter to exit,
then kills those left; a second signal kills them at once. Workers also shut
down gracefully on a SIGTERM or SIGINT of their own, which they get when a
service manager signals the whole group or Ctrl+C reaches the terminal's
process group; once shutting down they ignore further ones, so the copy the
parent's stop adds changes nothing.

A worker lost while serving is replaced, and the loss is logged with its exit
status. Losses in quick succession are replaced after a pause that doubles
each time, so a crash loop does not spin. A worker that exits before it
serves, before any worker has served, means the app cannot start: the parent
stops and exits with status 1, as it does when one worker fails to start
``MAX_FAILED_STARTS`` times in a row.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import trio
from hypercorn.config import Config
from starlette.types import ASGIApp

from ._server import serve
from ._telemetry import log_extra

__all__ = ["MAX_FAILED_STARTS", "WORKER_ENV", "Supervisor", "listen", "serve_as_worker"]

logger = logging.getLogger("trio_stream")

WORKER_ENV = "TRIO_STREAM_WORKER"
"""The environment variable that gives a worker its slot number, 1 to N."""

MAX_FAILED_STARTS = 5
"""Times in a row a worker may exit before serving before the parent gives up."""

_FIRST_DELAY = 0.1
"""Seconds before a lost worker is replaced; doubled for each quick loss in a row."""

_MAX_DELAY = 10.0
"""The longest pause before a replacement."""

_STEADY = 10.0
"""A worker that lived this many seconds was not part of a crash loop."""

_EXIT_MARGIN = 2.0
"""Seconds past the graceful timeout a stopping worker gets to exit before it is killed."""

_READY = b"r"
"""What a worker writes on its lifeline once it serves."""


def listen(config: Config) -> socket.socket:
    """The listening socket for ``config.bind`` (one plain TCP address), as hypercorn binds it."""
    [listener] = config.create_sockets().insecure_sockets
    listener.listen(config.backlog)
    return listener


def describe_exit(returncode: int) -> str:
    """A process's exit status in words: ``exited with status 1``, ``killed by SIGKILL``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


@dataclass
class _Worker:
    """One worker process and the parent's end of its lifeline."""

    number: int
    process: trio.Process
    lifeline: trio.socket.SocketType
    served: bool = False

    @property
    def name(self) -> str:
        return f"worker {self.number} (pid {self.process.pid})"

    def fields(self) -> dict[str, object]:
        """The ``extra`` of a line about this worker: its number, pid and, once exited,
        its exit status (negative: the signal that killed it, as ``Popen.returncode``)."""
        return log_extra(
            worker=self.number, pid=self.process.pid, returncode=self.process.returncode
        )


class Supervisor:
    """Starts ``workers`` processes on ``listener``, replaces the lost, stops them all on a signal.

    ``command(lifeline_fd)`` is a worker's command line; the worker inherits
    ``listener`` and its lifeline under the same descriptor numbers.
    ``run()`` returns the parent's exit status.
    """

    def __init__(
        self,
        command: Callable[[int], Sequence[str]],
        *,
        workers: int,
        listener: socket.socket,
        graceful_timeout: float,
    ) -> None:
        self.command = command
        self.workers = workers
        self.listener = listener
        self.graceful_timeout = graceful_timeout
        self.exit_status = 0
        self._stopping = trio.Event()
        self._running: dict[int, _Worker] = {}
        self._anyone_served = False
        self._nursery: trio.Nursery | None = None

    async def run(self) -> int:
        """Keep the workers until a signal or giving up; then stop them and return the status."""
        async with trio.open_nursery() as outer:
            self._nursery = outer
            outer.start_soon(self._stop_on_signals)
            async with trio.open_nursery() as slots:
                for number in range(1, self.workers + 1):
                    slots.start_soon(self._keep, number)
            outer.cancel_scope.cancel()
        self.listener.close()
        return self.exit_status

    async def _keep(self, number: int) -> None:
        """Run worker ``number``, and replace it each time it is lost, until the stop."""
        quick_losses = failed_starts = 0
        while not self._stopping.is_set():
            started_at = trio.current_time()
            worker, returncode = await self._run_worker(number)
            if self._stopping.is_set():
                logger.info(
                    "%s stopped: %s", worker.name, describe_exit(returncode), extra=worker.fields()
                )
                return
            failed_starts = 0 if worker.served else failed_starts + 1
            if not worker.served and (
                not self._anyone_served or failed_starts >= MAX_FAILED_STARTS
            ):
                self._give_up(worker, returncode, failed_starts)
                return
            steady = trio.current_time() - started_at >= _STEADY
            quick_losses = 0 if steady else quick_losses + 1
            delay = min(_FIRST_DELAY * 2 ** max(quick_losses - 1, 0), _MAX_DELAY)
            logger.warning(
                "%s lost: %s%s; starting another in %g s",
                worker.name,
                describe_exit(returncode),
                "" if worker.served else " before serving",
                delay,
                extra=worker.fields(),
            )
            with trio.move_on_after(delay):
                await self._stopping.wait()

    async def _run_worker(self, number: int) -> tuple[_Worker, int]:
        """Start worker ``number`` and wait until it exits; it and its exit status."""
        ours, theirs = socket.socketpair()
        with theirs:
            process = await trio.lowlevel.open_process(
                self.command(theirs.fileno()),
                pass_fds=(self.listener.fileno(), theirs.fileno()),
                env={**os.environ, WORKER_ENV: str(number)},
            )
        worker = _Worker(number, process, trio.socket.from_stdlib_socket(ours))
        self._running[number] = worker
        if self._stopping.is_set():  # the stop came while it started
            worker.lifeline.shutdown(socket.SHUT_WR)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._note_when_serving, worker)
                await process.wait()
                nursery.cancel_scope.cancel()
        finally:
            del self._running[number]
            worker.lifeline.close()
        returncode = await process.wait()
        return worker, returncode

    async def _note_when_serving(self, worker: _Worker) -> None:
        if await worker.lifeline.recv(1) == _READY:
            worker.served = self._anyone_served = True
            logger.info("%s serving", worker.name, extra=worker.fields())

    def _give_up(self, worker: _Worker, returncode: int, failed_starts: int) -> None:
        if self._anyone_served:
            why = f"failed to start {failed_starts} times in a row"
        else:
            why = "exited before serving: the app does not start"
        logger.error(
            "%s %s (%s); stopping the other workers",
            worker.name,
            why,
            describe_exit(returncode),
            extra=worker.fields(),
        )
        self.exit_status = 1
        self._stop()

    def _stop(self) -> None:
        """Ask every worker to shut down gracefully, start none any more, kill the overdue."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for worker in self._running.values():
            _shut(worker.lifeline)
        assert self._nursery is not None
        self._nursery.start_soon(self._kill_when_overdue)

    async def _stop_on_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                name = signal.Signals(signum).name
                if self._stopping.is_set():
                    logger.warning("%s again: killing the workers", name, extra=log_extra())
                    self._kill_all()
                    continue
                logger.info(
                    "%s: stopping %d workers; open responses get %g s",
                    name,
                    len(self._running),
                    self.graceful_timeout,
                    extra=log_extra(),
                )
                self._stop()

    async def _kill_when_overdue(self) -> None:
        await trio.sleep(self.graceful_timeout + _EXIT_MARGIN)
        for worker in self._running.values():
            logger.warning(
                "%s still running %g s after the stop: killed",
                worker.name,
                self.graceful_timeout + _EXIT_MARGIN,
                extra=worker.fields(),
            )
        self._kill_all()

    def _kill_all(self) -> None:
        for worker in self._running.values():
            if worker.process.returncode is None:
                worker.process.kill()


def _shut(lifeline: trio.socket.SocketType) -> None:
    """Shut the parent's side of a lifeline: the worker reads end-of-file."""
    with contextlib.suppress(OSError):  # the worker has gone already
        lifeline.shutdown(socket.SHUT_WR)


async def serve_as_worker(
    app: ASGIApp, *, config: Config, listener_fd: int, lifeline_fd: int
) -> None:
    """Serve ``app`` on the inherited ``listener_fd`` until the parent says stop, or is gone.

    A SIGTERM or SIGINT of the worker's own starts the graceful shutdown too,
    even one that comes while the app starts; later ones are ignored, so that
    the one the parent's stop adds, or the second of a service manager's, does
    not kill the worker mid-shutdown.
    """
    config.bind = [f"fd://{listener_fd}"]
    lifeline = trio.socket.from_stdlib_socket(socket.socket(fileno=lifeline_fd))
    stop = trio.Event()
    # What the receiver restores when it closes, and redelivers then to itself.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with lifeline, trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_signals, signals, stop)
            nursery.start_soon(_stop_at_end_of_file, lifeline, stop)
            await nursery.start(_serve_until, app, config, stop, nursery.cancel_scope)
            with contextlib.suppress(OSError):  # the parent is gone: the lifeline ends too
                await lifeline.send(_READY)


async def _serve_until(
    app: ASGIApp,
    config: Config,
    stop: trio.Event,
    watchers: trio.CancelScope,
    task_status: trio.TaskStatus[list[str]],
) -> None:
    """``serve`` until ``stop`` is set, then end the watchers of signals and lifeline."""
    await serve(app, config=config, shutdown_trigger=stop.wait, task_status=task_status)
    watchers.cancel()


async def _stop_on_signals(signals: AsyncIterator[int], stop: trio.Event) -> None:
    async for _ in signals:
        stop.set()  # and go on receiving, so that the ones after it do nothing


async def _stop_at_end_of_file(lifeline: trio.socket.SocketType, stop: trio.Event) -> None:
    with contextlib.suppress(OSError):  # reset: the parent is gone all the same
        while await lifeline.recv(64):
            pass
    stop.set()
