"""Several workers sharing Redis, and what their clients see when something fails.

Each test runs two workers (``trio-stream serve tests.resumable.app:app``, real
processes) on one Redis, a client that starts a run on worker A and another
that follows the same stream live on worker B, then breaks something: a
worker killed or shut down, the network between worker A and Redis cut
(through a proxy only A goes through), a Redis primary failed over. These
are the rows of the failure table in ``docs/multi-host.md``.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from trio_stream.resumable import STREAM_ID_HEADER

from ..serving import server_process
from .client import resume
from .proxy import Proxy, proxy_to
from .redis_server import RedisSentinel, RedisServer, redis_sentinel

PRODUCER_STOPPED = '3:"the stream was interrupted: the server producing it stopped"'
SHUT_DOWN = '3:"the stream was interrupted: the server producing it shut down"'
STORE_LOST = '3:"the stream was interrupted: its store is unavailable"'


class Live:
    """A client reading one response to its end, in a thread: its bytes, when it ended,
    and whether its connection broke before the end of the body."""

    def __init__(self, method: str, url: str) -> None:
        self.body = b""
        self.stream_id = ""
        self.broken = False
        self.ended_at = 0.0
        self.started = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(method, url))
        self._thread.start()
        assert self.started.wait(30)

    def _read(self, method: str, url: str) -> None:
        try:
            with httpx.stream(method, url, timeout=60) as response:
                self.stream_id = response.headers[STREAM_ID_HEADER]
                for piece in response.iter_raw():
                    self.body += piece
                    self.started.set()
        except httpx.HTTPError:
            self.broken = True
        finally:
            self.ended_at = time.monotonic()
            self.started.set()

    def wait(self) -> Live:
        self._thread.join(60)
        assert not self._thread.is_alive()
        return self

    @property
    def last_line(self) -> str:
        return self.body.decode().rstrip("\n").rsplit("\n", 1)[-1]


@contextlib.contextmanager
def workers(
    tmp_path: Path, a: dict[str, str], b: dict[str, str], **shared: str
) -> Iterator[tuple[tuple[str, subprocess.Popen[bytes]], str]]:
    """Worker A (its URL and process) and worker B (its URL), with the environment each
    is given and what both are (their streams under one key prefix)."""
    common = {"TEST_REDIS_PREFIX": f"hosts-{secrets.token_hex(4)}:", "TEST_PACE": "0.5", **shared}
    arguments = ("serve", "tests.resumable.app:app", "--graceful-timeout", "1")
    with (
        server_process(tmp_path / "a.log", *arguments, env={**common, **a}) as worker_a,
        server_process(tmp_path / "b.log", *arguments, env={**common, **b}) as (url_b, _),
    ):
        yield worker_a, url_b


def started_and_followed(a: str, b: str) -> tuple[Live, Live]:
    """A client starting a run (about three seconds long) on A, and another following its
    stream live on B."""
    starter = Live("POST", f"{a}/start/data-stream")
    follower = Live("GET", f"{b}/streams/{starter.stream_id}?offset=0")
    return starter, follower


def test_a_worker_killed_mid_run_ends_its_streams_with_an_error_everywhere(
    redis: RedisServer, tmp_path: Path
) -> None:
    """SIGKILL (a crash, the OOM killer, a host lost): its runs stop renewing their
    lease, and every reader of them, on any worker, ends with an error chunk within
    the lease and two looks (here: a 1 s lease)."""
    with workers(tmp_path, {}, {}, TEST_REDIS_URL=redis.url, TEST_REDIS_LEASE="1") as (a, b):
        (url_a, process_a), url_b = a, b
        starter, follower = started_and_followed(url_a, url_b)
        time.sleep(1)
        process_a.kill()
        killed = time.monotonic()
        follower.wait()
        assert follower.last_line == PRODUCER_STOPPED
        assert not follower.broken
        assert follower.ended_at - killed < 5  # 1 + 2 * 0.33 s, and the time to say it
        # The starter's connection broke with its worker; it resumes on B.
        assert starter.wait().broken
        rest = resume(url_b, starter.stream_id, len(starter.body))
        assert starter.body + rest.content == follower.body


def test_a_worker_shut_down_mid_run_ends_its_streams_with_an_error_everywhere(
    redis: RedisServer, tmp_path: Path
) -> None:
    """SIGTERM (a deploy): the worker stops its runs at its graceful timeout's cut-off,
    storing an error chunk and the format's end, which every reader gets at once."""
    with workers(tmp_path, {}, {}, TEST_REDIS_URL=redis.url) as (a, b):
        (url_a, process_a), url_b = a, b
        starter, follower = started_and_followed(url_a, url_b)
        time.sleep(1)
        process_a.send_signal(signal.SIGTERM)
        follower.wait()
        starter.wait()
        assert follower.last_line == starter.last_line == SHUT_DOWN
        assert follower.body == starter.body
        assert not starter.broken
        assert not follower.broken


def test_a_partition_shorter_than_the_failover_timeout_goes_unnoticed(
    redis: RedisServer, tmp_path: Path
) -> None:
    """Worker A loses Redis for a second and a half: its producer and its reader ride it
    out (a failover timeout of 5 s), and both clients get the whole run, with no gap,
    no duplicate and no error."""
    with proxy_to(redis.port) as proxy, partitioned(proxy, tmp_path, "5") as (a, b):
        (url_a, _), url_b = a, b
        starter, follower = started_and_followed(url_a, url_b)
        time.sleep(1)
        proxy.cut()
        time.sleep(1.5)
        proxy.heal()
        starter.wait()
        follower.wait()
        assert b"Done. " in starter.body
        assert starter.body == follower.body == resume(url_b, starter.stream_id).content
        assert not starter.broken
        assert not follower.broken


def test_a_partition_longer_than_the_lease_ends_the_stream_with_an_error_everywhere(
    redis: RedisServer, tmp_path: Path
) -> None:
    """Worker A loses Redis for good: its client ends with "store unavailable" once the
    failover timeout (1 s) is over; readers elsewhere see the run's lease (1 s) run out,
    and end with "the server producing it stopped"."""
    with proxy_to(redis.port) as proxy, partitioned(proxy, tmp_path, "1", lease="1") as (a, b):
        (url_a, _), url_b = a, b
        starter, follower = started_and_followed(url_a, url_b)
        time.sleep(1)
        proxy.cut()
        starter.wait()
        follower.wait()
        assert starter.last_line == STORE_LOST
        assert follower.last_line == PRODUCER_STOPPED
        assert not starter.broken
        assert not follower.broken
        # Every byte the run stored reached both, once.
        stored = resume(url_b, starter.stream_id).content
        assert starter.body.startswith(stored.rsplit(b"\n3:", 1)[0])
        assert follower.body == stored


@contextlib.contextmanager
def partitioned(
    proxy: Proxy, tmp_path: Path, failover_timeout: str, lease: str = "15"
) -> Iterator[tuple[tuple[str, subprocess.Popen[bytes]], str]]:
    """Worker A reaching Redis through ``proxy``, worker B directly."""
    target = f"redis://127.0.0.1:{proxy.target[1]}/0"
    shared = {
        "TEST_REDIS_FAILOVER_TIMEOUT": failover_timeout,
        "TEST_REDIS_LEASE": lease,
        "TEST_REDIS_TIMEOUT": "1",
    }
    with workers(
        tmp_path, {"TEST_REDIS_URL": proxy.url}, {"TEST_REDIS_URL": target}, **shared
    ) as both:
        yield both


@pytest.fixture
def failing_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinel]:
    with redis_sentinel(tmp_path_factory.mktemp("hosts-sentinel")) as sentinel:
        yield sentinel


def test_a_redis_failover_mid_run_goes_unnoticed(
    failing_sentinel: RedisSentinel, tmp_path: Path
) -> None:
    """The Redis primary is killed while both workers stream through Sentinel: its
    replica is promoted (about two seconds here), the producer and the readers ride
    the failover out, and both clients get the whole run once, with no error."""
    environment = {
        "TEST_REDIS_SENTINELS": ",".join(failing_sentinel.addresses),
        "TEST_REDIS_SERVICE": failing_sentinel.service,
    }
    with workers(tmp_path, {}, {}, **environment) as ((url_a, _), url_b):
        starter, follower = started_and_followed(url_a, url_b)
        time.sleep(1)
        primary = failing_sentinel.primary()
        primary.stop()
        starter.wait()
        follower.wait()
        assert failing_sentinel.primary() is not primary
        assert b"Done. " in starter.body
        assert starter.body == follower.body == resume(url_b, starter.stream_id).content
        assert not starter.broken
        assert not follower.broken
