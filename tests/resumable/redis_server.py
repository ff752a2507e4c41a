"""Real Redis topologies on loopback ports, started and stopped by the tests.

One server (``redis_server``), a Redis Cluster of three primaries and three
replicas (``redis_cluster``), and a primary with a replica watched by three
Sentinels (``redis_sentinel``): every process is Debian's ``redis-server``
(a Sentinel is ``redis-server --sentinel``), which ``scripts/check.sh``
installs when it is missing, with ``redis-cli`` to form the cluster. Nothing
is persisted: a stopped server loses everything, as a crashed one would.
Failures are detected fast (half a second), so that failover tests take
seconds. A topology that cannot start fails the test that needs it, saying
why; none is skipped.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..serving import free_port

__all__ = [
    "RedisCluster",
    "RedisSentinel",
    "RedisServer",
    "redis_cluster",
    "redis_sentinel",
    "redis_server",
]

DETECTION_MS = 500
"""How long a cluster node or a Sentinel waits before it calls a silent primary down."""

SERVICE = "trio-stream"
"""The name the Sentinels know the primary by."""


def _executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f"{name} is not installed; scripts/check.sh installs it with apt-get "
            "(Debian's redis-server and redis-tools)"
        )
    return path


def command(port: int, *arguments: str) -> str:
    """What ``redis-cli`` prints for one command to the server on ``port``."""
    result = subprocess.run(
        [_executable("redis-cli"), "-p", str(port), *arguments],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return result.stdout.strip()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll ``condition`` until it holds; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


class RedisServer:
    """One ``redis-server`` process; ``stop`` and ``start`` simulate losing it."""

    def __init__(
        self,
        port: int,
        arguments: Sequence[str] = (),
        directory: Path | None = None,
        config: Path | None = None,
    ) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.address = f"127.0.0.1:{port}"
        self.arguments = list(arguments)
        """Options after the defaults (no persistence), which they may override."""
        self.directory = directory
        self.config = config
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        options = [] if self.config is None else [str(self.config)]
        options += ["--port", str(self.port), "--bind", "127.0.0.1"]
        options += ["--save", "", "--appendonly", "no"]
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            options += ["--dir", str(self.directory)]
        log = self.directory / "server.log" if self.directory is not None else None
        with contextlib.ExitStack() as files:
            output = files.enter_context(log.open("ab")) if log is not None else None
            self._process = subprocess.Popen(
                [_executable("redis-server"), *options, *self.arguments],
                stdout=output if output is not None else subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while not self.answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server did not start on port {self.port}"
                    + (f"; see {log}" if log is not None else "")
                )
            time.sleep(0.05)

    def answers(self) -> bool:
        """Whether the server answers ``PING``."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Kill the process (SIGKILL: no goodbye to its clients or its replicas)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A fresh ``redis-server`` on a free loopback port, for the duration of the block."""
    server = RedisServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def _all_stopped(servers: list[RedisServer]) -> Iterator[None]:
    try:
        yield
    finally:
        for server in servers:
            server.stop()


class RedisCluster:
    """Three primaries, each with one replica, that share the 16,384 slots."""

    def __init__(self, nodes: list[RedisServer]) -> None:
        self.nodes = nodes
        self.urls = [node.url for node in nodes]

    def node_for(self, key: str) -> RedisServer:
        """The primary holding ``key``'s slot, as the cluster sees it now."""
        slot = command(self.nodes[0].port, "CLUSTER", "KEYSLOT", key)
        for node in self.nodes:
            if not node.running:
                continue
            for line in command(node.port, "CLUSTER", "NODES").splitlines():
                fields = line.split()
                if "master" not in fields[2] or "fail" in fields[2]:
                    continue
                for span in fields[8:]:
                    low, _, high = span.partition("-")
                    if low.isdigit() and int(low) <= int(slot) <= int(high or low):
                        port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
                        return next(n for n in self.nodes if n.port == port)
        raise RuntimeError(f"no primary holds the slot of {key!r}")

    def healthy(self) -> bool:
        """Every running node sees the cluster whole, with a replica for each primary."""
        running = [node for node in self.nodes if node.running]
        for node in running:
            if "cluster_state:ok" not in command(node.port, "CLUSTER", "INFO"):
                return False
        replicas = [node for node in running if "role:slave" in command(node.port, "INFO")]
        return (
            all(
                "master_link_status:up" in command(node.port, "INFO", "replication")
                for node in replicas
            )
            and len(replicas) >= len(running) - 3
        )


@contextlib.contextmanager
def redis_cluster(directory: Path) -> Iterator[RedisCluster]:
    """A cluster of six ``redis-server`` processes in ``directory``, formed by
    ``redis-cli --cluster create``, every slot covered and every replica in sync."""
    nodes = []
    for index in range(6):
        arguments = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(DETECTION_MS),
            # The bus port, which would otherwise be the port + 10,000.
            "--cluster-port",
            str(free_port()),
        ]
        nodes.append(RedisServer(free_port(), arguments, directory / f"node-{index}"))
    with _all_stopped(nodes):
        for node in nodes:
            node.start()
        created = subprocess.run(
            [_executable("redis-cli"), "--cluster", "create"]
            + [node.address for node in nodes]
            + ["--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}")
        cluster = RedisCluster(nodes)
        wait_until(cluster.healthy, "a healthy Redis Cluster")
        yield cluster


class RedisSentinel:
    """A primary and its replica, watched by three Sentinels (a quorum of two)."""

    def __init__(self, servers: list[RedisServer], sentinels: list[RedisServer]) -> None:
        self.servers = servers
        self.sentinels = sentinels
        self.addresses = [sentinel.address for sentinel in sentinels]
        self.service = SERVICE

    def primary(self) -> RedisServer:
        """The server the Sentinels name as the primary now."""
        for sentinel in self.sentinels:
            if not sentinel.running:
                continue
            reply = command(
                sentinel.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service
            ).split()
            if len(reply) == 2:
                return next(server for server in self.servers if server.port == int(reply[1]))
        raise RuntimeError("no Sentinel names a primary")

    def ready(self) -> bool:
        """Every Sentinel knows the other two and a replica in sync: a failover can happen."""
        for sentinel in self.sentinels:
            others = command(sentinel.port, "SENTINEL", "SENTINELS", self.service)
            replicas = command(sentinel.port, "SENTINEL", "REPLICAS", self.service)
            if others.count("name") < 2 or "s_down" in replicas or "slave" not in replicas:
                return False
        replica = next(server for server in self.servers if server is not self.primary())
        return "master_link_status:up" in command(replica.port, "INFO", "replication")


@contextlib.contextmanager
def redis_sentinel(directory: Path) -> Iterator[RedisSentinel]:
    """A primary, a replica and three Sentinels in ``directory``, ready to fail over."""
    primary = RedisServer(free_port(), [], directory / "primary")
    replica = RedisServer(
        free_port(), ["--replicaof", "127.0.0.1", str(primary.port)], directory / "replica"
    )
    sentinels = []
    for index in range(3):
        home = directory / f"sentinel-{index}"
        home.mkdir(parents=True, exist_ok=True)
        # A Sentinel rewrites its configuration file, so it gets one of its own.
        config = home / "sentinel.conf"
        config.write_text(
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DETECTION_MS}\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
        )
        sentinels.append(RedisServer(free_port(), ["--sentinel"], home, config))
    setup = RedisSentinel([primary, replica], sentinels)
    with _all_stopped([*sentinels, replica, primary]):
        for server in (primary, replica, *sentinels):
            server.start()
        wait_until(setup.ready, "three Sentinels watching a primary with a replica in sync")
        yield setup
