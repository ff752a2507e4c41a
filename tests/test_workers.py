"""``trio-stream serve --workers N``: real processes sharing one port, over real HTTP.

Each test starts the command on ``tests/workers_app.py``, whose answers
name the worker process that gave them, and reads the log the parent and
its workers share.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import httpx
import pytest
import trio

from trio_stream._cli import GC_THRESHOLDS
from trio_stream._server import default_config
from trio_stream._shutdown import SHUTDOWN_MESSAGE
from trio_stream._workers import Supervisor, listen

from .serving import ROOT, descendants, server_process, still_running

APP = "tests.workers_app:app"
GRACEFUL_TIMEOUT = 2.0
EXIT_MARGIN = 2.0  # what the parent adds to the graceful timeout before it kills
CUT_SHORT = b'\n3:"' + SHUTDOWN_MESSAGE.encode() + b'"\n'
FINISHED = b'0:" finished"\n'
FINISH_STOP = b'd:{"finishReason":"stop"'
SHORT_SECONDS = 0.4  # well before the cut-off, one second before the graceful timeout


def workers(*options: str) -> tuple[str, ...]:
    return ("serve", APP, "--workers", "2", "--graceful-timeout", str(GRACEFUL_TIMEOUT), *options)


def serving_pids(log_path: Path, count: int, *, timeout: float = 30) -> list[int]:
    """The pids of the first ``count`` workers the parent logged as serving, in order."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [
            int(pid)
            for pid in re.findall(r"worker \d \(pid (\d+)\) serving", log_path.read_text())
        ]
        if len(pids) >= count:
            return pids[:count]
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.05)


HOLD_SECONDS = 1.0


@contextlib.asynccontextmanager
async def holding_a_worker(url: str) -> AsyncIterator[int]:
    """Block one worker's event loop (whichever takes the request) while the block runs.

    The kernel hands a connection on the shared socket to whichever worker
    accepts it first, and a worker that is already awake tends to win every
    race: ten connections made together can all land on one worker, and so
    can a hundred. A worker whose loop is blocked accepts nothing, so the
    connections made inside the block go to the others. Yields the held
    worker's pid; the block should take well under ``HOLD_SECONDS``.
    """
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        client.stream("GET", "/hold", params={"seconds": HOLD_SECONDS}) as response,
    ):
        pieces = response.aiter_raw()
        first = await anext(pieces)
        yield int(first.split(b"\n")[0])
        async for _ in pieces:
            pass


def answers_by_pid(url: str, path: str, wanted: set[int]) -> dict[int, bytes]:
    """One answer to ``GET path`` from each of the ``wanted`` workers.

    Requests go ten at a time, each on a connection of its own, as clients
    arriving together do; after the first round, each round holds a worker
    (``holding_a_worker``) so that the next answers come from another.
    """
    answers: dict[int, bytes] = {}

    async def one() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            body = (await client.get(path)).content
        pid = json.loads(body)["pid"] if path in {"/gc", "/slot"} else int(body)
        answers.setdefault(pid, body)

    async def round_of_ten() -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(one)

    async def main() -> None:
        await round_of_ten()
        for _ in range(20):
            if wanted <= answers.keys():
                return
            async with holding_a_worker(url):
                await round_of_ten()

    trio.run(main)
    assert wanted <= answers.keys(), f"only {sorted(answers)} answered"
    return answers


class Stream:
    """One ``POST /stream`` read to its end: the worker that serves it, the body, the end."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.pid = 0
        self.body = b""
        self.started = trio.Event()
        self.ended = trio.Event()
        self.ended_at = 0.0
        self.error: httpx.HTTPError | None = None

    async def read(self, url: str) -> None:
        try:
            async with (
                httpx.AsyncClient(base_url=url, timeout=30) as client,
                client.stream("POST", "/stream", params={"seconds": self.seconds}) as response,
            ):
                async for piece in response.aiter_raw():
                    self.body += piece
                    if not self.started.is_set() and (
                        found := re.search(rb'pid (\d+)"', self.body)
                    ):
                        self.pid = int(found[1])
                        self.started.set()
        except httpx.HTTPError as exc:
            self.error = exc
        self.ended_at = time.monotonic()
        self.started.set()
        self.ended.set()


async def open_streams_on_each(
    nursery: trio.Nursery, url: str, pids: list[int], at_least: int
) -> list[Stream]:
    """Streams of a minute, opened ten at a time until each worker serves ``at_least``.

    Each batch after the first is opened while a worker is held
    (``holding_a_worker``), so that it goes to another.
    """
    streams: list[Stream] = []
    on: Counter[int] = Counter()

    async def open_batch() -> None:
        batch = [Stream(60) for _ in range(10)]
        for stream in batch:
            nursery.start_soon(stream.read, url)
        with trio.fail_after(10):
            for stream in batch:
                await stream.started.wait()
        streams.extend(batch)
        on.update(stream.pid for stream in batch)

    await open_batch()
    while len(streams) < 100:
        if all(on[pid] >= at_least for pid in pids):
            return streams
        async with holding_a_worker(url):
            await open_batch()
    raise AssertionError(f"streams by worker: {on}")


def test_the_workers_share_the_port_each_with_the_gc_thresholds(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with server_process(log_path, *workers()) as (url, parent):
        pids = serving_pids(log_path, 2)
        assert set(pids) == descendants(parent.pid)  # the workers, and nothing else
        answers = answers_by_pid(url, "/gc", set(pids))
    for answer in answers.values():
        assert json.loads(answer)["thresholds"] == list(GC_THRESHOLDS)
    # The app ignores lifespan: without the guard, no worker would have started.
    assert "lifespan" not in log_path.read_text().lower()


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(("serve", APP), id="one process"),
        pytest.param(workers(), id="workers"),
    ],
)
def test_an_app_that_sets_its_own_gc_thresholds_keeps_them(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    env = {"WORKERS_APP_GC": "100000,50,100"}
    with server_process(tmp_path / "server.log", *options, env=env) as (url, parent):
        pids = serving_pids(tmp_path / "server.log", 2) if "--workers" in options else [parent.pid]
        answers = answers_by_pid(url, "/gc", set(pids))
    for answer in answers.values():
        assert json.loads(answer)["thresholds"] == [100_000, 50, 100]


def test_sigterm_to_the_parent_drains_every_worker(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with server_process(log_path, *workers()) as (url, parent):
        pids = serving_pids(log_path, 2)

        async def main() -> tuple[list[Stream], list[Stream], float]:
            async with trio.open_nursery() as nursery:
                streams = await open_streams_on_each(nursery, url, pids, at_least=3)
                # Streams that end by themselves before the cut-off, 1 s after the signal.
                short = [Stream(SHORT_SECONDS) for _ in range(6)]
                for stream in short:
                    nursery.start_soon(stream.read, url)
                with trio.fail_after(10):
                    for stream in short:
                        await stream.started.wait()
                signalled_at = time.monotonic()
                parent.send_signal(signal.SIGTERM)
            return streams, short, signalled_at

        streams, short, signalled_at = trio.run(main)
        exit_status = parent.wait(timeout=GRACEFUL_TIMEOUT + EXIT_MARGIN + 5)
        exited_after = time.monotonic() - signalled_at
    log = log_path.read_text()

    assert exit_status == 0, log[-3000:]
    assert [stream.error for stream in streams + short if stream.error] == []
    assert all(stream.body.endswith(CUT_SHORT) for stream in streams)
    # The streams that ended in time are complete, with nothing of the shutdown in them.
    assert all(FINISHED + FINISH_STOP in stream.body for stream in short)
    assert all(stream.body.endswith(b"}\n") for stream in short)
    assert not any(SHUTDOWN_MESSAGE.encode() in stream.body for stream in short)
    assert max(stream.ended_at for stream in streams) - signalled_at < GRACEFUL_TIMEOUT
    assert exited_after < GRACEFUL_TIMEOUT + EXIT_MARGIN
    assert still_running(set(pids)) == set()
    on = Counter(stream.pid for stream in streams)
    on.update(stream.pid for stream in short)
    for pid in pids:
        # Cancelled, not abandoned: every run on every worker ran its clean-up.
        assert log.count(f"workers-app: run cleaned up (pid {pid})") == on[pid]
        assert re.search(rf"worker \d \(pid {pid}\) stopped: exited with status 0", log), log


def test_behind_a_middleware_that_copies_the_scope_streams_still_end_at_the_cut_off(
    tmp_path: Path,
) -> None:
    # hypercorn's ProxyFixMiddleware, which takes the client's address from
    # X-Forwarded-For behind a proxy, deep-copies each request's scope, and
    # with it the server's shutdown notice, which must stay the one shutdown.
    options = ("serve", "tests.workers_app:proxied_app", "--graceful-timeout", "2")
    with server_process(tmp_path / "server.log", *options) as (url, server):

        async def main() -> Stream:
            stream = Stream(60)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stream.read, url)
                with trio.fail_after(10):
                    await stream.started.wait()
                server.send_signal(signal.SIGTERM)
            return stream

        stream = trio.run(main)
        server.wait(timeout=10)
    assert stream.error is None
    assert stream.body.endswith(CUT_SHORT)


def test_a_worker_lost_is_replaced_and_the_loss_logged(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with server_process(log_path, *workers()) as (url, parent):
        first, second = serving_pids(log_path, 2)
        os.kill(first, signal.SIGKILL)
        *_, replacement = serving_pids(log_path, 3)
        assert descendants(parent.pid) == {second, replacement}
        answers_by_pid(url, "/pid", {replacement})
        assert parent.poll() is None
    log = log_path.read_text()
    assert re.search(
        rf"worker \d \(pid {first}\) lost: killed by SIGKILL; starting another in 0.1 s", log
    ), log


def test_each_worker_knows_its_slot_and_a_replacement_takes_the_lost_one_s(
    tmp_path: Path,
) -> None:
    log_path = tmp_path / "server.log"
    with server_process(log_path, *workers()) as (url, _):
        first, second = serving_pids(log_path, 2)
        slots = {
            pid: json.loads(answer)["slot"]
            for pid, answer in answers_by_pid(url, "/slot", {first, second}).items()
        }
        assert sorted(slots.values()) == ["1", "2"]
        os.kill(first, signal.SIGKILL)
        *_, replacement = serving_pids(log_path, 3)
        answer = answers_by_pid(url, "/slot", {replacement})[replacement]
    assert json.loads(answer)["slot"] == slots[first]


def test_a_worker_sent_sigterm_drains_and_is_replaced(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with server_process(log_path, *workers()) as (url, parent):
        pids = serving_pids(log_path, 2)

        async def main() -> list[Stream]:
            async with trio.open_nursery() as nursery:
                streams = await open_streams_on_each(nursery, url, pids, at_least=1)
                os.kill(pids[0], signal.SIGTERM)
                with trio.fail_after(GRACEFUL_TIMEOUT + 5):
                    for stream in streams:
                        if stream.pid == pids[0]:
                            await stream.ended.wait()
                nursery.cancel_scope.cancel()  # the other worker's streams go on
            return streams

        streams = trio.run(main)
        *_, replacement = serving_pids(log_path, 3)
        assert descendants(parent.pid) == {pids[1], replacement}
    drained = [stream for stream in streams if stream.pid == pids[0]]
    assert drained
    assert all(stream.body.endswith(CUT_SHORT) for stream in drained)
    assert re.search(rf"\(pid {pids[0]}\) lost: exited with status 0", log_path.read_text())


def test_the_workers_stop_when_the_parent_is_killed(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with server_process(log_path, *workers()) as (url, parent):
        pids = serving_pids(log_path, 2)

        async def main() -> list[Stream]:
            async with trio.open_nursery() as nursery:
                streams = await open_streams_on_each(nursery, url, pids, at_least=1)
                parent.kill()
            return streams

        streams = trio.run(main)
        deadline = time.monotonic() + GRACEFUL_TIMEOUT + EXIT_MARGIN
        while still_running(set(pids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert still_running(set(pids)) == set(), log_path.read_text()
    # Left by their parent, the workers shut down gracefully, as on SIGTERM.
    assert all(stream.body.endswith(CUT_SHORT) for stream in streams)


def test_a_worker_that_cannot_shut_down_is_killed_after_the_graceful_timeout(
    tmp_path: Path,
) -> None:
    log_path = tmp_path / "server.log"
    with server_process(log_path, *workers()) as (url, parent):
        pids = serving_pids(log_path, 2)
        with httpx.stream("GET", f"{url}/stuck", timeout=30) as response:
            stuck = next(response.iter_raw())
            signalled_at = time.monotonic()
            parent.send_signal(signal.SIGTERM)
            exit_status = parent.wait(timeout=GRACEFUL_TIMEOUT + EXIT_MARGIN + 5)
        exited_after = time.monotonic() - signalled_at
    log = log_path.read_text()
    assert stuck == b"stuck"
    assert exit_status == 0
    assert GRACEFUL_TIMEOUT + EXIT_MARGIN <= exited_after < GRACEFUL_TIMEOUT + EXIT_MARGIN + 2
    assert "still running 4 s after the stop: killed" in log
    assert log.count("stopped: killed by SIGKILL") == 1
    assert log.count("stopped: exited with status 0") == 1
    assert still_running(set(pids)) == set()


def test_a_second_signal_kills_the_workers_at_once(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with server_process(log_path, *workers()) as (url, parent):
        pids = serving_pids(log_path, 2)
        with httpx.stream("GET", f"{url}/stuck", timeout=30) as response:
            next(response.iter_raw())
            parent.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            signalled_again_at = time.monotonic()
            parent.send_signal(signal.SIGINT)
            exit_status = parent.wait(timeout=GRACEFUL_TIMEOUT + EXIT_MARGIN + 5)
        exited_after = time.monotonic() - signalled_again_at
    log = log_path.read_text()
    assert exit_status == 0
    assert exited_after < 1
    assert "SIGINT again: killing the workers" in log
    assert still_running(set(pids)) == set()


def test_an_app_that_cannot_be_imported_stops_the_parent_at_once() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "trio_stream", "serve", "no_such_module:app", "--workers", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot import 'no_such_module'" in result.stderr
    assert "exited before serving: the app does not start" in result.stderr
    assert time.monotonic() - started < 15


def test_a_worker_that_keeps_failing_to_start_stops_the_parent(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    flag = tmp_path / "fail"
    env = {"WORKERS_APP_FAIL_IF": str(flag)}
    with server_process(log_path, *workers(), env=env) as (_, parent):
        first, second = serving_pids(log_path, 2)
        flag.touch()  # from now on, a new worker fails as it imports the app
        os.kill(first, signal.SIGKILL)
        exit_status = parent.wait(timeout=60)
    log = log_path.read_text()
    assert exit_status == 1
    # A pause before each new attempt, doubling: a crash loop does not spin.
    delays = re.findall(r"lost: .*; starting another in ([\d.]+) s", log)
    assert delays == ["0.1", "0.2", "0.4", "0.8", "1.6"], log
    assert log.count("RuntimeError: workers-app:") == 5  # five tracebacks
    assert "failed to start 5 times in a row" in log
    assert still_running({first, second}) == set()


@pytest.mark.parametrize(
    ("options", "logged"),
    [
        pytest.param(workers(), True, id="workers, by default"),
        pytest.param(workers("--no-access-log"), False, id="workers, --no-access-log"),
        pytest.param(("serve", APP, "--no-access-log"), False, id="one process, --no-access-log"),
    ],
)
def test_the_access_log_is_on_unless_turned_off(
    tmp_path: Path, options: tuple[str, ...], logged: bool
) -> None:
    log_path = tmp_path / "server.log"
    with server_process(log_path, *options) as (url, parent):
        pids = serving_pids(log_path, 2) if "--workers" in options else [parent.pid]
        answers_by_pid(url, "/pid", set(pids))
    access_lines = re.findall(r'"GET /pid 1\.1" 200', log_path.read_text())
    assert bool(access_lines) is logged


def idle_until_closed(url: str, *, limit: float) -> float:
    """Seconds an HTTP/1.1 connection stays open after one answered request, up to ``limit``."""
    host, port = httpx.URL(url).host, httpx.URL(url).port
    assert port is not None
    with socket.create_connection((host, port), timeout=limit) as connection:
        connection.sendall(b"GET /pid HTTP/1.1\r\nhost: server\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = connection.recv(4096)
            assert piece, answer
            answer += piece
        assert answer.startswith(b"HTTP/1.1 200")
        answered_at = time.monotonic()
        with contextlib.suppress(TimeoutError):
            while connection.recv(4096):  # the rest of the body, then the server's close
                pass
        return time.monotonic() - answered_at


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(("serve", APP), id="one process"),
        pytest.param(workers(), id="workers"),
    ],
)
def test_the_keep_alive_timeout_closes_idle_connections_when_set(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    # hypercorn's default is 5 s: a connection closed within 3 s is the option's doing.
    with server_process(tmp_path / "server.log", *options, "--keep-alive-timeout", "0.5") as (
        url,
        _,
    ):
        idle = idle_until_closed(url, limit=3)
    assert 0.4 < idle < 2.5


class Logged(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def fields(self, containing: str) -> list[dict[str, object]]:
        """The ``trio_stream.*`` fields of the lines whose message contains ``containing``."""
        return [
            {k.removeprefix("trio_stream."): v for k, v in vars(r).items() if "trio_stream." in k}
            for r in self.records
            if containing in r.getMessage()
        ]


def test_the_parent_s_lines_name_the_worker_its_pid_and_its_exit_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the workers import tests.workers_app
    logged = Logged()
    library = logging.getLogger("trio_stream")
    monkeypatch.setattr(library, "level", logging.INFO)
    library.addHandler(logged)
    config = default_config()
    config.bind = ["127.0.0.1:0"]
    listener = listen(config)
    supervisor = Supervisor(
        lambda lifeline: [
            *(sys.executable, "-m", "trio_stream", "serve", APP, "--no-access-log"),
            *("--worker-fds", f"{listener.fileno()},{lifeline}"),
        ],
        workers=1,
        listener=listener,
        # Idle, the worker exits at once; the timeout only bounds a machine
        # so loaded that its interpreter takes seconds to exit.
        graceful_timeout=5,
    )

    async def serving(count: int) -> None:
        with trio.fail_after(30):
            while len(logged.fields("serving")) < count:  # noqa: ASYNC110 - the parent logs it
                await trio.sleep(0.02)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(supervisor.run)
            await serving(1)
            os.kill(cast(int, logged.fields("serving")[0]["pid"]), signal.SIGKILL)
            await serving(2)
            supervisor._stop()  # as SIGTERM to the parent does

    try:
        trio.run(main)
    finally:
        library.removeHandler(logged)
    first, replacement = (fields["pid"] for fields in logged.fields("serving"))
    assert logged.fields("serving") == [
        {"worker": 1, "pid": first},
        {"worker": 1, "pid": replacement},
    ]
    assert logged.fields("lost") == [{"worker": 1, "pid": first, "returncode": -signal.SIGKILL}]
    assert logged.fields("stopped") == [{"worker": 1, "pid": replacement, "returncode": 0}]
