"""The ``tourpulse`` command (contract §1, §14): serve, token, join (§9), tours import, pool import, simulate,
dev-cluster.

Settings are read once here (``load_settings``) and passed down. ``serve`` starts an embedded Valkey when
``REDIS_URL`` is unset and leaves its URL in ``<data_dir>/redis.url`` (mode 0600) while it runs, so that the
import commands of the same data dir reach the same server instead of starting a second one on the same files.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from server.core.settings import ConfigError, Settings, load_settings, parse_duration
from server.core.tokens import ROLES, issue

BOARD_TOKEN_TTL = 12 * 3600.0
URL_FILE = "redis.url"


class _Stopped(Exception):
    """SIGTERM arrived: unwind through every ``finally`` so the embedded server stops in order."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def _fail(message: str, code: int) -> int:
    print(f"tourpulse: {message}", file=sys.stderr)
    return code


# --- serve -----------------------------------------------------------------------------------------------
def _write_url_file(data_dir: Path, url: str) -> Path:
    path = data_dir / URL_FILE
    path.unlink(missing_ok=True)  # O_CREAT keeps an old file's mode; start afresh at 0600
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(url + "\n")
    return path


def _public_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "::": "localhost", "": "127.0.0.1"}.get(host, host)


async def _serve(settings: Settings, host: str, port: int, embedded: Any = None) -> bool:
    """Runs until stopped; False when the embedded server kept dying (``serve`` then exits non-zero)."""
    import uvicorn

    from server.app import create_app
    from server.core.access_log import install_redaction
    from server.core.ratelog import install_rate_limit
    from server.db.embedded import Supervisor
    from server.web import protocols

    app = create_app(settings, run_watcher=True)
    # the same uvicorn limits as the Procfile's web process (§13)
    config = uvicorn.Config(app, host=host, port=port, ws_per_message_deflate=False,
                            ws_max_size=settings.limits.max_frame_bytes, log_level="info", lifespan="on",
                            **protocols.UVICORN_LIMITS)
    install_redaction()  # after Config: it (re)configures uvicorn's loggers
    install_rate_limit()  # while storage is down, every retry loop would log each attempt
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    supervisor = Supervisor(embedded) if embedded is not None else None
    watching = asyncio.create_task(supervisor.run()) if supervisor is not None else None
    if watching is not None:
        watching.add_done_callback(lambda _task: setattr(server, "should_exit", True))
    while not server.started and not serving.done():
        await asyncio.sleep(0.05)
    if server.started:
        bound = port
        for listener in server.servers:
            for sock in listener.sockets:
                bound = sock.getsockname()[1]  # the real port, when asked for port 0
        token = issue(settings.secret, role="supervisor", sub="serve", regions=["*"], ttl=BOARD_TOKEN_TTL,
                      now=time.time())
        print(f"tourpulse: board at http://{_public_host(host)}:{bound}/board#token={token}", flush=True)
    try:
        await serving
    finally:
        if watching is not None and not watching.done():
            watching.cancel()
    return not (supervisor is not None and supervisor.failed)


def cmd_serve(args: argparse.Namespace) -> int:
    from server.db.embedded import EmbeddedRedis, EmbeddedRedisError

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    # uvicorn re-raises the signal it stopped on once it has shut down; with the default SIGTERM action that
    # would kill us before the embedded server is stopped and the URL file removed
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    embedded: EmbeddedRedis | None = None
    url_file: Path | None = None
    try:
        if settings.redis_url is None:
            embedded = EmbeddedRedis(settings.data_dir)
            try:
                embedded.start()
            except EmbeddedRedisError as exc:
                return _fail(str(exc), 1)
            settings = dataclasses.replace(settings, redis_url=embedded.url)
            url_file = _write_url_file(settings.data_dir, embedded.url)
        if not asyncio.run(_serve(settings, args.host, args.port, embedded)):
            return _fail("the embedded server kept dying: stopped", 1)
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        if url_file is not None:
            url_file.unlink(missing_ok=True)
        if embedded is not None:
            embedded.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0


# --- token -----------------------------------------------------------------------------------------------
def cmd_token(args: argparse.Namespace) -> int:
    try:
        ttl = parse_duration(args.ttl)
    except ConfigError as exc:
        return _fail(f"--ttl: {exc}", 2)
    if ttl <= 0:
        return _fail("--ttl must be positive", 2)
    try:
        settings = load_settings(args.config)
        if ttl > settings.limits.max_token_ttl:
            return _fail(f"--ttl is longer than [limits] max_token_ttl ({settings.limits.max_token_ttl:g}s)", 2)
        token = issue(settings.secret, role=args.role, sub=args.sub, tours=args.tour, regions=args.region,
                      ttl=ttl, now=time.time())
    except ValueError as exc:  # ConfigError and a bad sub or id are both ValueErrors
        return _fail(str(exc), 2)
    print(token)
    return 0


# --- join ------------------------------------------------------------------------------------------------
async def _join_code(settings: Settings, tour_id: str, new: bool) -> Any:
    from server.storage import joins as join
    from server.storage.tours import TourRegistry

    async with connect(settings) as redis:
        tour = await TourRegistry(redis, settings).get(tour_id)
        if tour is None:
            return None
        now = time.time()
        expires_at = join.phone_expiry([tour], now, settings.limits.max_token_ttl)
        if expires_at <= now:
            return None
        issue_or_show = join.issue_code if new else join.current_code
        return await issue_or_show(redis, tour_id, expires_at, now)


def cmd_join(args: argparse.Namespace) -> int:
    """The tour's join link and its QR code, for a terminal (the same code the guide's phone shows)."""
    from server.storage.joins import qr_terminal

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    code = asyncio.run(_join_code(settings, args.tour, args.new))
    if code is None:
        return _fail(f"no tour {args.tour!r} that can still be joined", 1)
    url = code.url(args.base_url or settings.server.base_url or "http://127.0.0.1:8000")
    print(url)
    print(qr_terminal(url), end="")
    print(f"valid until {code.to_wire(url)['expires_at']}")
    return 0


# --- imports ---------------------------------------------------------------------------------------------
async def _answers(url: str) -> bool:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[Any]:
    """REDIS_URL if set; else the running ``serve`` of this data dir; else an embedded server for a while."""
    from server.db.client import close_client, redis_client
    from server.db.embedded import EmbeddedRedis

    url = settings.redis_url
    embedded: EmbeddedRedis | None = None
    if url is None:
        url_file = settings.data_dir / URL_FILE
        if url_file.exists():
            candidate = url_file.read_text().strip()
            if candidate and await _answers(candidate):
                url = candidate
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir).start()
        url = embedded.url
    client = redis_client(url)  # a cluster's URL gets a cluster client
    try:
        yield client
    finally:
        await close_client(client)
        if embedded is not None:
            embedded.stop()


async def _import_tours(settings: Settings, tours: Sequence[Any]) -> int:
    from server.storage.tours import TourRegistry

    changed = 0
    async with connect(settings) as redis:
        registry = TourRegistry(redis, settings)
        for tour in tours:
            if await registry.put(tour, time.time(), sender="admin:cli") is not None:
                changed += 1
    return changed


def _read_import(args: argparse.Namespace, parse: Callable[[Path, str | None], Sequence[Any]]
                 ) -> tuple[Settings, Sequence[Any]] | int:
    """Settings and every row of the file, checked; or an exit code after saying what is wrong (nothing stored)."""
    from server.tools.importers import ImportFileError

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    try:
        return settings, parse(Path(args.file), args.format)
    except ImportFileError as exc:
        for error in exc.errors:
            print(f"{args.file}: {error}", file=sys.stderr)
        return _fail(f"nothing imported: {len(exc.errors)} error(s)", 1)


def cmd_tours_import(args: argparse.Namespace) -> int:
    from server.tools.importers import load_tours

    read = _read_import(args, load_tours)
    if isinstance(read, int):
        return read
    settings, tours = read
    changed = asyncio.run(_import_tours(settings, tours))
    print(f"imported {len(tours)} tours ({changed} new or changed, {len(tours) - changed} unchanged)")
    return 0


async def _import_pool(settings: Settings, resources: Sequence[dict[str, Any]]) -> list[str]:
    from alerts.pool import PoolError, PoolStore

    refused = []
    async with connect(settings) as redis:
        store = PoolStore(redis, settings)
        for resource in resources:
            try:
                await store.put(resource, time.time())
            except PoolError as exc:  # e.g. moving a held resource to another region
                refused.append(f"{resource.get('resource_id')}: {exc}")
    return refused


def cmd_pool_import(args: argparse.Namespace) -> int:
    from server.tools.importers import parse_resources_file

    read = _read_import(args, parse_resources_file)
    if isinstance(read, int):
        return read
    settings, resources = read
    refused = asyncio.run(_import_pool(settings, resources))
    for line in refused:
        print(f"{args.file}: {line}", file=sys.stderr)
    regions = len({r["region"] for r in resources})
    print(f"loaded {len(resources) - len(refused)} resources in {regions} regions")
    return 1 if refused else 0


# --- simulate --------------------------------------------------------------------------------------------
def cmd_simulate(rest: list[str]) -> int:
    import server.tools.simulate

    return int(server.tools.simulate.main(rest) or 0)


# --- dev-cluster -----------------------------------------------------------------------------------------
def cmd_dev_cluster(args: argparse.Namespace) -> int:
    import tempfile

    from server.db.cluster_dev import DevCluster, DevClusterError

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="tourpulse-cluster-"))
    cluster: DevCluster | None = None
    try:
        cluster = DevCluster(folder, primaries=args.primaries, replicas=args.replicas, port=args.port)
        cluster.start()
        print(f"REDIS_URL={cluster.url}", flush=True)
        while True:  # a node that died comes back (as a replica, if its replica was promoted meanwhile)
            for port in cluster.supervise_once():
                print(f"tourpulse: node {port} died; restarted", file=sys.stderr, flush=True)
            time.sleep(0.5)
    except DevClusterError as exc:
        return _fail(str(exc), 1)
    except (KeyboardInterrupt, _Stopped):
        return 0
    finally:
        if cluster is not None:
            cluster.stop()
        signal.signal(signal.SIGTERM, previous)


# --- parser ----------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tourpulse", description="Real-time in-tour monitoring.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the web app and the watcher in one process")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--config", help="TOML settings file (else TOURPULSE_CONFIG)")
    serve.set_defaults(run=cmd_serve)

    token = commands.add_parser("token", help="print a signed bearer token")
    token.add_argument("--role", required=True, choices=ROLES)
    token.add_argument("--sub", required=True, help="the person's id")
    token.add_argument("--tour", action="append", default=[], help="a tour id (repeatable)")
    token.add_argument("--region", action="append", default=[], help="a region id, or * (repeatable)")
    token.add_argument("--ttl", default="12h", help='lifetime, e.g. "90m", "12h", "7d" (default 12h)')
    token.add_argument("--config", help=argparse.SUPPRESS)
    token.set_defaults(run=cmd_token)

    join = commands.add_parser("join", help="print a tour's join link and QR code")
    join.add_argument("--tour", required=True, help="the tour id")
    join.add_argument("--new", action="store_true", help="issue a new code (the current one stops working)")
    join.add_argument("--base-url", help="origin of the link (default: [server] base_url, else the local serve)")
    join.add_argument("--config", help="TOML settings file (else TOURPULSE_CONFIG)")
    join.set_defaults(run=cmd_join)

    groups = (("tours", cmd_tours_import, "tours"), ("pool", cmd_pool_import, "pool resources"))
    for name, run, what in groups:
        group = commands.add_parser(name, help=f"manage {what}")
        actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
        importer = actions.add_parser("import", help=f"load {what} from a CSV or JSON file")
        importer.add_argument("file")
        importer.add_argument("--format", choices=("csv", "json"), help="default: from the file's name")
        importer.add_argument("--config", help="TOML settings file (else TOURPULSE_CONFIG)")
        importer.set_defaults(run=run)

    cluster = commands.add_parser("dev-cluster", help="run a local Valkey Cluster (for development and tests)")
    cluster.add_argument("--primaries", type=int, default=3)
    cluster.add_argument("--replicas", type=int, default=1, help="replicas per primary (default 1)")
    cluster.add_argument("--port", type=int, default=7000, help="the first node's port (default 7000)")
    cluster.add_argument("--dir", help="where the nodes keep their data (default: a new temporary folder)")
    cluster.set_defaults(run=cmd_dev_cluster)

    simulate = commands.add_parser("simulate", help="drive realistic load against a running server",
                                   add_help=False)
    simulate.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # argparse would take simulate's own options (``--tours 5``) for ours; hand them over untouched
    if argv[:1] == ["simulate"]:
        return cmd_simulate(argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
