"""When things break: the store unreachable or lost, a run that fails or grows too big,
a client that reads slower than the run writes."""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import httpx

from trio_stream.resumable import STREAM_ID_HEADER, MemoryStore, StreamStore

from ..serving import free_port, running, running_cli
from .app import app_for
from .redis_server import RedisServer, redis_server


def redis_store(url: str) -> StreamStore:
    """A store that rides out a Redis failover for one second only (15 by default)."""
    from trio_stream.resumable.redis import RedisStore

    return RedisStore(url, prefix=f"faults-{secrets.token_hex(4)}:", failover_timeout=1)


def test_a_store_that_cannot_be_reached_is_a_503_not_a_hang() -> None:
    unreachable = redis_store(f"redis://127.0.0.1:{free_port()}/0")
    with running(app_for(unreachable)) as url:
        started = time.monotonic()
        response = httpx.post(f"{url}/start/data-stream", timeout=30)
        assert time.monotonic() - started < 5
        assert response.status_code == 503
        assert response.json() == {"detail": "the stream store is unavailable; try again later"}
        for method in ("GET", "DELETE"):  # resume and cancel
            response = httpx.request(method, f"{url}/streams/some-stream-id", timeout=30)
            assert response.status_code == 503
            assert response.json() == {
                "detail": "the stream store is unavailable; try again later"
            }


def test_a_store_lost_mid_run_ends_the_live_client_with_an_error_chunk() -> None:
    with redis_server() as server, running(app_for(redis_store(server.url))) as url:
        received = b""
        with httpx.stream(
            "POST", f"{url}/start/data-stream", params={"pace": 1}, timeout=30
        ) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            received = next(lines).encode()
            server.stop()  # Redis dies while the run streams
            rest = list(lines)
        assert rest[-1] == '3:"the stream was interrupted: its store is unavailable"'
        assert received
        # The server stays up and says why it cannot start another run.
        assert httpx.post(f"{url}/start/data-stream", timeout=30).status_code == 503
        server.start()  # Redis is back: so is the service
        assert httpx.post(f"{url}/start/data-stream", timeout=30).status_code == 200


def test_a_failing_run_stores_its_error_chunk_and_a_clean_end() -> None:
    with running(app_for(MemoryStore())) as url:
        first = httpx.post(f"{url}/start/data-stream", params={"fail": "the model crashed"})
        assert first.text.splitlines() == ['0:"Starting… "', '3:"the model crashed"']
        stream_id = first.headers[STREAM_ID_HEADER]
        again = httpx.get(f"{url}/streams/{stream_id}", params={"offset": 5})
        assert again.content == first.content[5:]


def test_a_run_that_outgrows_its_stream_stops_with_an_error_chunk() -> None:
    with running(app_for(MemoryStore(), max_bytes=1_000_000)) as url:
        response = httpx.post(f"{url}/start/data-stream", params={"size": 4_000_000}, timeout=30)
        assert len(response.content) < 1_100_000
        assert response.text.splitlines()[-1] == (
            '3:"the stream grew past its bound of 1000000 bytes"'
        )


def test_a_slow_reader_does_not_grow_the_worker(redis: RedisServer, tmp_path: Path) -> None:
    """The run writes 48 MB to Redis at full speed while its client reads slowly; the
    worker holds one batch at a time, not the backlog.

    The measure is the worker's peak during that run against its peak during
    the same kind of run of 8 MB. Both peaks hold what any such run holds
    (buffers, the allocator's free lists, the collector's timing), so their
    difference is what grows with the backlog: about 35 MB if the worker kept
    it. Measured: 6-10 MiB, the same for a run of 32 MB, so it does not
    follow the backlog.
    """
    env = {"TEST_REDIS_URL": redis.url, "TEST_REDIS_PREFIX": f"slow-{secrets.token_hex(4)}:"}
    with running_cli(tmp_path / "worker.log", "serve", "tests.resumable.app:app", env=env) as url:
        for _ in range(2):  # warm up: imports, connection pools, first allocations
            httpx.post(f"{url}/start/data-stream", params={"size": 1 << 20}, timeout=60)
        small = peak_while_read_slowly(url, 8 << 20)
        large = peak_while_read_slowly(url, 48 << 20)
        growth = large - small
        print(f"worker memory: peaks {small >> 20} and {large >> 20} MiB for 8 and 48 MB")
        assert growth < 20 * 1024 * 1024


def peak_while_read_slowly(url: str, size: int) -> int:
    """The worker's peak RSS while a client reads the first eighth of a ``size``-byte run
    at about 3 MB/s, then the rest from where it stopped."""

    def rss() -> int:
        value: int = httpx.get(f"{url}/memory").json()["rss"]
        return value

    peak = rss()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    received = 0
    try:
        with httpx.stream(
            "POST", f"{url}/start/data-stream", params={"size": size}, timeout=60
        ) as response:
            stream_id = response.headers[STREAM_ID_HEADER]
            for piece in response.iter_raw(16384):
                received += len(piece)
                if received > size // 8:
                    break
                time.sleep(0.005)  # about 3 MB/s, far slower than the run
        # The rest, from where this client stopped.
        rest = httpx.get(f"{url}/streams/{stream_id}", params={"offset": received}, timeout=60)
        received += len(rest.content)
    finally:
        done.set()
        sampler.join()
    assert received > size
    return peak
