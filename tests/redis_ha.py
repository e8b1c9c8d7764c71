"""A real Redis master, its replica and a Sentinel on loopback (Debian's redis-server and
redis-sentinel), for tests where the master dies and Sentinel promotes the replica."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.helpers import free_port, wait_for_port

MASTER_NAME = "dialtone-test"


@dataclass
class SentinelSet:
    master_port: int
    replica_port: int
    sentinel_port: int
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The URL the stores take: its host:port is ignored under Sentinel, its db is used."""
        return "redis://127.0.0.1:1/0"

    @property
    def sentinel_address(self) -> str:
        return f"127.0.0.1:{self.sentinel_port}"

    def master_address(self) -> tuple[str, int]:
        with redis.Redis(port=self.sentinel_port, socket_timeout=2) as sentinel:
            host, port = sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
        return host, int(port)

    def wait_replica_in_sync(self, timeout: float = 10.0) -> None:
        """Until the replica has every write the master acknowledged (so killing the master loses none)."""
        deadline = time.monotonic() + timeout
        with redis.Redis(port=self.master_port) as master, redis.Redis(port=self.replica_port) as replica:
            while time.monotonic() < deadline:
                offset = master.info("replication")["master_repl_offset"]
                info = replica.info("replication")
                if info.get("master_link_status") == "up" and info.get("slave_repl_offset", -1) >= offset:
                    return
                time.sleep(0.05)
        raise AssertionError(f"the replica did not catch up with the master within {timeout} s")

    def wait_sentinel_knows_the_replica(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        with redis.Redis(port=self.sentinel_port, socket_timeout=2, decode_responses=True) as sentinel:
            while time.monotonic() < deadline:
                replicas = sentinel.sentinel_slaves(MASTER_NAME)
                if any(int(r["port"]) == self.replica_port and "s_down" not in r["flags"] for r in replicas):
                    return
                time.sleep(0.1)
        raise AssertionError(f"Sentinel did not discover the replica within {timeout} s")

    def kill_master(self) -> None:
        self.procs["master"].kill()
        self.procs["master"].wait(5)

    def wait_failover(self, timeout: float = 20.0) -> None:
        """Until Sentinel names the replica as master and the replica answers as one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.master_address()[1] == self.replica_port:
                with redis.Redis(port=self.replica_port) as promoted:
                    if promoted.info("replication")["role"] == "master":
                        return
            time.sleep(0.1)
        raise AssertionError(f"Sentinel did not promote the replica within {timeout} s")


def _binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (Debian package {package}; scripts/system-deps.sh test)")
    return path


def _redis(binary: str, port: int, workdir: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def sentinel_set(workdir: Path) -> Iterator[SentinelSet]:
    server = _binary("redis-server", "redis-server")
    sentinel_binary = _binary("redis-sentinel", "redis-sentinel")
    ports = SentinelSet(free_port(), free_port(), free_port())
    (workdir / "master").mkdir(parents=True)
    (workdir / "replica").mkdir()
    conf = workdir / "sentinel.conf"
    # Quick detection and failover: the master counts as down after 500 ms without answers.
    conf.write_text(f"port {ports.sentinel_port}\nbind 127.0.0.1\ndir {workdir}\n"
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {ports.master_port} 1\n"
                    f"sentinel down-after-milliseconds {MASTER_NAME} 500\n"
                    f"sentinel failover-timeout {MASTER_NAME} 5000\n")
    try:
        ports.procs["master"] = _redis(server, ports.master_port, workdir / "master")
        wait_for_port("127.0.0.1", ports.master_port, 10.0)
        ports.procs["replica"] = _redis(server, ports.replica_port, workdir / "replica",
                                        "--replicaof", "127.0.0.1", str(ports.master_port))
        wait_for_port("127.0.0.1", ports.replica_port, 10.0)
        ports.procs["sentinel"] = subprocess.Popen([sentinel_binary, str(conf)],
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", ports.sentinel_port, 10.0)
        ports.wait_replica_in_sync()
        ports.wait_sentinel_knows_the_replica()
        yield ports
    finally:
        for proc in ports.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()


@contextmanager
def redis_cluster(workdir: Path, masters: int = 3) -> Iterator[str]:
    """A Redis Cluster of `masters` nodes (no replicas) on loopback; yields the URL of one node."""
    server = _binary("redis-server", "redis-server")
    cli = _binary("redis-cli", "redis-tools")
    ports = [free_port() for _ in range(masters)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            node = workdir / f"node-{port}"
            node.mkdir(parents=True)
            # The bus port defaults to port + 10000, beyond 65535 for high free ports: name one.
            procs.append(_redis(server, port, node, "--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                                "--cluster-config-file", str(node / "nodes.conf")))
        for port in ports:
            wait_for_port("127.0.0.1", port, 10.0)
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-yes"],
                       check=True, capture_output=True, timeout=30)
        deadline = time.monotonic() + 15
        with redis.Redis(port=ports[0], decode_responses=True) as node:
            while node.cluster("info").get("cluster_state") != "ok":
                if time.monotonic() > deadline:
                    raise AssertionError("the cluster did not reach state ok within 15 s")
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
